#!/usr/bin/env bash
# Runs the linter and the whole test suite, creating .venv with the pinned test tools on first use.
set -euo pipefail
cd "$(dirname "$0")"
source ./venv.sh requirements-dev.txt
.venv/bin/ruff check .
# System packages for the tests that run services (podman for the image); only what is missing, root only.
./scripts/install-test-services.sh
exec .venv/bin/python -m pytest "$@"
