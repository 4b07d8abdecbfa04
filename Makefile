# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint bench bench-peers browser clean census test-data

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The census data of the real-drift test: the nannyml wheel's parquet files (data only: --no-deps,
# never imported). Without a package registry the test skips, except under CI.
test-data: $(STAMP)
	@$(PY) -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('nannyml') is None)" \
		|| $(PY) -m pip install --quiet --no-deps 'nannyml>=0.13,<0.14' \
		|| echo "note: could not install the census data (nannyml wheel); the real-drift test will skip"

# Debian's chromium for the browser tests (playwright's own browser download cannot work offline).
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "note: chromium is not installed and I cannot apt-get it; browser tests will skip"; fi

demo: $(STAMP)
	$(VENV)/bin/looplab demo

test: $(STAMP) browser test-data
	$(PY) -m pytest -q -n 2 --dist loadfile

test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not browser"

lint: $(STAMP)
	$(VENV)/bin/ruff check looplab tests bench examples
	$(VENV)/bin/ruff format --check looplab tests bench examples
	$(VENV)/bin/mypy looplab

# Peers for the benchmarks, each in a venv of its own: never looplab dependencies.
bench-peers: $(STAMP)
	@for peer in bench/peers/requirements-*.txt; do \
		name=$$(basename $$peer .txt | sed 's/requirements-//'); \
		test -x bench/.peers/$$name/bin/python || $(PYTHON) -m venv bench/.peers/$$name; \
		bench/.peers/$$name/bin/pip install --quiet -r $$peer || exit 1; \
	done

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Real drift: census employment data 2015-2018 from the nannyml wheel (data only: --no-deps,
# never imported), replayed through predict and the monitor job (examples/census_drift.py).
census: $(STAMP)
	$(PY) -m pip install --quiet --no-deps nannyml
	$(PY) examples/census_drift.py --home $${LOOPLAB_HOME:-.looplab-census}

clean:
	rm -rf $(VENV) .looplab .pytest_cache .mypy_cache .ruff_cache
