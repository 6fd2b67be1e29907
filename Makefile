# Townhall: `make demo` runs it, `make test` checks it. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WEB := server/web
WEB_STAMP := $(WEB)/dist/.built
WEB_SOURCES := $(shell find $(WEB)/src -type f 2>/dev/null)

LOCK := requirements.lock

.PHONY: setup demo test lint typecheck layers lock bench capacity screenshots clean

# mypy sees the packages under their import names (townhall.server, ...) through a tree of
# links, since the source folders are mapped onto the townhall namespace at install time.
TYPECHECK := build/typecheck
PACKAGES := server plugin protocol scenes

# Every Python package comes from requirements.lock, pinned with hashes (uv pip compile);
# the project itself is then installed editable without touching the pins.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

# Refresh the pins deliberately (a commit of its own): keeps every pin that still fits
# pyproject.toml; `make lock UPGRADE=1` moves everything to the newest releases.
lock:
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --extra dev --generate-hashes \
	  --universal --python-version 3.11 $(if $(UPGRADE),--upgrade) -o $(LOCK)

# The web pages: npm installs three.js, three-vrm and msgpack from package-lock.json and
# esbuild bundles them into server/web/dist (served at /watch and /moderate).
$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json $(WEB)/build.mjs $(WEB_SOURCES)
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent
	touch $(WEB_STAMP)

setup: $(STAMP) $(WEB_STAMP)

demo: setup
	$(VENV)/bin/townhall demo --bots 200

# Four pytest-xdist workers: many tests wait on servers, sockets, browsers and speech played
# in real time rather than on the CPU (three left the two cores a third idle; five gain
# nothing on four). The drawing tests share one worker (the "gui" group), the browser tests
# whose pages draw nothing another ("pages"), and the rest is spread over all of them as
# they come free (tests/conftest.py).
TEST_WORKERS ?= 4

# Bytecode (and pytest's rewritten test modules) is cached under build/pycache even where
# the environment sets PYTHONDONTWRITEBYTECODE: otherwise each worker compiles and rewrites
# every test module again (8 of its 13 s of collection here), and every server a test
# starts compiles the package again.
test: export PYTHONDONTWRITEBYTECODE :=
test: export PYTHONPYCACHEPREFIX := $(CURDIR)/build/pycache

# The static checks (mypy --strict, the import contracts) run beside the suite, which
# leaves the cores idle enough at its start; their output follows the suite's, and either
# failing fails `make test`. ruff, a fraction of a second, goes first.
test: setup
	$(VENV)/bin/ruff check server plugin protocol scenes tests bench
	@mkdir -p build
	@$(MAKE) --no-print-directory typecheck layers > build/checks.log 2>&1 & checks=$$!; \
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS); \
	suite=$$?; wait $$checks; static=$$?; \
	echo "--- mypy --strict and the import contracts (make typecheck layers):"; \
	cat build/checks.log; \
	[ $$static -eq 0 ] || echo "make test: the static checks failed (above)" >&2; \
	[ $$suite -eq 0 ] && [ $$static -eq 0 ]

# README's screenshots, refreshed deliberately: the tests that take them save them to
# tests/artifacts/ on every run (kept out of git); this runs those tests and copies the
# pictures over docs/screenshots/ (avatar.png and xr-headset.png are made by hand).
SHOT_TESTS := tests/test_web_watch.py tests/test_web_moderate.py tests/test_web_studio.py \
  tests/test_studio_insights.py tests/test_web_studio_replay.py tests/test_signin.py \
  tests/test_xr_mirror.py
SHOTS := watch moderate studio-inbox studio-statements studio-answers studio-insights-events \
  studio-play studio-watch-leader xr-mirror

screenshots: setup
	$(PY) -m pytest -q -p no:cacheprovider $(SHOT_TESTS)
	@mkdir -p docs/screenshots
	for s in $(SHOTS); do cp tests/artifacts/$$s.png docs/screenshots/$$s.png; done
	cp tests/artifacts/signin-provider-form.png docs/screenshots/signin-provider.png

# mypy --strict on every townhall package: 0 errors.
typecheck: setup
	@mkdir -p $(TYPECHECK)/townhall
	@for p in $(PACKAGES); do ln -sfn ../../../$$p $(TYPECHECK)/townhall/$$p; done
	MYPYPATH=$(TYPECHECK) $(VENV)/bin/mypy --strict --explicit-package-bases -p townhall

# The layers (import-linter contracts in pyproject.toml): the core imports no shell module,
# no asyncio, no sockets; the protocol imports nothing of the server; nothing imports the app.
layers: setup
	$(VENV)/bin/lint-imports

lint: setup typecheck layers
	$(VENV)/bin/ruff check server plugin protocol scenes tests bench
	$(VENV)/bin/ruff format --check server plugin protocol scenes tests bench

bench: setup
	$(PY) bench/fanout.py --attendees 1000 --spectators 1000 --seconds 20

# 2,000 attendees and 10,000 spectators in one room, against a websockets-broadcast baseline.
capacity: setup
	$(PY) bench/capacity.py

clean:
	rm -rf $(VENV) .townhall build *.egg-info $(WEB)/dist $(WEB)/node_modules
