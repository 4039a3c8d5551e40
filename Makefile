# Set-up and the two README commands. Everything is installed from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Offline raw data: ../shared/data/raw when it exists (override with JAXGEN_RAW_DIR=...).
JAXGEN_RAW_DIR ?= $(if $(wildcard ../shared/data/raw),$(abspath ../shared/data/raw),)
export JAXGEN_RAW_DIR
WORKDIR ?= runs/pixelcnn_cpu

.PHONY: main test venv lint

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

main: venv
	$(BIN)/python -m experiments.pixelcnn --workdir $(WORKDIR) --config=experiments/configs/pixelcnn.py:cpu

test: venv
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
