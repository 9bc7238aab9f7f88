#!/usr/bin/env bash
# The main job on its embedded default: a local Kubernetes control plane built from Go modules,
# the operator (webhooks + reconciler) running against it, and the example tenants applied.
# Runs until Ctrl-C; pass --exit-when-ready to stop once the examples are Ready. Extra arguments
# go to `hanzo-s3-operator dev` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null 2>&1 || { echo "error: cargo is not installed" >&2; exit 2; }
command -v go >/dev/null 2>&1 || { echo "error: go is not installed: the local control plane is built from Go modules" >&2; exit 2; }
if [[ " $* " == *" --real-node "* ]]; then
  scripts/setup.sh
fi
cargo build --quiet --bin hanzo-s3-operator
exec "${CARGO_TARGET_DIR:-target}/debug/hanzo-s3-operator" dev "$@"
