#!/usr/bin/env bash
# Runs the linter and the whole test suite, creating .venv with the pinned test tools on first use.
set -euo pipefail
cd "$(dirname "$0")"
source ./venv.sh requirements-dev.txt
.venv/bin/ruff check .
# System packages for the tests that run services (podman for the image); only what is missing, root only.
./scripts/install-test-services.sh
# Four processes (pytest-xdist): most tests wait on the app, sockets or PostgreSQL rather than the CPU, so four keep
# two cores busy. loadgroup hands out one test at a time in the order tests/conftest.py sets (the longest first), so
# no process is left with a queue of long tests. `-n 0` after this runs everything in this one process.
exec .venv/bin/python -m pytest -n 4 --dist loadgroup "$@"
