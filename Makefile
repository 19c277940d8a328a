# The two commands of the README: `make run` and `make test`. Both set up .venv first:
# `make run` installs what serving needs (the core, the CLI, the plugins); `make setup`
# (run by `make test`, `make lint`, `make unit`, `make bench`) adds the test and lint tools,
# the plugins' test peers and the example plugin. Only Python 3.11 and pip are needed.
PYTHON ?= python3
, := ,
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PLUGIN_PROJECTS := $(wildcard plugins/*/pyproject.toml)
PLUGIN_DIRS := $(patsubst %/,%,$(dir $(PLUGIN_PROJECTS)))
PROJECTS := pyproject.toml cli/pyproject.toml $(PLUGIN_PROJECTS)
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
# setuptools' editable installs print a BuildBackendWarning banner per project: noise here.
PIP := PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip
say = @printf '==> %s\n' "$(1)"

.PHONY: run test lint unit setup bench clean

setup: $(STAMP)

$(BIN)/python:
	$(call say,creating $(VENV) with $(PYTHON))
	@$(PYTHON) -m venv $(VENV)
	$(call say,upgrading pip setuptools wheel in $(VENV))
	@$(PIP) install -q --upgrade pip setuptools wheel

# What `platformctl serve` needs: no test or lint tools.
$(RUN_STAMP): $(PROJECTS) | $(BIN)/python
	$(call say,installing the core$(,) the CLI and the plugins $(PLUGIN_DIRS) into $(VENV) (editable; about a minute the first time))
	@$(PIP) install -q -e . -e ./cli $(foreach p,$(PLUGIN_DIRS),-e './$(p)')
	@touch $@

# Everything the tests need: the serving set, the dev tools, the plugins' test peers and
# the example plugin (a real third-party distribution, installed from its directory).
$(STAMP): $(PROJECTS) tests/example_plugin/pyproject.toml | $(BIN)/python
	$(call say,installing the core$(,) the CLI and the plugins with their test and lint tools into $(VENV) (a few minutes the first time))
	@$(PIP) install -q -e '.[dev]' -e ./cli $(foreach p,$(PLUGIN_DIRS),-e './$(p)[test]')
	$(call say,installing the example plugin (tests/example_plugin))
	@$(PIP) install -q --no-build-isolation --force-reinstall --no-deps ./tests/example_plugin
	@touch $@ $(RUN_STAMP)

# `exec` makes platformctl the recipe's process: Ctrl-C (or SIGTERM) stops the server
# gracefully and it exits 0, so make reports no error.
run: $(RUN_STAMP)
	$(call say,serving on http://$(HOST):$(PORT) (Ctrl-C stops); config $${PLATFORM_CONFIG:-plugins.toml})
	@exec $(BIN)/platformctl serve --migrate --host $(HOST) --port $(PORT)

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
