# The README's two commands: `make run` and `make test`. Everything else is a helper.
PY := .venv/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup run test lint unit integration fmt stack migrate worker-cpu worker-gpu beat flower api bench

setup:
	@bash scripts/setup_venv.sh

run: setup
	$(PY) -m workers.cli run

test: setup lint
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check app workers tasks tests bench clients celeryconfig.py
	$(PY) -m ruff format --check app workers tasks tests bench clients celeryconfig.py
	$(PY) -m mypy app

fmt: setup
	$(PY) -m ruff format app workers tasks tests bench clients celeryconfig.py
	$(PY) -m ruff check --fix app workers tasks tests bench clients celeryconfig.py

unit: setup
	$(PY) -m pytest tests/unit

integration: setup
	$(PY) -m pytest tests/integration tests/e2e

# The distributed stack on one machine, without Docker (needs PostgreSQL and Redis running).
# Both steps read .env (honcho's default), so the migration upgrades the stack's database.
migrate: setup
	.venv/bin/honcho run $(PY) -m workers.cli db upgrade

# honcho runs the Procfile; each line is under workers/keepalive.py, which restarts a process that dies.
stack: setup migrate
	.venv/bin/honcho start -f Procfile
