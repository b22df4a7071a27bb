#!/usr/bin/env bash
# Runs the app (`./run.sh COMMAND …`), creating .venv with the pinned runtime dependencies on first use.
set -euo pipefail
cd "$(dirname "$0")"
source ./venv.sh requirements.txt
exec .venv/bin/python app.py "$@"
