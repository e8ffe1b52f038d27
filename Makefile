# Two commands do all the setup on a fresh machine:
#   make study   creates .venv, installs, runs the quick study on the bundled sample, writes its report
#   make test    creates .venv if needed, installs, runs ruff and the test suite (slow tests at a small size)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
RESULTS ?= results
PYTEST_ARGS ?=

.PHONY: study test test-fast chromium clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

study: $(STAMP)
	$(PY) -m study.run --experiment quick --storage $(RESULTS) --resume
	$(PY) -m analysis.report $(RESULTS)/quick --out $(RESULTS)/quick-report

# Headless Chromium renders the report in tests; install Debian's package when we can (root + apt).
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "chromium not installed: the report-rendering test will be skipped"; }

test: $(STAMP) chromium
	$(PY) -m ruff check study analysis search_spaces benchmarks tests
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(RESULTS) .pytest_cache
