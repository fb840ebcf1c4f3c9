# The two commands of README.md. Both set themselves up (virtual environment, install) on a fresh machine.
.PHONY: demo test bootstrap lint benchmarks

bootstrap:
	@bash scripts/bootstrap.sh

## The main job: the demo sync on the embedded defaults (SQLite warehouse + vendor sandbox).
demo:
	@bash scripts/demo.sh

## The whole test suite (lint and type checks included). .ci/run calls exactly this.
test:
	@bash scripts/test.sh

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

benchmarks:
	@bash scripts/benchmarks.sh
