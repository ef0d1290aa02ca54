"""segkd: knowledge distillation for semantic segmentation, composed with Hydra, trained with Lightning."""

__version__ = "0.1.0"

#: Config targets of modules that moved into segkd.runtime. Run dirs written before the move store
#: them (resolved_config.yaml, which DDP ranks rebuild their job from, and .hydra/; submitit's pickled
#: jobs, which a requeue starts again): Hydra resolves ``segkd.checkpoint_io.AtomicCheckpointIO`` by
#: attribute lookup, which finds the new module here. ``import segkd.checkpoint_io`` stays an error,
#: so segkd's own code names the new paths.
_MOVED_TARGETS = {"checkpoint_io": "segkd.runtime.checkpoint_io", "loggers": "segkd.runtime.loggers"}


def __getattr__(name: str):
    if name in _MOVED_TARGETS:
        import importlib

        return importlib.import_module(_MOVED_TARGETS[name])
    raise AttributeError(f"module 'segkd' has no attribute {name!r}")
