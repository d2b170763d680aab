# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := espeak-ng sox libsox-fmt-mp3
# For the review page's browser tests only (not in the worker image): headless Chromium, and
# Debian's node and npm where none is on PATH (a NodeSource nodejs conflicts with them).
TEST_APT_PACKAGES := chromium chromium-driver $(if $(shell command -v npm),,nodejs npm)
AXE_VERSION := 4.14.1
AXE := $(VENV)/npm/node_modules/axe-core/axe.min.js

.PHONY: setup system test demo clean

setup: system $(STAMP) $(AXE)

# Debian packages for the offline espeak voice, audio conversion and the browser tests' headless
# Chromium (skipped when already there).
system:
	@if ! dpkg -s $(APT_PACKAGES) $(TEST_APT_PACKAGES) >/dev/null 2>&1; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) $(TEST_APT_PACKAGES); \
	fi

$(STAMP): setup.py requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# axe-core, the accessibility checker that the browser tests inject into pages.
$(AXE): Makefile | system
	npm install --prefix $(VENV)/npm --no-audit --no-fund axe-core@$(AXE_VERSION)
	touch $@

test: setup
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/altvoice demo

clean:
	rm -rf $(VENV) demo-output example-videos example-described build *.egg-info
