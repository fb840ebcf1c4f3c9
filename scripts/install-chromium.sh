#!/usr/bin/env bash
# Makes a headless Chromium available for the UI part of the end-to-end tests (tests/e2e), which drive it
# through Playwright with executable_path=/usr/bin/chromium (no `playwright install`, no browser download
# outside the distribution). Installs Debian's `chromium` with apt when no Chromium is on PATH, apt-get
# exists and we are root.
#
# Idempotent and quiet. Never fails the caller: whatever happens it exits 0, saying why when it could not
# install anything (the UI test then fails when USERATTRS_REQUIRE_E2E=1, or skips otherwise).
set -u

say() { echo "install-chromium: $*" >&2; }

for candidate in chromium chromium-browser; do
  if command -v "$candidate" >/dev/null 2>&1; then
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  say "no chromium and no apt-get; not installing (the e2e UI test will skip or fail)"
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  say "no chromium and not root; not installing (run: sudo apt-get install -y chromium)"
  exit 0
fi

log="$(mktemp "${TMPDIR:-/tmp}/install-chromium.XXXXXX.log")"
export DEBIAN_FRONTEND=noninteractive
# chromium-driver is not needed by Playwright (it speaks CDP to the browser itself); fonts come as dependencies.
install() {
  timeout 900 apt-get install -y -qq --no-install-recommends chromium fonts-liberation >>"$log" 2>&1
}
# Try with the current package lists first; refresh them only when that fails (e.g. a fresh machine).
if install || { timeout 300 apt-get update -qq >>"$log" 2>&1 && install; }; then
  if command -v chromium >/dev/null 2>&1; then
    rm -f "$log"
    say "installed $(chromium --version 2>/dev/null || echo chromium)"
    exit 0
  fi
fi
say "could not install Debian's chromium; last lines of $log:"
tail -n 5 "$log" >&2 || true
exit 0
