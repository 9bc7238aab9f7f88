#!/usr/bin/env bash
# Runs the fuzz targets (cargo-fuzz, libFuzzer, no sanitizer: stable Rust, see fuzz/README.md).
#   fuzz/run.sh [--seconds N | --runs N] [TARGET...]     default: 45 seconds each, every target
# The growing corpus lives outside the checkout (${HANZO_FUZZ_CORPUS:-~/.cache/hanzo-s3-operator/fuzz-corpus}),
# started from the committed seeds in fuzz/seeds. A crash, a hang (10 s) or more than 1 GiB of memory
# stops the run with exit 1 and leaves the input in fuzz/artifacts/<target>/. Prints, for each
# target, the executions it made.
set -euo pipefail
cd "$(dirname "$0")"
limit=(-max_total_time=45)
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --runs) limit=(-runs="$2"); shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(review_mutate review_validate manifest quantity defaulting)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz 0.13.2 (crates.io; once)"
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
corpus_root="${HANZO_FUZZ_CORPUS:-${HOME}/.cache/hanzo-s3-operator/fuzz-corpus}"
echo "==> building the fuzz targets (release, coverage instrumentation, no sanitizer)"
cargo fuzz build --sanitizer none --release >/dev/null
for target in "${targets[@]}"; do
  corpus="${corpus_root}/${target}"
  mkdir -p "${corpus}" "artifacts/${target}"
  echo "==> ${target} (${limit[*]})"
  log="$(mktemp)"
  status=0
  cargo fuzz run --sanitizer none --release "${target}" "${corpus}" "seeds/${target}" -- \
    "${limit[@]}" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="artifacts/${target}/" >"${log}" 2>&1 || status=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "${log}" | grep -oE '[0-9]+$' || echo "?")
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "${log}" | grep -oE '[0-9]+$' || echo "?")
  echo "    ${runs} executions, ${rate}/s, corpus $(ls "${corpus}" | wc -l) inputs"
  if [[ ${status} -ne 0 ]]; then
    tail -40 "${log}"
    echo "error: ${target} failed; the input is in fuzz/artifacts/${target}/" >&2
    rm -f "${log}"
    exit 1
  fi
  rm -f "${log}"
done
