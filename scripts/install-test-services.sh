#!/usr/bin/env bash
# Installs, with apt, the system packages that the test suite's services need. Idempotent and quiet: it installs
# only what is missing, and does nothing when all is there. Needs root and apt; elsewhere it says what to install
# and leaves it to you (the tests that need a missing package skip, unless CI's REQUIRE_* variables are set).
set -euo pipefail

packages=(
  # tests/test_container.py builds the Dockerfile and runs the image with podman. runc is named because podman's
  # "crun | runc" would otherwise bring crun; the tests run podman with --runtime runc. debootstrap makes the base
  # image (there is no Docker Hub here). Recommends (buildah, fuse-overlayfs, slirp4netns, uidmap, netavark, ...)
  # are not needed as root with --network host; checked on a fresh debootstrapped bookworm.
  podman runc debootstrap
  # localdev/postgres.py starts a throwaway PostgreSQL server (initdb, pg_ctl) for the store's tests on PostgreSQL.
  postgresql
  # tests/test_compose.py checks docker-compose.yml with `docker-compose config` (no engine needed) and the HTTP
  # proxy's deploy/haproxy.cfg with `haproxy -c` (the package's service is not started: see policy-rc.d below).
  docker-compose haproxy
)

missing=()
for package in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" != installed ]; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-test-services: not installing ${missing[*]} (needs root and apt); tests that need them will skip" >&2
  exit 0
fi
echo "install-test-services: installing ${missing[*]}" >&2
log=$(mktemp)
policy_added=
cleanup() { rm -f "$log"; [ -z "$policy_added" ] || rm -f /usr/sbin/policy-rc.d; }
trap cleanup EXIT
# Start no service while installing (Debian's postgresql would start its own cluster): the tests start their own.
# A policy-rc.d that exits 101 is how Debian says so; one already there (containers have one) is left alone.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  policy_added=1
fi
# Packages' own scripts talk on standard error too (initdb, update-alternatives): shown only if the install fails.
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
