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

# Train Oct-ResNet-26 (ratio 0.25) on the embedded demo digits, score it, count its FLOPs.
DEMO := runs/demo
demo: venv
	rm -rf $(DEMO)
	$(VENV)/bin/octconv-train --api symbol --network resnetv2 --depth 26 --ratio 0.25 \
		--input-size 32 --num-epochs 10 --lr 0.05 --min-random-area 0.5 --save-dir $(DEMO)
	$(VENV)/bin/octconv-score --model $(DEMO)/model --epoch 10 --json-out $(DEMO)/score.jsonl
	$(VENV)/bin/octconv-flops --network resnetv2 --depth 26 --ratio 0.25 --input-size 32
	@echo "curves: $(DEMO)/curves.png  log: $(DEMO)/log.jsonl  checkpoints: $(DEMO)/checkpoints"

test: fresh-venv
	$(VENV)/bin/pytest -q -p no:cacheprovider test
