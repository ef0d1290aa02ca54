"""Wall time of training epochs and validation passes, and the training throughput they imply."""

from __future__ import annotations

import statistics
import time

import lightning as L
from lightning.pytorch import Callback


class EpochTimer(Callback):
    """Times each training epoch (validation excluded) and each validation pass on rank 0.

    Logged per epoch as ``time/train_epoch_s``, ``time/val_epoch_s`` and ``time/train_images_per_s``
    (images of this process); :meth:`summary` gives medians for summary.json. The first epoch pays
    one-off start-up costs, so the median over epochs is the number to compare.
    """

    def __init__(self) -> None:
        self.train_epoch_s: list[float] = []
        self.val_epoch_s: list[float] = []
        self.train_images: list[int] = []
        #: optimizer steps of each training epoch (its seconds per step: train_epoch_s / steps)
        self.train_steps: list[int] = []
        self._start_step = 0
        self._start = 0.0
        self._images = 0
        self._val_in_epoch = 0.0
        self._val_start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._images, self._val_in_epoch = time.perf_counter(), 0, 0.0
        self._start_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._images += len(batch["image"])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning runs epoch-end validation before this hook; keep it out of the training time.
        elapsed = time.perf_counter() - self._start - self._val_in_epoch
        self.train_epoch_s.append(elapsed)
        self.train_images.append(self._images)
        self.train_steps.append(trainer.global_step - self._start_step)
        pl_module.log_dict(
            {"time/train_epoch_s": elapsed, "time/train_images_per_s": self._images / max(elapsed, 1e-9)}
        )

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        elapsed = time.perf_counter() - self._val_start
        self.val_epoch_s.append(elapsed)
        self._val_in_epoch += elapsed
        pl_module.log("time/val_epoch_s", elapsed)

    def step_s(self) -> list[float]:
        """Seconds per optimizer step of each epoch (epochs that took a step)."""
        return [s / n for s, n in zip(self.train_epoch_s, self.train_steps) if n > 0]

    def state_dict(self) -> dict:
        # Kept in checkpoints: a resumed run's timings (and its cost block) cover the epochs before the stop.
        return {"train_epoch_s": self.train_epoch_s, "val_epoch_s": self.val_epoch_s,
                "train_images": self.train_images, "train_steps": self.train_steps}

    def load_state_dict(self, state_dict: dict) -> None:
        for key in ("train_epoch_s", "val_epoch_s", "train_images", "train_steps"):
            setattr(self, key, list(state_dict.get(key, [])))

    def summary(self) -> dict:
        if not self.train_epoch_s:
            return {}
        epoch = statistics.median(self.train_epoch_s)
        return {
            "train_epoch_s_median": epoch,
            "val_epoch_s_median": statistics.median(self.val_epoch_s) if self.val_epoch_s else None,
            "train_images_per_s": statistics.median(self.train_images) / max(epoch, 1e-9),
            "train_epoch_s": self.train_epoch_s,
            "val_epoch_s": self.val_epoch_s,
        }


class Throughput(Callback):
    """Training images per second and seconds per step, over the last ``window`` steps, logged as
    ``perf/images_per_s`` (also in the progress bar) and ``perf/step_s``.

    Measured from one batch's end to the next, so data loading counts: it is the rate the run
    actually trains at. Per process: under DDP multiply by the number of processes. Validation
    passes between two steps are left out.
    """

    def __init__(self, window: int = 20) -> None:
        self.window = max(1, window)
        self._last = None
        self._steps: list[tuple[float, int]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last = None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self._steps = (self._steps + [(now - self._last, len(batch["image"]))])[-self.window:]
            seconds = sum(s for s, _ in self._steps)
            images = sum(n for _, n in self._steps)
            pl_module.log("perf/images_per_s", images / max(seconds, 1e-9), prog_bar=True, on_step=True, on_epoch=False)
            pl_module.log("perf/step_s", seconds / len(self._steps), on_step=True, on_epoch=False)
        self._last = now
