# Set-up and the two README commands. Everything is installed from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Offline raw data: ../shared/data/raw when it exists (override with JAXGEN_RAW_DIR=...).
JAXGEN_RAW_DIR ?= $(if $(wildcard ../shared/data/raw),$(abspath ../shared/data/raw),)
export JAXGEN_RAW_DIR
WORKDIR ?= runs/gated_pixelcnn_cpu
# The main job: Gated PixelCNN's cpu variant at 1,500 steps (85.10 nats in 4.5 min of training on
# a 2-core Xeon; PixelCNN's cpu variant gave 90.85 in 3.9 min, see the README's results).
MAIN_CONFIG := experiments/configs/pixelcnn.py:gated,cpu --config.num_steps=1500

.PHONY: main test compare venv lint coverage gpu-check

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

main: venv
	$(BIN)/python -m experiments.pixelcnn --workdir $(WORKDIR) --config=$(MAIN_CONFIG)

# The whole taxonomy under the cpu budget: the twelve models of binarized MNIST, then the flow
# beside the 256-level models on 8-bit MNIST. Measured 2026-12-07 (2-core AMD EPYC): 1 h 45 min
# with other jobs beside it for the first hour, plus 13 min alone for PixelSNAIL and ImageGPT.
compare: venv
	$(BIN)/python -m experiments.compare --workdir runs/compare_cpu
	$(BIN)/python -m experiments.compare --workdir runs/compare_cpu_8bit \
	  --config=experiments/configs/compare.py:eight_bit

test: venv
	$(BIN)/python -m pytest -n 2 --dist loadfile -q --durations=25

# ruff (pyproject.toml) and mypy over jaxgen/ (setup.cfg).
lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

# The suite with line and branch coverage of jaxgen/ (setup.cfg).
coverage: venv
	$(BIN)/python -m pytest -n 2 --dist loadfile -q --cov --cov-report=term

# On a GPU machine (its own python3 with jax; no venv): installs only the wheels that
# ../shared/tools/gpu-wheels.sh fetched into .whl/ (run it beforehand where a network exists) into
# a temporary folder, then runs the check (<= 8 min): $(GPU_CHECK_OUT)/gpu_check.{json,md}.
GPU_PYTHON ?= python3
GPU_CHECK_OUT ?= runs/gpu_check
gpu-check:
	site=$$(mktemp -d) && $(GPU_PYTHON) -m pip install -q --no-index --no-deps --no-compile \
	  --no-cache-dir --target $$site .whl/*.whl && \
	  PYTHONPATH=$$site:$$PWD $(GPU_PYTHON) -m experiments.gpu_check --out $(GPU_CHECK_OUT)
