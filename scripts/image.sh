#!/usr/bin/env bash
# Builds the operator image offline from the project's Dockerfile: a static binary (glibc linked
# statically: the only Rust target this machine has), a CA bundle and a non-root user FROM scratch,
# built by buildah (Debian's; scripts/setup.sh installs it) and written as a docker-archive that
# `ctr images import`, `docker load` and `podman load` all take.
#
#   scripts/image.sh [--tag REF] [--out FILE]     build the image archive
#   scripts/image.sh --context-only DIR           only stage the build context (for docker build)
#
# Defaults: --tag localhost/hanzo-s3-operator:dev, --out target/image/hanzo-s3-operator.tar (under
# CARGO_TARGET_DIR when set). Prints the archive's path as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

tag="localhost/hanzo-s3-operator:dev"
target_dir="${CARGO_TARGET_DIR:-target}"
out="${target_dir}/image/hanzo-s3-operator.tar"
context_only=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --context-only) context_only="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

triple="x86_64-unknown-linux-gnu"
echo "==> static release binary (${triple}, crt-static)"
# RUSTFLAGS with an explicit --target reach only the target's crates, not build scripts or proc
# macros, which must stay dynamic.
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --no-default-features --target "${triple}" --bin hanzo-s3-operator
binary="${target_dir}/${triple}/release/hanzo-s3-operator"
if ldd "${binary}" >/dev/null 2>&1 && ! ldd "${binary}" 2>&1 | grep -q "statically linked"; then
  echo "error: ${binary} is not static:" >&2
  ldd "${binary}" >&2
  exit 1
fi

stage() { # dir
  mkdir -p "$1"
  cp "${binary}" "$1/hanzo-s3-operator"
  cp /etc/ssl/certs/ca-certificates.crt "$1/ca-certificates.crt"
  cp deploy/image/passwd deploy/image/group "$1/"
}
if [[ -n "${context_only}" ]]; then
  stage "${context_only}"
  echo "build context staged in ${context_only}"
  exit 0
fi

if ! command -v buildah >/dev/null 2>&1; then
  echo "error: 'buildah' is not installed: run scripts/setup.sh (or use --context-only with docker build)" >&2
  exit 2
fi
context="$(mktemp -d)"
trap 'rm -rf "${context}"' EXIT
stage "${context}"
storage="${HANZO_BUILDAH_STORAGE:-${HOME}/.cache/hanzo-s3-operator/buildah}"
buildah_() { buildah --root "${storage}/root" --runroot "${storage}/run" --storage-driver vfs "$@"; }
echo "==> image ${tag} (buildah, Dockerfile)"
buildah_ bud --quiet --layers=false -f Dockerfile -t "${tag}" "${context}" >/dev/null
mkdir -p "$(dirname "${out}")"
rm -f "${out}"
buildah_ push --quiet "${tag}" "docker-archive:${out}:${tag}"
buildah_ rmi "${tag}" >/dev/null
echo "    $(du -h "${out}" | cut -f1) ${out}"
echo "${out}"
