#!/usr/bin/env bash
# Load benchmark of the webhook server (the release binary, `run --standalone`) next to a bare
# rustls + axum echo server (the ceiling), on loopback: /validate and /mutate, 2/10/50 KB Tenants,
# HTTP/1.1 keep-alive, new connections and HTTP/2. Not a test: at most 10,000 requests or 2 s a cell.
# Writes benches/results/webhook.md (numbers, date, machine, command) and prints it, then the
# h2load run of benches/webhook_h2load.rs (benches/results/webhook-h2load.md).
#   benches/webhook.sh                  # this checkout
#   benches/webhook.sh --baseline REV   # and, in the same run, the binary built from commit REV
# HANZO_BENCH_SMOKE=1: 30 requests or 0.1 s a cell (proves it works); HANZO_BENCH_OUT=DIR: write there.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--baseline" ]]; then
  rev="$(git rev-parse --short "${2:?--baseline needs a commit}")"
  target_dir="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
  tree="${target_dir}/bench-baseline"
  echo "==> building the baseline binary from ${rev} (a worktree in ${tree}; the same target directory, so only the operator crate is compiled)"
  rm -rf "${tree}"
  git worktree prune
  git worktree add --detach "${tree}" "${rev}" >/dev/null
  trap 'git worktree remove --force "${tree}"' EXIT
  (cd "${tree}" && CARGO_TARGET_DIR="${target_dir}" cargo build --release --bin hanzo-s3-operator)
  cp "${target_dir}/release/hanzo-s3-operator" "${target_dir}/hanzo-s3-operator-${rev}"
  # The baseline's binary took this checkout's place in target/release: the bench's build puts it back.
  rm -f "${target_dir}/release/hanzo-s3-operator"
  export HANZO_BENCH_BASELINE="${target_dir}/hanzo-s3-operator-${rev}" HANZO_BENCH_BASELINE_REV="${rev}"
fi
echo "==> cargo bench --bench webhook_load (release build; the first one takes minutes on 2 cores)"
cargo bench --bench webhook_load
out="${HANZO_BENCH_OUT:-benches/results}/webhook.md"
echo "==> wrote ${out}"
cat "${out}"
echo "==> cargo bench --bench webhook_h2load (h2load, from scripts/setup.sh's nghttp2-client)"
cargo bench --bench webhook_h2load
echo "==> wrote ${HANZO_BENCH_OUT:-benches/results}/webhook-h2load.md"
