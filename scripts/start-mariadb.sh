#!/usr/bin/env bash
# Starts the local MariaDB server (Debian's mariadb-server, 127.0.0.1:3306, root without a password) when it
# is installed but not answering: the warehouse suite runs on it (tests/sync/test_warehouses.py).
#
# Idempotent and quiet. Never fails the caller: whatever happens it exits 0, saying why when MariaDB is not
# there (its tests then fail when USERATTRS_REQUIRE_MARIADB=1, or skip otherwise).
set -u

say() { echo "start-mariadb: $*" >&2; }

answers() { (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; }

if answers; then
  exit 0
fi
if [ ! -x /usr/sbin/mariadbd ]; then
  say "no MariaDB server at 127.0.0.1:3306 and none installed (apt-get install mariadb-server); its tests will skip or fail"
  exit 0
fi
if command -v start-stop-daemon >/dev/null 2>&1; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >/dev/null 2>&1 || true
else
  (/usr/sbin/mariadbd >/dev/null 2>&1 &)
fi
for _ in $(seq 1 60); do
  if answers; then
    say "started MariaDB at 127.0.0.1:3306"
    exit 0
  fi
  sleep 0.5
done
say "MariaDB did not answer at 127.0.0.1:3306 within 30 s; its tests will skip or fail"
exit 0
