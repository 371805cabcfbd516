#!/usr/bin/env bash
# Installs and starts what the test suite needs on a Debian machine (run as root):
# Nix (Debian's nix-bin, single-user), PostgreSQL with an `accord` role and test database,
# a C compiler for the native NAR serialiser, Chromium for the dashboard's browser tests,
# Guile with guile-gcrypt (the libgcrypt bindings Guix signs with) for the Guix interop tests,
# and the tools the tests and benchmarks compare against. Safe to run again.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: run as root (it uses apt-get and starts PostgreSQL)" >&2
  exit 2
fi

packages=(nix-bin postgresql gcc libc6-dev nginx-light xz-utils zstd bzip2 brotli hyperfine
  ca-certificates golang-go golang-golang-x-mod-dev wrk curl systemd openssl chromium guile-3.0
  guile-gcrypt)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Nix as root, single-user: no build users, no sandbox (the tests set NIX_CONFIG likewise).
mkdir -p /etc/nix
if ! grep -q '^build-users-group =' /etc/nix/nix.conf 2>/dev/null; then
  cat >> /etc/nix/nix.conf <<'CONF'
build-users-group =
sandbox = false
experimental-features = nix-command
CONF
fi
nix --version

# PostgreSQL: start the Debian cluster and create the test role and database.
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q online; then
  pg_lsclusters -h | grep -q "^$version main" || pg_createcluster "$version" main
  pg_ctlcluster "$version" main start
fi
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='accord'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE ROLE accord LOGIN PASSWORD 'accord' CREATEDB\""
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='accord_test'\"" | grep -q 1 ||
  su postgres -c "psql -qc 'CREATE DATABASE accord_test OWNER accord'"
echo "install-test-deps: ready (PostgreSQL $version at postgres://accord:accord@127.0.0.1:5432/accord_test)"
