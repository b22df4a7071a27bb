# Sourced by run.sh and test.sh: make sure .venv exists and has the requirements file given as $1.
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "slack-genesys-sync needs Python 3.11 or newer as '$python' (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi
stamp=".venv/.installed-$(basename "$1" .txt)"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
# Reinstall only when the requirements changed since the last install. --require-hashes: every package, transitive
# ones included, must match a hash in the file (scripts/lock-requirements.sh writes them), so a tampered or swapped
# download is refused instead of installed.
if [ ! -f "$stamp" ] || [ "$1" -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r "$1"
  touch "$stamp"
fi
