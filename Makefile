# Each target is one line a newcomer can read. `make run` and `make test` install first if needed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help install run test docs-figures clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

install: $(STAMP)  ## create .venv and install segkd with its test and search extras (idempotent)

$(STAMP): pyproject.toml
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test,search]'
	touch $(STAMP)

run: install  ## train the default student on the embedded SynthStreets data
	$(PY) -m segkd.run $(ARGS)

test: install  ## run the whole test suite
	$(PY) -m pytest $(ARGS)

docs-figures: install  ## every figure and table of docs/ (ARCHITECTURE, DATASETS, METHODS), remade here
	bash experiments/docs_figures.sh

clean:  ## remove run outputs, generated data and caches (keeps .venv)
	rm -rf outputs multirun wandb lightning_logs .pytest_cache .cache
