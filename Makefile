# Set-up and the two README commands. Everything is installed from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Offline raw data: ../shared/data/raw when it exists (override with JAXGEN_RAW_DIR=...).
JAXGEN_RAW_DIR ?= $(if $(wildcard ../shared/data/raw),$(abspath ../shared/data/raw),)
export JAXGEN_RAW_DIR
WORKDIR ?= runs/pixelcnn_cpu

.PHONY: main test compare venv lint

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

main: venv
	$(BIN)/python -m experiments.pixelcnn --workdir $(WORKDIR) --config=experiments/configs/pixelcnn.py:cpu

# Every family on binarized MNIST under the cpu_hour budget (about an hour on a 2-core CPU).
compare: venv
	$(BIN)/python -m experiments.compare --workdir runs/compare_cpu_hour

test: venv
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
