#!/usr/bin/env bash
# Builds a real node for the local control plane from Go modules, and the images it runs:
#   kubelet, kube-proxy, kubectl   k8s.io/kubernetes (this module, the control plane's version)
#   containerd, ctr, shim           github.com/containerd/containerd/v2
#   bridge, host-local, loopback,   github.com/containernetworking/plugins
#   portmap (CNI plugins)
#   coredns                         github.com/coredns/coredns
#   s3client (test client)          node/s3client (minio-go)
#   pause image                     node/images/pause, FROM scratch
#   S3 server image                 github.com/minio/minio + node/images/s3-entrypoint, FROM scratch
# runc comes from Debian (scripts/setup.sh installs it), as do buildah (builds the images offline
# from the Dockerfiles in node/images) and iptables (kube-proxy).
#
# Everything goes to a cache outside the checkout, keyed by version, so fresh clones and CI reuse it:
#   ${HANZO_CONTROLPLANE_CACHE:-$HOME/.cache/hanzo-s3-operator/controlplane}/node-<versions>/
# Does nothing when it is all there. Prints the node directory as its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "${here}/versions.env"

for tool in go buildah; do
  if ! command -v "${tool}" >/dev/null 2>&1; then
    echo "error: '${tool}' is not installed: run scripts/setup.sh (Debian packages), then crates/local-cluster/build-node.sh" >&2
    exit 2
  fi
done

cache="${HANZO_CONTROLPLANE_CACHE:-${HOME}/.cache/hanzo-s3-operator/controlplane}"
node="${cache}/node-k8s-${K8S_VERSION}-containerd-${CONTAINERD_VERSION}-cni-${CNI_PLUGINS_VERSION}-coredns-${COREDNS_VERSION}-minio-${MINIO_VERSION}"
bin="${node}/bin"
mkdir -p "${bin}/cni" "${node}/images"

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
version_flags="-X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/client-go/pkg/version.gitVersion=${K8S_VERSION}"

elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

build() { # name, module dir, package, extra ldflags, [env...]
  local name="$1" dir="$2" pkg="$3" extra="${4:-}"
  shift 4 || true
  if [[ -x "${bin}/${name}" ]]; then
    echo "  ${name}: cached"
    return
  fi
  local start; start=$(date +%s)
  echo "  ${name}: building ${pkg} ..."
  # A temporary name, then a rename: an interrupted build never looks cached.
  (cd "${dir}" && env "$@" go build -trimpath -ldflags "-s -w ${extra}" -o "${bin}/.${name}.tmp" "${pkg}")
  mv "${bin}/.${name}.tmp" "${bin}/${name}"
  echo "  ${name}: built in $(elapsed "${start}"), $(du -h "${bin}/${name}" | cut -f1)"
}

