#!/usr/bin/env bash
# Supply-chain checks of every crate the project builds (the operator's workspace and the fuzz crate):
# known vulnerabilities, unmaintained and yanked crates, licenses, duplicate and wildcard
# dependencies, and where crates come from (cargo-deny, rules in deny.toml). Then a CycloneDX SBOM of
# the operator binary's dependencies.
#
#   scripts/supply-chain.sh [--sbom-only | --no-sbom]
#
# Works offline: the RustSec advisory database is the dated snapshot committed in
# supply-chain/advisory-db.tar.gz (supply-chain/README.md says how to refresh it); it is unpacked into
# a git repository under target/ because cargo-deny reads the snapshot's date from its HEAD commit.
# Installs cargo-deny and cargo-cyclonedx (pinned, from crates.io) when they are missing.
# Exit status: 0 clean, 1 a finding (printed with the crate and the advisory or rule), 2 set-up error.
set -euo pipefail
cd "$(dirname "$0")/.."

deny_version=0.20.2
cyclonedx_version=0.5.9
run_deny=1
run_sbom=1
case "${1:-}" in
  --sbom-only) run_deny=0 ;;
  --no-sbom) run_sbom=0 ;;
  -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
  "") ;;
  *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

ensure_tool() { # subcommand crate version
  if ! cargo "$1" --version 2>/dev/null | grep -q "$3"; then
    echo "==> installing $2 $3 from crates.io (once)"
    cargo install "$2" --version "$3" --locked --quiet
  fi
}

if [[ "${run_deny}" == 1 ]]; then
  ensure_tool deny cargo-deny "${deny_version}"
  read -r commit day <supply-chain/advisory-db.SNAPSHOT
  # The directory name is cargo-deny's hash of the database URL in deny.toml.
  db="target/advisory-dbs/advisory-db-3157b0e258782691"
  if [[ "$(cat "${db}/.snapshot" 2>/dev/null)" != "${commit}" ]]; then
    rm -rf "${db}"
    mkdir -p "${db}"
    tar -xzf supply-chain/advisory-db.tar.gz -C "${db}"
    (
      cd "${db}"
      git init -q
      git add -A
      GIT_AUTHOR_DATE="${day}T00:00:00Z" GIT_COMMITTER_DATE="${day}T00:00:00Z" \
        git -c user.name=advisory-db-snapshot -c user.email=snapshot@localhost \
        commit -q -m "rustsec/advisory-db ${commit}"
    )
    echo "${commit}" >"${db}/.snapshot"
  fi
  age_days=$(( ( $(date +%s) - $(date -d "${day}" +%s) ) / 86400 ))
  echo "==> advisories: rustsec/advisory-db at ${commit:0:12} (${day}, ${age_days} days old)"
  if (( age_days > 120 )); then
    echo "warning: the advisory snapshot is ${age_days} days old; refresh it (supply-chain/README.md)" >&2
  fi
  status=0
  for manifest in Cargo.toml fuzz/Cargo.toml; do
    # cargo deny reads every crate of the lock file, other platforms' too, which no build here
    # downloads: fetch them first (crates.io is reachable), or a fresh machine fails offline.
    # --locked refuses a stale lock file with a message the filter below would hide: say it here.
    # (The fuzz crate depends on the operator, so a new dependency there changes fuzz/Cargo.lock.)
    if ! fetched="$(cargo fetch --locked --manifest-path "${manifest}" 2>&1)"; then
      lock="$(dirname "${manifest}")/Cargo.lock"
      if grep -q -- '--locked' <<<"${fetched}"; then
        echo "error: ${lock#./} is out of date; run 'cargo tree --manifest-path ${manifest} >/dev/null' and commit it" >&2
      else
        echo "error: cargo fetch --locked --manifest-path ${manifest} failed:" >&2
        echo "${fetched}" >&2
      fi
      exit 1
    fi
    echo "==> cargo deny check (${manifest})"
    log="$(mktemp)"
    cargo deny --offline --locked --manifest-path "${manifest}" --color never \
      check >"${log}" 2>&1 || status=1
    # Duplicate versions are reported as warnings (deny.toml says why); everything else is shown.
    awk '/^(warning|error)\[/ { show = ($0 !~ /^warning\[duplicate\]/) } /^$/ { show = 0 } show' "${log}"
    tail -n 1 "${log}"
    rm -f "${log}"
  done
  if [[ "${status}" != 0 ]]; then
    echo "error: cargo deny found problems; run 'cargo deny --offline --locked check' for the details" >&2
    exit 1
  fi
fi

if [[ "${run_sbom}" == 1 ]]; then
  ensure_tool cyclonedx cargo-cyclonedx "${cyclonedx_version}"
  out="${SBOM_OUT:-target/sbom}"
  mkdir -p "${out}"
  # Normal dependencies of the operator binary only: what the image ships, not tests or benches.
  cargo cyclonedx --manifest-path Cargo.toml --format json --spec-version 1.5 \
    --describe binaries --target x86_64-unknown-linux-gnu --quiet
  mv -f hanzo-s3-operator_bin.cdx.json "${out}/hanzo-s3-operator.cdx.json" 2>/dev/null ||
    mv -f ./*.cdx.json "${out}/"
  find tests -name '*.cdx.json' -delete
  echo "==> SBOM: ${out}/hanzo-s3-operator.cdx.json ($(grep -c '"bom-ref"' "${out}/hanzo-s3-operator.cdx.json") components)"
fi
