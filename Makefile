# medlib: the two commands a new user needs are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.medlib-installed

.PHONY: setup demo test lab bench render clean-runs

setup: $(STAMP)

# One pip command for everything, from pyproject.toml (torch and torchvision pinned there, in the same
# resolution as grad-cam).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (medlib)" > /dev/null
	touch $(STAMP)

demo: setup
	$(PY) -m medlib demo

test: setup
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadfile -q

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

bench: setup
	$(PY) -m medlib bench

render: setup
	$(PY) -m medlib render
