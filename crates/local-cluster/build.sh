#!/usr/bin/env bash
# Builds the local control plane from Go modules: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok. Binaries go to a cache outside the checkout, keyed by version, so fresh
# clones (and CI) reuse them:
#   ${HANZO_CONTROLPLANE_CACHE:-$HOME/.cache/hanzo-s3-operator/controlplane}/<versions>/bin
# Does nothing when they are all there. Prints the bin directory as its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "${here}/versions.env"

if ! command -v go >/dev/null 2>&1; then
  echo "error: 'go' is not installed: the control plane is built from Go modules (Go 1.26 or newer)." >&2
  echo "       install Go, then run: crates/local-cluster/build.sh" >&2
  exit 2
fi

cache="${HANZO_CONTROLPLANE_CACHE:-${HOME}/.cache/hanzo-s3-operator/controlplane}"
bin="${cache}/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-kwok-${KWOK_VERSION}/bin"
mkdir -p "${bin}"

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
version_flags="-X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/client-go/pkg/version.gitVersion=${K8S_VERSION}"

build() { # name, module dir, package, extra ldflags
  local name="$1" dir="$2" pkg="$3" extra="${4:-}"
  if [[ -x "${bin}/${name}" ]]; then
    echo "  ${name}: cached"
    return
  fi
  local start; start=$(date +%s)
  echo "  ${name}: building ${pkg} (first build takes minutes on 2 cores) ..."
  # Build to a temporary name and rename, so an interrupted build never looks cached.
  (cd "${dir}" && go build -trimpath -ldflags "-s -w ${extra}" -o "${bin}/.${name}.tmp" "${pkg}")
  mv "${bin}/.${name}.tmp" "${bin}/${name}"
  echo "  ${name}: built in $(( $(date +%s) - start ))s, $(du -h "${bin}/${name}" | cut -f1)"
}

echo "control plane ${K8S_VERSION}, etcd ${ETCD_VERSION}, kwok ${KWOK_VERSION} -> ${bin}"
build etcd "${here}/etcd" go.etcd.io/etcd/server/v3
build kube-apiserver "${here}" k8s.io/kubernetes/cmd/kube-apiserver "${version_flags}"
build kube-controller-manager "${here}" k8s.io/kubernetes/cmd/kube-controller-manager "${version_flags}"
build kube-scheduler "${here}" k8s.io/kubernetes/cmd/kube-scheduler "${version_flags}"
build kwok "${here}/kwok" sigs.k8s.io/kwok/cmd/kwok

# Tools for the deploy tests, each at a pinned version (`go install pkg@version` needs no go.mod).
tool() { # name, package, version
  local name="$1" pkg="$2" version="$3"
  local dir="${cache}/tools/${name}-${version}"
  if [[ -x "${dir}/${name}" ]]; then
    echo "  ${name}: cached"
    return
  fi
  local start; start=$(date +%s)
  echo "  ${name}: building ${pkg}@${version} ..."
  mkdir -p "${dir}.tmp"
  GOBIN="${dir}.tmp" go install -trimpath -ldflags "-s -w" "${pkg}@${version}"
  rm -rf "${dir}" && mv "${dir}.tmp" "${dir}"
  echo "  ${name}: built in $(( $(date +%s) - start ))s"
}
tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "${KUSTOMIZE_VERSION}"
tool helm helm.sh/helm/v3/cmd/helm "${HELM_VERSION}"
tool promtool github.com/prometheus/prometheus/cmd/promtool "${PROMETHEUS_VERSION}"
tool prometheus github.com/prometheus/prometheus/cmd/prometheus "${PROMETHEUS_VERSION}"
# The ServiceMonitor and PrometheusRule CRDs, as the Prometheus operator's module ships them.
crds="${cache}/tools/prometheus-operator-crds-${PROMETHEUS_OPERATOR_VERSION}"
if [[ -f "${crds}/monitoring.coreos.com_servicemonitors.yaml" ]]; then
  echo "  prometheus-operator CRDs: cached"
else
  module="$(go mod download -json "github.com/prometheus-operator/prometheus-operator@${PROMETHEUS_OPERATOR_VERSION}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  mkdir -p "${crds}.tmp"
  for kind in servicemonitors prometheusrules; do
    cp "${module}/example/prometheus-operator-crd/monitoring.coreos.com_${kind}.yaml" "${crds}.tmp/"
  done
  rm -rf "${crds}" && mv "${crds}.tmp" "${crds}"
  echo "  prometheus-operator CRDs: copied from its module"
fi
echo "${bin}"
