# The two commands of the README. Both build a virtual environment from this repository's
# own files, with PYTHON (python3 unless given: make demo PYTHON=python3.12).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUPPORTED := 3.11, 3.12 or 3.13

.PHONY: demo test smoke venv fresh-venv check-python horovod

check-python:
	@$(PYTHON) -c 'import sys; v = sys.version_info; print("Python %d.%d.%d (%s)" % (v[0], v[1], v[2], sys.executable)); sys.exit(0 if (3, 11) <= v[:2] <= (3, 13) else 1)' \
		|| { echo "octconv needs Python $(SUPPORTED) (PYTHON=$(PYTHON) is not one); pick one with e.g. make demo PYTHON=python3.12"; exit 2; }

# A venv made by another Python is made anew. Its modules are compiled after the install by
# every core at once (pip compiles them one by one: twice the time), but for the packages'
# own test folders and test_*.py files, which nothing here imports.
venv: check-python
	@if [ -x $(PY) ] && [ "$$($(PY) -c 'import sys; print(sys.version_info[:2])')" != "$$($(PYTHON) -c 'import sys; print(sys.version_info[:2])')" ]; then rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-compile '.[test]'
	$(PY) -m compileall -q -j 0 -x '/(tests?|testing)/|/test_[^/]*\.py$$' $(VENV)/lib > /dev/null

fresh-venv: check-python
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --no-compile '.[test]'
	$(PY) -m compileall -q -j 0 -x '/(tests?|testing)/|/test_[^/]*\.py$$' $(VENV)/lib > /dev/null

# Train Oct-ResNet-26 (ratio 0.25) on the embedded demo digits, score it, count its FLOPs.
# The digits are 32x32: the demo passes its own size, epochs and learning rate.
DEMO := runs/demo
demo: venv
	rm -rf $(DEMO)
	$(VENV)/bin/octconv-train --api symbol --network resnetv2 --depth 26 --ratio 0.25 \
		--input-size 32 --num-epochs 10 --lr 0.02 --min-random-area 0.5 --save-dir $(DEMO)
	$(VENV)/bin/octconv-score --checkpoint $(DEMO)/model --epoch 10 --json-out $(DEMO)/score.jsonl
	$(VENV)/bin/octconv-score --checkpoint $(DEMO)/model --epoch 10 --dtype int8 \
		--json-out $(DEMO)/score.jsonl
	$(VENV)/bin/octconv-flops --network resnetv2 --depth 26 --ratio 0.25 --input-size 32 --classes 10
	@echo "curves: $(DEMO)/curves.png  log: $(DEMO)/log.jsonl  checkpoints: $(DEMO)/checkpoints"

# Two worker processes (the machines this runs on have 2 cores and most tests use one); the
# tests of a file stay in one worker, so that they share its module fixtures.
test: fresh-venv
	$(VENV)/bin/pytest -q -p no:cacheprovider -rs --durations=15 -n 2 --dist loadfile test

# A short run for the other supported Pythons (CI): Eq. 4 in both APIs with gradients,
# training in both APIs, one training run on the demo digits scored by octconv-score,
# the ONNX exports in onnxruntime.
SMOKE := test/test_octave_helper.py test/test_install.py \
	test/test_train.py::test_loss_decreases_on_repeated_batches \
	test/test_recipes.py::test_a_recipe_run_scores_exactly_as_it_was_validated \
	test/test_gluon_models.py::test_onnx_export_runs_in_onnxruntime_with_the_same_outputs \
	test/test_deploy.py::test_export_onnx_runs_in_onnxruntime_with_the_same_outputs
smoke: fresh-venv
	$(VENV)/bin/pytest -q -p no:cacheprovider -rs $(SMOKE)

# Horovod for --kv-store horovod (optional): built from source against the venv's mxnet,
# with Gloo (no MPI). Its build imports mxnet (the venv's start-up hook makes that work)
# and needs wheel installed first, since the build runs without isolation.
horovod: venv
	$(PY) -m pip install --quiet wheel==0.45.1
	HOROVOD_WITH_MXNET=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_WITHOUT_TENSORFLOW=1 \
		HOROVOD_WITHOUT_PYTORCH=1 $(PY) -m pip install --no-build-isolation horovod==0.28.1
