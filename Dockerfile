# slack-genesys-sync: the Slack app and the sync engine in one process (`python app.py serve`).
#
#   docker build -t slack-genesys-sync .
#   docker run -d --name genesys-sync --env-file .env -v genesys-sync-data:/data -p 3000:3000 slack-genesys-sync
#
# Settings come from the environment (`--env-file`, see .env.example); nothing secret is in the image. State (the
# SQLite file) lives in the /data volume. See docs/container.md for running it.
#
# BASE_IMAGE: any Debian-based image with Python >= 3.11 as `python3` and the `venv` module; both stages use it, so
# the virtual environment's interpreter link stays valid in the final stage.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- build: the pinned runtime dependencies in a virtual environment --------------------------------------------
FROM ${BASE_IMAGE} AS build
RUN python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "slack-genesys-sync needs Python 3.11 or newer in BASE_IMAGE" >&2; exit 1; }
RUN python3 -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# --require-hashes: every package, transitive ones included, must match a sha256 in requirements.txt, so a tampered
# or swapped download fails the build. pip and setuptools are needed only here: leaving them out of the runtime
# image saves 25 MB and the scanner noise about the old copies a distribution's ensurepip bundles. No runtime
# dependency imports them.
RUN /opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check --require-hashes \
        -r /tmp/requirements.txt \
    && /opt/venv/bin/python -m pip check --disable-pip-version-check \
    && /opt/venv/bin/python -m pip uninstall --yes --disable-pip-version-check pip setuptools

# --- final: the venv, the app code, a non-root user ---------------------------------------------------------------
FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATABASE_URL=sqlite:////data/sync.db
# The app runs as this user; /data is the only place it writes.
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid app --home-dir /data --no-create-home --no-log-init --shell /usr/sbin/nologin app \
    && mkdir /data \
    && chown app:app /data
COPY --from=build /opt/venv /opt/venv
COPY app.py config.py wiring.py sync.example.toml /app/
COPY cli/ /app/cli/
COPY genesys/ /app/genesys/
COPY handlers/ /app/handlers/
COPY metrics/ /app/metrics/
COPY profiles/ /app/profiles/
COPY slack_directory/ /app/slack_directory/
COPY store/ /app/store/
COPY sync/ /app/sync/
COPY web/ /app/web/
COPY examples/ /app/examples/
# Byte-compile as root: the app user cannot write /app, and starts faster with the .pyc files already there.
RUN /opt/venv/bin/python -m compileall -q /app
# WORKDIR /data *and* an absolute DATABASE_URL (above): the file is /data/sync.db whatever the working directory,
# and an env file that still says the relative default `sqlite:///data/sync.db` lands in the volume
# (/data/data/sync.db) rather than in the read-only /app. ./sync.toml and ./.env are looked up here too.
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 3000
# Healthy only when /healthz answers 200 (no curl in slim images); otherwise exit 1 with the answer, which names the
# failing part, in the health log. PORT is read at check time, so --env-file PORT=... is followed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import os, sys, urllib.error, urllib.request\nurl = 'http://127.0.0.1:%s/healthz' % (os.environ.get('PORT', '').strip() or '3000')\ntry:\n    status = urllib.request.urlopen(url, timeout=4).status\nexcept urllib.error.HTTPError as error:\n    sys.exit('%s %s' % (error.code, error.read().decode(errors='replace')))\nexcept OSError as error:\n    sys.exit('%s: %s' % (url, error))\nsys.exit(0 if status == 200 else '%s answered %s' % (url, status))"]
STOPSIGNAL SIGTERM
CMD ["/opt/venv/bin/python", "/app/app.py", "serve"]
