# Two commands for a fresh machine:  `make demo`  and  `make test`.
# `make setup` creates .venv at the repo root if missing and installs the pinned
# dependencies; it is idempotent (a second run installs nothing).
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.flallm-installed

.PHONY: setup test demo clean-demo

setup: $(STAMP)

$(VPY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(VPY) requirements.txt requirements-extra.txt setup.py
	$(PIP) install torch==2.14.1 torchvision==0.29.1
	$(PIP) install --no-deps ve-fairseq==0.12.3
	$(PIP) install -r requirements.txt
	$(PIP) install -r requirements-extra.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: setup
	$(VPY) -m pytest -q -n 2 --dist loadfile tests

demo: setup
	$(VPY) examples/synthetic/run_demo.py --out-dir demo_out
