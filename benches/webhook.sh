#!/usr/bin/env bash
# Load benchmark of the webhook server next to a bare rustls + axum echo server (the ceiling), on
# loopback. Not a test: bounded to at most 3000 requests or 2 s per cell, 27 cells per server.
# Writes benches/results/webhook.md (numbers, date, machine, command) and prints it.
#   benches/webhook.sh
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> cargo bench --bench webhook_load (release build; the first one takes minutes on 2 cores)"
cargo bench --bench webhook_load
echo "==> wrote benches/results/webhook.md"
cat benches/results/webhook.md
