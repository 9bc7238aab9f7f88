#!/usr/bin/env bash
# Installs what the project needs from Debian's packages on a fresh machine, and nothing when it is
# all there (quick to run every time: scripts/test.sh and scripts/dev.sh call it).
#   runc        the container runtime of the real node (crun refuses this kernel's hybrid cgroups)
#   iptables    kube-proxy's Service rules on the real node
#   conntrack   kube-proxy clears stale UDP entries with it
#   buildah     builds the operator, pause and S3 server images offline from their Dockerfiles
#   curl        the client commands `dev --real-node` prints (SigV4-signed S3 requests)
#   jq          the README pipes validate -o json into it
#   zsh, fish   the tests load `completion zsh|fish` in the shells they are for
#   nghttp2-client  h2load, the HTTP/2 load generator of benches/webhook_h2load.rs
# Everything else (Kubernetes, containerd, CNI, CoreDNS, MinIO, kustomize, helm) is built from Go
# modules by crates/local-cluster/build.sh and build-node.sh.
set -euo pipefail
packages=(runc iptables conntrack buildah curl jq zsh fish nghttp2-client)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "error: missing Debian packages ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2
  exit 2
fi
echo "==> installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
  || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