install_module() { # label, destination dir, env..., -- packages@version...
  local label="$1" dest="$2"
  shift 2
  local envs=()
  while [[ "$1" != "--" ]]; do envs+=("$1"); shift; done
  shift
  local marker="${dest}/.${label}.done"
  if [[ -f "${marker}" ]]; then
    echo "  ${label}: cached"
    return
  fi
  local start; start=$(date +%s)
  echo "  ${label}: go install $* ..."
  local tmp="${dest}/.${label}.tmp"
  rm -rf "${tmp}" && mkdir -p "${tmp}"
  env "${envs[@]}" GOBIN="${tmp}" go install -trimpath -ldflags "-s -w" "$@"
  mv "${tmp}"/* "${dest}/"
  rmdir "${tmp}"
  touch "${marker}"
  echo "  ${label}: built in $(elapsed "${start}")"
}

# Artefacts built from this checkout's own sources (the test client, the images' programs and
# Dockerfiles) are cached under a stamp of those sources: an edit rebuilds them, where a check for
# the file alone would keep serving the old build to every later run.
rebuild_if_changed() { # stamp name, source dir, artefacts...
  local stamp_file="${node}/.$1.sources" dir="$2"
  shift 2
  local stamp; stamp="$(cd "${dir}" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
  if [[ "$(cat "${stamp_file}" 2>/dev/null)" != "${stamp}" ]]; then
    rm -f "$@"
    echo "${stamp}" > "${stamp_file}"
  fi
}

echo "real node: kubelet ${K8S_VERSION}, containerd ${CONTAINERD_VERSION}, CNI ${CNI_PLUGINS_VERSION}, CoreDNS ${COREDNS_VERSION}, S3 server MinIO ${MINIO_VERSION} -> ${node}"
build kubelet "${here}" k8s.io/kubernetes/cmd/kubelet "${version_flags}" CGO_ENABLED=1
build kube-proxy "${here}" k8s.io/kubernetes/cmd/kube-proxy "${version_flags}" CGO_ENABLED=0
build kubectl "${here}" k8s.io/kubernetes/cmd/kubectl "${version_flags}" CGO_ENABLED=0
install_module containerd "${bin}" CGO_ENABLED=1 -- \
  "github.com/containerd/containerd/v2/cmd/containerd@${CONTAINERD_VERSION}" \
  "github.com/containerd/containerd/v2/cmd/ctr@${CONTAINERD_VERSION}" \
  "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@${CONTAINERD_VERSION}"
install_module cni-plugins "${bin}/cni" CGO_ENABLED=0 -- \
  "github.com/containernetworking/plugins/plugins/main/bridge@${CNI_PLUGINS_VERSION}" \
  "github.com/containernetworking/plugins/plugins/main/loopback@${CNI_PLUGINS_VERSION}" \
  "github.com/containernetworking/plugins/plugins/meta/portmap@${CNI_PLUGINS_VERSION}" \
  "github.com/containernetworking/plugins/plugins/ipam/host-local@${CNI_PLUGINS_VERSION}"
install_module coredns "${bin}" CGO_ENABLED=0 -- "github.com/coredns/coredns@${COREDNS_VERSION}"
rebuild_if_changed s3client "${here}/node/s3client" "${bin}/s3client"
build s3client "${here}/node/s3client" . "" CGO_ENABLED=0

# Images: static binaries FROM scratch, built by buildah from the Dockerfiles in node/images and
# written as OCI archives that the harness imports into the node's containerd.
storage="${cache}/buildah"
image() { # archive name, image reference, Dockerfile dir, files to stage (path[:name])...
  local archive="${node}/images/$1.tar" ref="$2" dockerfile="$3"
  shift 3
  if [[ -f "${archive}" ]]; then
    echo "  image ${ref}: cached"
    return
  fi
  local start; start=$(date +%s)
  local context; context="$(mktemp -d)"
  mkdir -m 1777 "${context}/tmp"
  for f in "$@"; do cp "${f%%:*}" "${context}/${f##*:}"; done
  buildah --root "${storage}/root" --runroot "${storage}/run" --storage-driver vfs \
    bud --quiet --layers=false -f "${dockerfile}/Dockerfile" -t "${ref}" "${context}" >/dev/null
  buildah --root "${storage}/root" --runroot "${storage}/run" --storage-driver vfs \
    push --quiet "${ref}" "docker-archive:${archive}.tmp:${ref}"
  buildah --root "${storage}/root" --runroot "${storage}/run" --storage-driver vfs rmi "${ref}" >/dev/null
  mv "${archive}.tmp" "${archive}"
  rm -rf "${context}"
  echo "  image ${ref}: built in $(elapsed "${start}"), $(du -h "${archive}" | cut -f1)"
}

images_bin="${node}/image-bin"
mkdir -p "${images_bin}"
rebuild_if_changed images "${here}/node/images" "${images_bin}/pause" "${images_bin}/s3-entrypoint" \
  "${node}/images/pause.tar" "${node}/images/s3-server.tar"
if [[ ! -x "${images_bin}/pause" || ! -x "${images_bin}/s3-entrypoint" ]]; then
  (cd "${here}/node/images" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${images_bin}/pause" ./pause \
    && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${images_bin}/s3-entrypoint" ./s3-entrypoint)
fi
install_module minio "${images_bin}" CGO_ENABLED=0 -- "github.com/minio/minio@${MINIO_VERSION}"
image pause "${PAUSE_IMAGE}" "${here}/node/images/pause" "${images_bin}/pause:pause"
image s3-server "${S3_SERVER_IMAGE}" "${here}/node/images/s3-server" \
  "${images_bin}/minio:minio" "${images_bin}/s3-entrypoint:s3-entrypoint"
echo "${node}"
