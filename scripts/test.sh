#!/usr/bin/env bash
# The whole test suite: lint, type checks, pytest on the newest Airflow (.venv), then the Airflow version matrix
# (scripts/matrix.sh: Airflow 3.0, 3.1 and 3.2 with their own era's dependencies, and Airflow 3.3 on the newest
# supported Python). Installs what it needs first. Fails when any part fails.
#
# USERATTRS_MATRIX=0 skips the matrix (local runs; .ci/run sets it to 1), as does passing pytest arguments
# (`bash scripts/test.sh tests/sync -x`) unless USERATTRS_MATRIX=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/install-compose.sh   # docker-compose for the compose file's config check (never fails)
bash scripts/install-chromium.sh  # Debian's Chromium for the end-to-end UI tests (never fails)
bash scripts/start-mariadb.sh     # the local MariaDB server for the warehouse suite (never fails)
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

matrix="${USERATTRS_MATRIX:-}"
if [ -z "$matrix" ]; then
  if [ "$#" -eq 0 ]; then matrix=1; else matrix=0; fi
fi

status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$matrix" != "0" ]; then
  bash scripts/matrix.sh || status=1
else
  echo "test: Airflow version matrix skipped (USERATTRS_MATRIX=0 or pytest arguments given)" >&2
fi
exit "$status"
