# The two commands of the README: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PLUGIN_PROJECTS := $(wildcard plugins/*/pyproject.toml)
STAMP := $(VENV)/.installed

.PHONY: run test lint unit setup bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml cli/pyproject.toml $(PLUGIN_PROJECTS) tests/example_plugin/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e '.[dev]' -e ./cli \
		$(foreach p,$(patsubst %/,%,$(dir $(PLUGIN_PROJECTS))),-e './$(p)[test]')
	$(BIN)/python -m pip install -q --no-build-isolation --force-reinstall --no-deps ./tests/example_plugin
	touch $@

run: $(STAMP)
	$(BIN)/platformctl serve --migrate --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m platform_core.lintcontracts --check
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint unit

bench: $(STAMP)
	for f in bench/[!_]*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) var build *.egg-info
