# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := espeak-ng sox libsox-fmt-mp3

.PHONY: setup system test demo clean

setup: system $(STAMP)

# Debian packages for the offline espeak voice and audio conversion (skipped when already there).
system:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES); \
	fi

$(STAMP): setup.py requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

test: setup
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/altvoice demo

clean:
	rm -rf $(VENV) demo-output build *.egg-info
