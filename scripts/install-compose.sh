#!/usr/bin/env bash
# Makes a Compose implementation available for tests/test_compose.py (`docker-compose config`), which
# needs no Docker daemon. Installs Debian's docker-compose (Compose v1.29, Python) with apt when neither
# `docker compose` nor `docker-compose` is on PATH, apt-get exists and we are root.
#
# Idempotent and quiet. Never fails the caller: whatever happens it exits 0, saying why when it could not
# install anything (the test then fails when USERATTRS_REQUIRE_COMPOSE=1, or skips otherwise).
set -u

say() { echo "install-compose: $*" >&2; }

if docker compose version >/dev/null 2>&1; then
  exit 0
fi
if command -v docker-compose >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "no docker-compose and no apt-get; not installing (tests/test_compose.py will skip or fail)"
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  say "no docker-compose and not root; not installing (run: sudo apt-get install -y docker-compose)"
  exit 0
fi

log="$(mktemp "${TMPDIR:-/tmp}/install-compose.XXXXXX.log")"
export DEBIAN_FRONTEND=noninteractive
# --no-install-recommends: the package recommends docker.io (the whole engine), which `config` does not need.
install() {
  timeout 600 apt-get install -y -qq --no-install-recommends docker-compose >>"$log" 2>&1
}
# Try with the current package lists first; refresh them only when that fails (e.g. a fresh machine).
if install || { timeout 300 apt-get update -qq >>"$log" 2>&1 && install; }; then
  if command -v docker-compose >/dev/null 2>&1; then
    rm -f "$log"
    say "installed $(docker-compose version --short 2>/dev/null || echo docker-compose)"
    exit 0
  fi
fi
say "could not install Debian's docker-compose; last lines of $log:"
tail -n 5 "$log" >&2 || true
exit 0
