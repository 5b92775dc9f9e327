# callassist — set-up, serve, test. `make serve` and `make test` do all the set-up themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install serve test lint format bench browser clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(VENV)/bin/callassist model export
	$(VENV)/bin/callassist prepare
	touch $(STAMP)

serve: install
	$(VENV)/bin/callassist serve --host 127.0.0.1 --port 8000

# Debian's Chromium for the browser tests (Playwright drives it by path; it never downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install browser lint
	$(PY) -m pytest

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bench/assist_latency.py --calls 1 --duration 60
	$(PY) bench/assist_latency.py --calls 100 --duration 120

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
