# Two commands on a fresh machine: `make run` serves the IdP, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi

.PHONY: run test install install-dev clean bench bench-scale demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

## run: install, migrate the SQLite database, make dev keys, upstreams from the environment, seed demo data, serve on :5000
run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask upstreams sync-env
	$(BIN)/flask keys ensure
	$(BIN)/flask seed
	$(BIN)/flask run --host 127.0.0.1 --port 5000

## demo: the demo relying party (acme-portal-001) on http://localhost:3000; the IdP runs beside it (`make run`)
demo: $(BIN)/python
	$(BIN)/python -c "import authlib, flask, joserfc, requests" 2>/dev/null || $(BIN)/pip install --quiet -e .
	$(BIN)/python examples/demo_rp/app.py

## test: install with the dev extras and run the whole suite (tests/test_architecture.py checks the import layering)
test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench: load benchmark (gunicorn + PostgreSQL authy2_bench + Redis db 15 on loopback, driven by wrk), ~5 min;
## every target with its figure and PASS/FAIL at the end; BENCH_ARGS="--matrix" measures the server settings
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## bench-scale: the same rates at ~10^3 rows and after a bulk load of 10^6 users, 10^6 sessions and 10^7 token rows, EXPLAIN of the hot statements (up to 15 minutes; holds /tmp/bench.lock)
bench-scale: install
	$(BIN)/python bench/scale.py $(SCALE_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache
