# Two commands: `make demo` runs the main job end to end, `make test` runs the test suite.
# Both install what is missing first (Debian packages, a .venv with ringspot) and are safe to repeat.

SHELL := /bin/bash
VENV := .venv
WEB_VENDOR := ringspot/web/static/vendor
APT_PACKAGES := python3-venv python3-dev redis-server bowtie2 samtools spades hmmer ncbi-blast+ pigz wrk skewer rabbitmq-server cutadapt fastqc chromium iproute2
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system demo test lint lock bench clean

setup: system $(VENV)/.installed $(WEB_VENDOR)/.installed

system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# Installs exactly what requirements.lock pins (with hashes), then ringspot itself without dependencies.
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q --require-hashes -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $@

# The browser client's libraries, from the npm registry as web/package-lock.json pins them,
# copied into the package's static folder (nothing built is committed; no CDN at run time).
$(WEB_VENDOR)/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(WEB_VENDOR)
	cp web/node_modules/htmx.org/dist/htmx.min.js web/node_modules/chart.js/dist/chart.umd.min.js $(WEB_VENDOR)/
	touch $@

# Regenerates requirements.lock from pyproject.toml (run after changing a dependency).
lock:
	test -x $(VENV)/bin/pip-compile || $(VENV)/bin/pip install -q pip-tools
	$(VENV)/bin/pip-compile -q --generate-hashes --extra test --strip-extras --allow-unsafe -o requirements.lock pyproject.toml

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

demo: setup
	$(VENV)/bin/ringspot demo

test: setup
	$(VENV)/bin/pytest -q -p no:cacheprovider -n 2 --dist loadfile

bench: setup
	@for script in bench/bench_*.py; do echo "== $$script"; $(VENV)/bin/python $$script || exit 1; done

clean:
	rm -rf data/demo
