"""Layer-wise images: what chosen layers of teacher and student compute on the same val images."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import lightning as L
from lightning.pytorch import Callback

from segkd.callbacks.inspection import eval_mode, fixed_val_batch, input_rgb, networks_to_compare, save_and_log
from segkd.distill.teacher import unwrapped
from segkd.distill.features import FeatureRecorder
from segkd.visual.knowledge import AGREEMENT_LEGEND
from segkd.visual.panels import knowledge_panels, layer_columns, layer_panels, prediction_panels


class LayerImages(Callback):
    """Every ``every_n_epochs`` (and after the last epoch), on the first ``num_images`` val images:

    - per layer in ``layers`` (feature refs as the distillation paradigms name them, e.g. ``encoder#3``,
      ``decoder`` (segkd.models.roles), or a UNet's ``decoder.blocks.2``): channel mean and PCA-to-RGB of teacher and student, and the |difference|
      of their means (segkd.visual.panels);
    - input | ground truth | teacher | student predictions in the Cityscapes palette;
    - with a teacher: its entropy, off-argmax mass and its agreement with the student.

    PNGs go to ``dirpath/epoch<NNN>/`` and, as images, to every logger that takes them (W&B). The
    networks are switched to eval mode for the pass and hooks are attached only for it, so the
    callback costs nothing between its epochs; when it is not configured it does not exist.
    ``teacher_layers`` names the teacher's paths when they differ from the student's (null: the same).
    A teacher let go by the logit cache is reloaded for the pass.
    """

    def __init__(self, layers: Sequence[str], dirpath: str, every_n_epochs: int = 1, num_images: int = 4,
                 teacher_layers: Optional[Sequence[str]] = None, overlay_alpha: float = 0.5) -> None:
        if every_n_epochs < 1 or num_images < 1:
            raise ValueError(f"layer images: every_n_epochs ({every_n_epochs}) and num_images ({num_images}) must be >= 1")
        self.layers = list(layers)
        self.teacher_layers = list(teacher_layers) if teacher_layers is not None else None
        if self.teacher_layers is not None and len(self.teacher_layers) != len(self.layers):
            raise ValueError(
                f"layer images: teacher_layers has {len(self.teacher_layers)} paths for {len(self.layers)} layers; "
                "give one teacher path per student path (or null: the same paths)"
            )
        self.dirpath = Path(dirpath)
        self.every_n_epochs = every_n_epochs
        self.num_images = num_images
        self.overlay_alpha = overlay_alpha
        self._batch = None
        self.written: list[Path] = []
        #: Seconds each drawing took (networks, pictures, files, loggers): what the callback costs.
        self.draw_seconds: list[float] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Layers a network does not have are one line before training, not an error at the first drawing."""
        from segkd.models.roles import feature_problem, missing_feature

        nets = {"student": pl_module.net}
        if getattr(pl_module, "teacher", None) is not None:
            nets["teacher"] = unwrapped(pl_module.teacher)
        for role, net in nets.items():
            for ref in self.teacher_layers if role != "student" and self.teacher_layers else self.layers:
                if missing_feature(net, ref):
                    why = feature_problem(net, ref, role, nets) or f"the {role} has {missing_feature(net, ref)}"
                    raise ValueError(f"callbacks.layer_images.layers: {why}")

    def _due(self, trainer: L.Trainer) -> bool:
        epoch = trainer.current_epoch + 1
        return epoch % self.every_n_epochs == 0 or epoch >= (trainer.max_epochs or 0)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not self._due(trainer):
            return
        start = time.perf_counter()
        self.written += self.draw(trainer, pl_module, self.dirpath / f"epoch{trainer.current_epoch:03d}")
        self.draw_seconds.append(time.perf_counter() - start)

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule, directory: Path) -> list[Path]:
        if self._batch is None:
            self._batch = fixed_val_batch(trainer, self.num_images)
        images, mask = self._batch["image"].to(pl_module.device), self._batch["mask"]
        with networks_to_compare(pl_module) as nets, eval_mode(list(nets.values())):
            paths = {role: (self.teacher_layers if role != "student" and self.teacher_layers else self.layers)
                     for role in nets}
            recorders = {role: FeatureRecorder(unwrapped(net), paths[role], owner=role) for role, net in nets.items()}
            try:
                logits, features = {}, {}
                for role, net in nets.items():
                    with recorders[role].record():
                        logits[role] = net(images).float().cpu()
                        features[role] = [recorders[role].get(ref).detach().float().cpu() for ref in paths[role]]
            finally:
                for recorder in recorders.values():
                    recorder.remove()
        size = tuple(images.shape[-2:])
        roles = list(nets)
        pictures, captions = {}, {}
        for i, ref in enumerate(self.layers):
            pictures[ref] = layer_panels({role: features[role][i] for role in roles}, size)
            captions[ref] = " | ".join(layer_columns(roles))
        datamodule = trainer.datamodule
        rgb = input_rgb(self._batch["image"], datamodule.mean, datamodule.std)
        pictures["predictions"] = prediction_panels(rgb, mask, logits, self.overlay_alpha)
        captions["predictions"] = " | ".join(["input", "ground truth", *roles])
        if "teacher" in logits:
            pictures["teacher_knowledge"] = knowledge_panels(logits["teacher"], logits["student"], mask,
                                                             pl_module.hparams.get("ignore_index", 255))
            captions["teacher_knowledge"] = f"teacher entropy | teacher off-argmax mass | agreement ({AGREEMENT_LEGEND})"
        return save_and_log(trainer, pictures, directory, "layers", captions)
