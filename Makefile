# The two commands of the README. Both build .venv from this repository's own files.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test venv fresh-venv

venv:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet '.[test]'

fresh-venv:
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet '.[test]'

demo: venv
	$(PY) -m octconv.symbol --network resnetv2 --depth 26 --ratio 0.25

test: fresh-venv
	$(VENV)/bin/pytest -q -p no:cacheprovider test
