# Townhall: `make demo` runs it, `make test` checks it. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=69" wheel
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/townhall demo --bots 200

test: setup
	$(VENV)/bin/ruff check server plugin protocol scenes tests bench
	$(VENV)/bin/mypy --strict protocol
	$(PY) -m pytest -q -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check server plugin protocol scenes tests bench
	$(VENV)/bin/ruff format --check server plugin protocol scenes tests bench
	$(VENV)/bin/mypy --strict protocol

bench: setup
	$(PY) bench/fanout.py --attendees 1000 --spectators 1000 --seconds 20

clean:
	rm -rf $(VENV) .townhall build *.egg-info
