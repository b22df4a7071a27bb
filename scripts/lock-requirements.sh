#!/usr/bin/env bash
# Regenerates requirements.txt and requirements-dev.txt (every package, transitive ones included, pinned with the
# sha256 of each of its files on PyPI) from requirements.in and requirements-dev.in. pip-tools is a development
# tool: it runs from a throwaway virtual environment, never .venv or the image. Hashes come from PyPI itself
# (a machine's own pip settings, such as local wheel folders, are ignored) so they verify any mirror of it.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
export PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CONSTRAINT
"$python" -m venv "$tools"
"$tools/bin/python" -m pip install --quiet --disable-pip-version-check --index-url https://pypi.org/simple \
  pip-tools==7.6.2
# The header names this script, not the pip-compile command line, as the way to regenerate.
export CUSTOM_COMPILE_COMMAND=./scripts/lock-requirements.sh
compile() {
  # --no-emit-index-url: the files name no index, so installs use whatever index the machine is configured with.
  "$tools/bin/pip-compile" --quiet --generate-hashes --strip-extras --no-emit-index-url \
    --index-url https://pypi.org/simple --output-file "$2" "$1"
}
# The runtime lock first: requirements-dev.in constrains itself to it.
compile requirements.in requirements.txt
compile requirements-dev.in requirements-dev.txt
