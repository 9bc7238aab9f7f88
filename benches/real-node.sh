#!/usr/bin/env bash
# The real node, measured: build time (warm; with --cold also from empty Go module and build caches,
# about 20 minutes on 2 cores), start to node Ready, a tenant from apply to S3 healthy, and object
# round trips. Not a test. Needs root. Writes benches/results/real-node.md and prints it.
#   benches/real-node.sh [--cold]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [[ "${1:-}" == "--cold" ]]; then
  scratch="$(mktemp -d)"
  trap 'chmod -R u+w "${scratch}" 2>/dev/null; rm -rf "${scratch}"' EXIT
  echo "==> cold build of the real node into ${scratch} (empty caches)"
  start=$(date +%s)
  HANZO_CONTROLPLANE_CACHE="${scratch}/cache" GOCACHE="${scratch}/gocache" GOMODCACHE="${scratch}/gomod" \
    crates/local-cluster/build-node.sh
  export BUILD_COLD_S=$(( $(date +%s) - start ))
fi
start=$(date +%s%N)
crates/local-cluster/build-node.sh >/dev/null
export BUILD_WARM_S=$(awk -v ns=$(( $(date +%s%N) - start )) 'BEGIN { printf "%.2f", ns / 1e9 }')
echo "==> cargo bench --bench real_node"
cargo bench --bench real_node
echo "==> wrote benches/results/real-node.md"
