#!/usr/bin/env bash
# Load benchmark of the webhook server next to a bare rustls + axum echo server (the ceiling), on
# loopback. Not a test: bounded to at most 3000 requests or 2 s per cell, 27 cells per server.
# Writes benches/results/webhook.md (numbers, date, machine, command) and prints it.
# HANZO_BENCH_SMOKE=1: 30 requests or 0.1 s a cell (proves it works); HANZO_BENCH_OUT=DIR: write there.
#   benches/webhook.sh
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> cargo bench --bench webhook_load (release build; the first one takes minutes on 2 cores)"
cargo bench --bench webhook_load
out="${HANZO_BENCH_OUT:-benches/results}/webhook.md"
echo "==> wrote ${out}"
cat "${out}"
