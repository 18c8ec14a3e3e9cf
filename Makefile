# Every target builds .venv in the checkout on first use; installs pin the CPU torch build.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/wdrobust evaluate

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 tests

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -p no:xdist tests/test_layering.py

clean:
	rm -rf $(VENV) runs .pytest_cache
