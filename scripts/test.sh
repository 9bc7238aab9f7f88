#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script): formatting, lints, unit,
# property, CLI, and the integration and end-to-end tests on a real local control plane; supply-chain
# checks (cargo-deny on a committed advisory snapshot, an SBOM) and 30 s of each fuzz target.
#
# Needs: cargo (rustup toolchain with rustfmt and clippy), go, and root for the real node (a
# kubelet with containerd running real S3 servers). scripts/setup.sh installs the few Debian
# packages it needs (runc, iptables, conntrack, buildah, curl); the control plane and the node are
# built from their Go modules on first use and cached outside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's time is printed when the run ends, however it ends: where CI's minutes go is the
# first thing to know before making it faster.
step_name="" step_start=0 timings=()
end_step() {
  [[ -n "${step_name}" ]] && timings+=("$(printf '%6d s  %s' $((SECONDS - step_start)) "${step_name}")")
  step_name=""
}
step() {
  end_step
  step_name="$*" step_start=${SECONDS}
  printf '\n==> %s\n' "$*"
}
# The disk left is printed too: CI's caches grow from run to run, and a full disk fails tests far
# from their cause.
report() {
  end_step
  printf '\n==> time per step (%d s in all)\n' "${SECONDS}"
  printf '%s\n' "${timings[@]}"
  printf '\n==> disk\n'
  df -h / "${HOME}/.cache" 2>/dev/null | uniq || true
  du -sh "${HOME}/.cache/hanzo-s3-operator" "$(go env GOCACHE 2>/dev/null || echo /nonexistent)" 2>/dev/null || true
}
trap report EXIT
need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is not installed; $2" >&2; exit 2; }
}
need cargo "install Rust with rustup (https://rustup.rs is not reachable here: use the machine's toolchain)"
need go "install Go 1.25 or newer: the local control plane is built from its Go modules"

# CI runs in a fresh clone: keep build outputs in a cache beside the control-plane binaries so
# a run only rebuilds what changed.
if [[ -n "${CI:-}" ]]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME}/.cache/hanzo-s3-operator/target}"
  # CI builds release binaries only to run them once (the operator image of the real-node tests,
  # the benchmarks' smoke runs, the README's `cargo build --release`): built for build time, not
  # speed, and rebuilt incrementally from the last run. Released images are built without these.
  export CARGO_PROFILE_RELEASE_OPT_LEVEL="${CARGO_PROFILE_RELEASE_OPT_LEVEL:-1}"
  export CARGO_PROFILE_RELEASE_INCREMENTAL="${CARGO_PROFILE_RELEASE_INCREMENTAL:-true}"
  export CARGO_PROFILE_RELEASE_CODEGEN_UNITS="${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-256}"
fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step "Debian packages (scripts/setup.sh; nothing to do when installed)"
scripts/setup.sh

step "control plane binaries (built once, then cached)"
crates/local-cluster/build.sh

step "real node binaries and images (built once, then cached)"
crates/local-cluster/build-node.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "supply chain: advisories, licenses, sources (offline snapshot), SBOM (scripts/supply-chain.sh)"
scripts/supply-chain.sh

step "cargo test (unit, properties, CLI, integration, end-to-end)"
cargo test --workspace --no-fail-fast

# After the tests: a machine runs one real node at a time, and the real-node tests hold it.
step "real-node benchmarks, smoke (benches/real-node.sh, scripts/bench.sh real-node; results to a temp dir)"
bench_out="$(mktemp -d)"
HANZO_BENCH_SMOKE=1 HANZO_BENCH_OUT="${bench_out}" benches/real-node.sh
HANZO_BENCH_SMOKE=1 HANZO_BENCH_OUT="${bench_out}" scripts/bench.sh real-node
rm -rf "${bench_out}"

step "fuzz smoke: 30 s of each target (fuzz/run.sh --dev; the long runs are in fuzz/README.md)"
fuzz/run.sh --dev --seconds 30
