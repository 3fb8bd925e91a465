# Two commands: `make run` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint typecheck unit bench bench-ws soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml setup.py raid/simulation/_strikeloop.c | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_TEST): pyproject.toml setup.py raid/simulation/_strikeloop.c | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

# The browser tests drive Debian's chromium (Playwright never downloads a browser here).
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "the browser tests need Debian's chromium: sudo apt-get install -y chromium" >&2; \
		exit 1; \
	fi

run: $(STAMP_RUN)
	$(BIN)/python run_server.py serve --demo

lint: $(STAMP_TEST)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP_TEST)
	$(BIN)/mypy

unit: $(STAMP_TEST) $(CHROMIUM)
	PYTHONASYNCIODEBUG=1 $(BIN)/python -m pytest -q

test: lint typecheck unit

bench: $(STAMP_TEST)
	$(BIN)/python -m bench.rules_throughput

# The server over WebSockets against a bare echo server, 100/500/1,000 clients (several minutes);
# then the same with 2 and 4 gateway processes (serve --workers N) beside the single process.
bench-ws: $(STAMP_TEST)
	$(BIN)/python -m bench.ws_throughput
	$(BIN)/python -m bench.ws_cluster

# Chaos (20 SIGKILLs, 200 players), storage faults and abuse at full size; rewrites the table
# in docs/reliability.md (about 5-10 minutes).
soak: $(STAMP_TEST)
	$(BIN)/python -m tests.soak

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
