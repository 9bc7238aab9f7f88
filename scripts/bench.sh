#!/usr/bin/env bash
# Runs benchmarks and writes their numbers, with the command, date and machine, to benches/results/.
#   scripts/bench.sh admission   # the pure admission core, criterion (~2 min)      -> admission.md
#   scripts/bench.sh webhook     # the HTTPS server vs an echo ceiling (~5 min)     -> webhook.md
#   scripts/bench.sh apply       # what `kubectl apply` pays: CRD only, CEL policy, our webhooks,
#                                # a controller-runtime peer, Kyverno (~12 min; Kyverno's first
#                                # build adds ~8 min and 1.2 GB of Go modules)  -> admission-apply.md
#                                # and how far the webhook's Tenant cache lags a burst of creates
#                                # (~1 min)                                      -> admission-cache-lag.md
#   scripts/bench.sh scale       # the reconciler at 1,000 Tenants (~15 min)         -> reconcile-scale.md
#   scripts/bench.sh go-operator SNAPSHOT
#                                # the Go operator and ours side by side at 50 and 1,000 Tenants
#                                # (~30 min; SNAPSHOT: an exported hanzos3/operator tree, built
#                                # here with `go build ./cmd/operator`, never committed)
#                                #                                                   -> operator-side-by-side.md
#   scripts/bench.sh real-node [SNAPSHOT]
#                                # one Tenant on the real node, to a healthy S3, under ours and,
#                                # given a snapshot, the Go operator (its sidecar image is built
#                                # from the snapshot too), then an image change under S3 load for
#                                # each (root; ~8 min)                      -> real-node-side-by-side.md
#                                #                                          and day2-image.md
#   scripts/bench.sh day2        # changes to a running tenant under S3 load on the real node
#                                # (an environment variable, an image, the root password, evictions,
#                                # a certificate renewal, a rotation of the operator CA, an operator
#                                # upgrade, a pool added): failed requests and objects lost per
#                                # change (root; the real-node tier's `rollouts` test, ~12 min)
#                                #                                                   -> day2.md
#   scripts/bench.sh takeover SNAPSHOT
#                                # a running TLS tenant of the Go operator taken over by ours under
#                                # S3 load on the real node: failed requests, objects lost, servers
#                                # replaced, what is left of the Go operator's objects (root; builds
#                                # as real-node does; ~6 min)                        -> takeover.md
#   scripts/bench.sh all [SNAPSHOT]
#                                # admission, webhook, apply, scale and, given a snapshot, go-operator
#                                # at 50 Tenants, in turn (about 30 minutes on 2 cores, builds aside)
# Several names may be given. `all` leaves real-node out: a machine runs one real node at a time,
# and CI runs `all` (smoke) beside the real-node tests; CI runs real-node's smoke after them.
# `all` shortens the scale run's quiet period to 2 minutes (run
# `scripts/bench.sh scale` with HANZO_SCALE_QUIET_SECONDS=600 for the 10-minute one).
# HANZO_BENCH_SMOKE=1 makes each a run of seconds that only proves it works (CI runs it so), and
# HANZO_BENCH_OUT=DIR writes the results there instead of benches/results.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
out_dir="${HANZO_BENCH_OUT:-benches/results}"

criterion() {
  local name="$1" out="${out_dir}/$1.md" cmd="cargo bench --bench $1"
  local args=(--noplot)
  if [[ "${HANZO_BENCH_SMOKE:-}" == "1" ]]; then
    args+=(--warm-up-time 0.05 --measurement-time 0.1 --sample-size 10)
  fi
  echo "==> ${cmd}"
  ${cmd} -- "${args[@]}" 2>&1 | tee "/tmp/bench-${name}.log" | grep -E '^(admission|Benchmarking .*: Analyzing)|time:' || true
  {
    echo "# Benchmark: ${name}"
    echo
    echo "- command: \`scripts/bench.sh ${name}\` (runs \`${cmd}\`)"
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "- rustc: $(rustc --version)"
    echo
    echo "| benchmark | median | throughput |"
    echo "|---|---|---|"
    for est in "${target}"/criterion/"${name}"/*/*/new/estimates.json; do
      dir="$(dirname "$(dirname "$est")")"
      id="${dir#"${target}"/criterion/"${name}"/}"
      python3 - "$est" "$dir/new/benchmark.json" "$id" <<'PY'
import json, sys
est = json.load(open(sys.argv[1])); meta = json.load(open(sys.argv[2]))
ns = est["median"]["point_estimate"]
tp = meta.get("throughput") or {}
bytes_ = tp.get("Bytes")
rate = f"{bytes_ / ns * 1e9 / 2**20:.0f} MiB/s, {1e9 / ns:,.0f} per second" if bytes_ else f"{1e9 / ns:,.0f} per second"
unit = f"{ns / 1000:.1f} µs" if ns >= 1000 else f"{ns:.0f} ns"
print(f"| {sys.argv[3]} | {unit} | {rate} |")
PY
    done
  } > "${out}"
  echo "==> wrote ${out}"
  cat "${out}"
}

go_cache="${HOME}/.cache/hanzo-s3-operator/go-operator"

# The Go operator from the snapshot (Go caches the build: a second run only links).
build_go_operator() {
  local bin="${go_cache}/operator"
  echo "==> go build ./cmd/operator in ${snapshot} (about 6 minutes on 2 cores the first time)"
  mkdir -p "${go_cache}"
  (cd "${snapshot}" && go build -o "${bin}" ./cmd/operator)
  export HANZO_GO_OPERATOR="${bin}" HANZO_GO_OPERATOR_SRC="${snapshot}"
  # A `git archive` export has no history; HANZO_GO_OPERATOR_COMMIT, when set, names its commit.
}

# Its tenant pods' sidecar (an init container and a container of every server pod), from the
# snapshot's own module, as a FROM scratch image archive the real node imports.
build_go_sidecar_image() {
  local bin="${go_cache}/sidecar" archive="${go_cache}/sidecar.tar"
  local ref="localhost/hanzos3-operator-sidecar:bench"
  local storage=("--root" "${go_cache}/buildah/root" "--runroot" "${go_cache}/buildah/run" "--storage-driver" "vfs")
  echo "==> CGO_ENABLED=0 go build ./cmd/sidecar in ${snapshot}/sidecar, and its image ${ref}"
  (cd "${snapshot}/sidecar" && CGO_ENABLED=0 go build -trimpath -o "${bin}" ./cmd/sidecar)
  local context; context="$(mktemp -d)"
  cp "${bin}" "${context}/sidecar"
  printf 'FROM scratch\nCOPY sidecar /minio-operator-sidecar\nENTRYPOINT ["/minio-operator-sidecar"]\n' > "${context}/Dockerfile"
  buildah "${storage[@]}" bud --quiet --layers=false -t "${ref}" "${context}" >/dev/null
  rm -f "${archive}"
  buildah "${storage[@]}" push --quiet "${ref}" "docker-archive:${archive}:${ref}"
  buildah "${storage[@]}" rmi "${ref}" >/dev/null
  rm -rf "${context}"
  export HANZO_GO_SIDECAR_IMAGE="${archive}" HANZO_GO_SIDECAR_REF="${ref}"
}

run_one() {
  case "$1" in
    admission) criterion admission ;;
    webhook) benches/webhook.sh ;;
    apply)
      echo "==> cargo bench --bench admission_apply"
      cargo bench --bench admission_apply
      echo "==> cargo bench --bench admission_cache_lag"
      cargo bench --bench admission_cache_lag ;;
    scale)
      echo "==> cargo bench --bench reconcile_scale"
      cargo bench --bench reconcile_scale ;;
    go-operator)
      if [[ -n "${snapshot}" ]]; then
        build_go_operator
      elif [[ "${HANZO_BENCH_SMOKE:-}" != "1" ]]; then
        echo "go-operator needs the path of an exported hanzos3/operator snapshot: scripts/bench.sh go-operator SNAPSHOT" >&2
        exit 2
      fi
      echo "==> cargo bench --bench operator_side_by_side"
      cargo bench --bench operator_side_by_side ;;
    real-node)
      if [[ -n "${snapshot}" && "${HANZO_BENCH_SMOKE:-}" != "1" ]]; then
        build_go_operator
        build_go_sidecar_image
      fi
      crates/local-cluster/build-node.sh >/dev/null
      echo "==> cargo bench --bench real_node_side_by_side"
      cargo bench --bench real_node_side_by_side ;;
    takeover)
      if [[ -z "${snapshot}" ]]; then
        echo "takeover needs the path of an exported hanzos3/operator snapshot: scripts/bench.sh takeover SNAPSHOT" >&2
        exit 2
      fi
      build_go_operator
      build_go_sidecar_image
      crates/local-cluster/build-node.sh >/dev/null
      echo "==> cargo bench --bench takeover"
      cargo bench --bench takeover ;;
    day2)
      # The node's images follow their sources (the S3 server's entrypoint among them).
      crates/local-cluster/build-node.sh >/dev/null
      echo "==> HANZO_DAY2_RESULTS=${out_dir}/day2.md cargo test --test real_node rollouts"
      HANZO_DAY2_RESULTS="$(cd "${out_dir}" && pwd)/day2.md" cargo test --test real_node rollouts -- --nocapture
      cat "${out_dir}/day2.md" ;;
    *)
      echo "unknown benchmark '$1': use admission, webhook, apply, scale, go-operator SNAPSHOT, real-node [SNAPSHOT], day2, takeover SNAPSHOT or all [SNAPSHOT]" >&2
      exit 2 ;;
  esac
}

names=()
snapshot=""
for arg in "$@"; do
  if [[ -d "${arg}" ]]; then
    snapshot="$(cd "${arg}" && pwd)"
  else
    names+=("${arg}")
  fi
done
if [[ ${#names[@]} -eq 0 ]]; then
  names=(admission)
fi
if [[ " ${names[*]} " == *" all "* ]]; then
  names=(admission webhook apply scale)
  export HANZO_SCALE_QUIET_SECONDS="${HANZO_SCALE_QUIET_SECONDS:-120}"
  if [[ -n "${snapshot}" || "${HANZO_BENCH_SMOKE:-}" == "1" ]]; then
    names+=(go-operator)
    export HANZO_SIDE_BY_SIDE_TENANTS="${HANZO_SIDE_BY_SIDE_TENANTS:-50}"
  fi
fi
started=$(date +%s)
for name in "${names[@]}"; do
  run_one "$name"
done
echo "==> done in $(( $(date +%s) - started )) s: ${names[*]}"
