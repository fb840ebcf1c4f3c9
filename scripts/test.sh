#!/usr/bin/env bash
# The whole test suite: lint, type checks and pytest. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/install-compose.sh   # docker-compose for the compose file's config check (never fails)
bash scripts/install-chromium.sh  # Debian's Chromium for the end-to-end UI tests (never fails)
bash scripts/start-mariadb.sh     # the local MariaDB server for the warehouse suite (never fails)
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
