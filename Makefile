# Each target is one line a newcomer can read. `make run` and `make test` install first if needed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# pytest workers of `make test`: one per core, at most 4 (each in-process test trains on one thread)
TEST_WORKERS ?= $(shell n=$$(nproc); echo $$(( n < 4 ? n : 4 )))

.PHONY: help install run test test-study docs-figures clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

install: $(STAMP)  ## create .venv and install segkd with its test and search extras (idempotent)

$(STAMP): pyproject.toml
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test,search]'
	touch $(STAMP)

run: install  ## train the default student on the embedded SynthStreets data
	$(PY) -m segkd.run $(ARGS)

# The rest of the suite is spread over TEST_WORKERS processes (pytest-xdist). The Slurm tests
# (tests/test_slurm*.py: a real one-node Slurm) mostly wait on the scheduler, grace times and requeues,
# so they run beside it, in a second pytest, and print their report after it.
# Exit status 5 is pytest's "no test selected" (ARGS naming files of one kind only).
test: install  ## run the whole test suite
	@$(PY) -m pytest -m slurm $(ARGS) > .pytest-slurm.log 2>&1 & slurm=$$!; \
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not slurm and not study" $(ARGS); rest=$$?; \
	wait $$slurm; slurm=$$?; echo "======== the Slurm tests (run beside the rest) ========"; cat .pytest-slurm.log; \
	[ $$rest -eq 0 -o $$rest -eq 5 ] && [ $$slurm -eq 0 -o $$slurm -eq 5 ] && [ $$rest -eq 0 -o $$slurm -eq 0 ]

# The tutorials of docs/tutorials and the docs' figure scripts, run end to end as a reader runs them
# (marker `study`; one process, so the tutorials start together). CI runs them after `make test`.
test-study: install  ## run the tutorials and docs scripts end to end
	$(PY) -m pytest -m study $(ARGS)

docs-figures: install  ## every figure and table of docs/ (ARCHITECTURE, DATASETS, METHODS), remade here
	bash experiments/docs_figures.sh

clean:  ## remove run outputs, generated data and caches (keeps .venv)
	rm -rf outputs multirun wandb lightning_logs .pytest_cache .cache
