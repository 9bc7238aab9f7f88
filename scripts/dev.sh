#!/usr/bin/env bash
# The main job on its embedded default. Until the local control plane and reconciler land, this
# checks and defaults the example tenants with the same code the webhooks run.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null 2>&1 || { echo "error: cargo is not installed" >&2; exit 2; }
cargo build --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/hanzo-s3-operator"
echo "==> hanzo-s3-operator validate examples/"
"$bin" validate examples/
echo
echo "==> hanzo-s3-operator default examples/tenant-minimal.yaml (what the mutating webhook stores)"
"$bin" default examples/tenant-minimal.yaml
