# medlib: the two commands a new user needs are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.medlib-installed
QUARTO_KIT := ../shared/tools/quarto/install.sh

.PHONY: setup quarto demo test lab bench render clean-runs

setup: $(STAMP) quarto

# One pip command for everything, from pyproject.toml (torch and torchvision pinned there, in the same
# resolution as grad-cam).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (medlib)" > /dev/null
	touch $(STAMP)

# Quarto renders the site and the manuscripts (Quarto >= 1.7). A quarto on the PATH is used; else the offline kit
# beside the project (our machines and CI) is installed into .quarto/ (about 30 s, once); else pip's quarto-cli
# (which downloads Quarto) goes into .venv. medlib finds all three (medlib/render/quarto.py).
quarto: $(STAMP)
	@if command -v quarto > /dev/null 2>&1; then echo "quarto $$(quarto --version): $$(command -v quarto)"; \
	elif [ -x .quarto/bin/quarto ]; then echo "quarto $$(.quarto/bin/quarto --version): .quarto/bin/quarto"; \
	elif [ -f $(QUARTO_KIT) ]; then bash $(QUARTO_KIT) .quarto > $(VENV)/quarto-install.log 2>&1 \
		|| { tail -20 $(VENV)/quarto-install.log; exit 1; }; echo "quarto $$(.quarto/bin/quarto --version): .quarto/bin/quarto"; \
	elif [ -x $(VENV)/bin/quarto ]; then echo "quarto $$($(VENV)/bin/quarto --version): $(VENV)/bin/quarto"; \
	else $(PY) -m pip install --quiet quarto-cli && echo "quarto $$($(VENV)/bin/quarto --version): $(VENV)/bin/quarto"; fi

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
