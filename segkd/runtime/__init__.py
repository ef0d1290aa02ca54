"""The runtime: what runs a segkd job, whatever the job trains.

Launching and processes (how DDP ranks > 0 find their job: ``processes``), cluster ranks from
submitit jobs (``cluster``), reductions across processes (``distributed``), atomic checkpoint writes
(``checkpoint_io``), a run's provenance (``provenance``), loggers (``loggers``) and user errors
shown as one line (``errors``). It knows no model, system, loss or dataset: nothing here imports
segkd.models, systems, distill, losses, data or metrics, nor a command module
(tests/test_import_rules.py).
"""
