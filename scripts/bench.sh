#!/usr/bin/env bash
# Runs a benchmark and writes its numbers, with the command and the machine, to benches/results/.
#   scripts/bench.sh admission     # the admission core (criterion)
# HANZO_BENCH_SMOKE=1 makes it a run of seconds that only proves it works, and HANZO_BENCH_OUT=DIR
# writes the results there instead of benches/results.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:-admission}"
out="${HANZO_BENCH_OUT:-benches/results}/${name}.md"
target="${CARGO_TARGET_DIR:-target}"
cmd="cargo bench --bench ${name}"
criterion=(--noplot)
if [[ "${HANZO_BENCH_SMOKE:-}" == "1" ]]; then
  criterion+=(--warm-up-time 0.05 --measurement-time 0.1 --sample-size 10)
fi
echo "==> ${cmd}"
${cmd} -- "${criterion[@]}" 2>&1 | tee "/tmp/bench-${name}.log" | grep -E '^(admission|Benchmarking .*: Analyzing)|time:' || true
{
  echo "# Benchmark: ${name}"
  echo
  echo "- command: \`scripts/bench.sh ${name}\` (runs \`${cmd}\`)"
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "- rustc: $(rustc --version)"
  echo
  echo "| benchmark | median | throughput |"
  echo "|---|---|---|"
  for est in "${target}"/criterion/"${name}"/*/*/new/estimates.json; do
    dir="$(dirname "$(dirname "$est")")"
    id="${dir#"${target}"/criterion/"${name}"/}"
    python3 - "$est" "$dir/new/benchmark.json" "$id" <<'PY'
import json, sys
est = json.load(open(sys.argv[1])); meta = json.load(open(sys.argv[2]))
ns = est["median"]["point_estimate"]
tp = meta.get("throughput") or {}
bytes_ = tp.get("Bytes")
rate = f"{bytes_ / ns * 1e9 / 2**20:.0f} MiB/s, {1e9 / ns:,.0f} per second" if bytes_ else f"{1e9 / ns:,.0f} per second"
unit = f"{ns / 1000:.1f} µs" if ns >= 1000 else f"{ns:.0f} ns"
print(f"| {sys.argv[3]} | {unit} | {rate} |")
PY
  done
} > "${out}"
echo "==> wrote ${out}"
cat "${out}"
