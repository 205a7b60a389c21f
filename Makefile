# Two commands set everything up on a fresh machine:
#   make serve   start the service on 127.0.0.1:$(PORT) (default 8000)
#   make test    run the whole test suite
# Both create .venv and install the locked requirements on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: serve test lint openapi fixtures bench lock clean

# Gunicorn reads WEB_CONCURRENCY before its config file and refuses a bad value
# without naming it ("Error: Value must be positive: -1"): make serve names it.
ifneq ($(filter serve,$(MAKECMDGOALS)),)
ifneq ($(WEB_CONCURRENCY),)
ifeq ($(shell printf '%s' '$(WEB_CONCURRENCY)' | grep -Ex '[1-9][0-9]*'),)
$(error WEB_CONCURRENCY must be a positive integer; got '$(WEB_CONCURRENCY)'. Fix it or unset WEB_CONCURRENCY to use the default 2)
endif
endif
endif

$(BIN)/.installed: requirements/dev.txt requirements/client-wheels.txt service/pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e service -e client
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: \
		--dest $(VENV)/wheelhouse -r requirements/client-wheels.txt
	touch $@

serve: $(BIN)/.installed
	$(BIN)/gunicorn --config service/gunicorn.conf.py initlab.web.wsgi:app

test: $(BIN)/.installed browser
	$(BIN)/ruff check service client tests tools
	$(BIN)/ruff format --check service client tests tools
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check service client tests tools
	$(BIN)/ruff format --check service client tests tools

# Regenerate openapi.yaml from the marshmallow schemas (a test fails when it drifts).
openapi: $(BIN)/.installed
	$(BIN)/python -m initlab.web.openapi > openapi.yaml

# Benchmarks, each printing its paths side by side with ratios (not part of
# make test): Monte Carlo speed and memory against plain numpy and PyTorch
# forward passes (PyTorch is optional: pip install -r benchmarks/requirements.txt
# into the venv to include it); the µP table's server time for a Llama-2-7B
# spec with five targets against its 100 ms goal (starts gunicorn on a free port).
bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_montecarlo.py
	$(BIN)/python benchmarks/bench_mup.py

# Throughput, load, failure and memory runs against gunicorn on free ports of
# 127.0.0.1, driven by wrk (not part of make test; see benchmarks/README.md):
#   make bench-throughput  recommendations/s against a minimal Flask app
#   make load              16 clients with a health probe; SIGKILL of workers
#                          under load; memory after 1,000 and 10,000 requests
# Both need wrk: `make wrk` installs Debian's package when run as root.
.PHONY: wrk load bench-throughput

wrk:
	@command -v wrk >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; \
		else echo "wrk is not installed: run sudo apt-get install -y wrk" >&2; exit 1; fi; }

bench-throughput: $(BIN)/.installed wrk
	$(BIN)/python benchmarks/bench_throughput.py

load: $(BIN)/.installed wrk
	$(BIN)/python benchmarks/load_run.py
	$(BIN)/python benchmarks/kill_worker.py
	$(BIN)/python benchmarks/memory_growth.py

# The browser the page's tests (tests/browser) drive through Playwright:
# Debian's Chromium at /usr/bin/chromium, so nothing is downloaded. Installed
# here when missing, as root (CI, this machine); otherwise it says how.
.PHONY: browser

browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y --no-install-recommends chromium; \
	else echo "Chromium is not installed at /usr/bin/chromium: run sudo apt-get install -y --no-install-recommends chromium" >&2; exit 1; fi
	@test -x /usr/bin/chromium || { echo "apt-get installed no /usr/bin/chromium" >&2; exit 1; }

# Regenerate tests/fixtures/reference from PyTorch, Keras and JAX themselves.
# Needs the optional reference libraries: see tools/README.md.
fixtures:
	$(MAKE) -C tools fixtures

lock:
	for name in service dev; do \
		rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock && \
		.venv-lock/bin/pip install --quiet -r requirements/$$name.in && \
		(echo "# Locked from $$name.in with pip freeze; regenerate with: make lock"; \
			.venv-lock/bin/pip freeze) > requirements/$$name.txt || exit 1; \
	done
	rm -rf .venv-lock

clean:
	rm -rf $(VENV)
