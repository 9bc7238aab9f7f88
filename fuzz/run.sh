#!/usr/bin/env bash
# Runs the fuzz targets (cargo-fuzz, libFuzzer, no sanitizer: stable Rust, see fuzz/README.md).
#   fuzz/run.sh [--dev] [--seconds N | --runs N] [TARGET...]   default: 45 s each, every target
# --dev builds without optimisation: minutes faster to build, slower to run (CI's smoke runs);
# the long runs use the default release build.
# The growing corpus lives outside the checkout (${HANZO_FUZZ_CORPUS:-~/.cache/hanzo-s3-operator/fuzz-corpus}),
# started from the committed seeds in fuzz/seeds. A crash, a hang (10 s) or more than 1 GiB of memory
# stops the run with exit 1 and leaves the input in fuzz/artifacts/<target>/. Prints, for each
# target, the executions it made.
set -euo pipefail
cd "$(dirname "$0")"
limit=(-max_total_time=45)
profile=(--release)
# CI keeps build outputs outside its fresh clone (scripts/test.sh sets CARGO_TARGET_DIR); the fuzz
# build gets its own directory there, its instrumentation flags differ from the main build's.
target_dir=()
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
  target_dir=(--target-dir "${CARGO_TARGET_DIR}/fuzz")
fi
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --runs) limit=(-runs="$2"); shift 2 ;;
    --dev) profile=(--dev); shift ;;
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
echo "==> building the fuzz targets (${profile[*]}, coverage instrumentation, no sanitizer)"
cargo fuzz build --sanitizer none "${profile[@]}" "${target_dir[@]}" >/dev/null
for target in "${targets[@]}"; do
  corpus="${corpus_root}/${target}"
  mkdir -p "${corpus}" "artifacts/${target}"
  echo "==> ${target} (${limit[*]})"
  log="$(mktemp)"
  status=0
  cargo fuzz run --sanitizer none "${profile[@]}" "${target_dir[@]}" "${target}" "${corpus}" "seeds/${target}" -- \
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
