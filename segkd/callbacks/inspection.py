"""What the callbacks that look inside networks share: a fixed val batch, the networks to compare, and
writing pictures to disk and to every logger that takes images (W&B)."""

from __future__ import annotations

import re
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator, Optional, Sequence

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn


def fixed_val_batch(trainer: L.Trainer, count: int) -> dict[str, Tensor]:
    """The first ``count`` val samples as one batch: the same images at every epoch and in every run
    on the same data, so pictures compare across epochs and recipes."""
    datamodule = trainer.datamodule
    datamodule.setup("validate")
    dataset = datamodule.val_set
    samples = [dataset[i] for i in range(min(count, len(dataset)))]
    if not samples:
        raise ValueError("the val split is empty: there is nothing to draw")
    sizes = {tuple(s["image"].shape) for s in samples}
    if len(sizes) > 1:  # a stack needs one size; keep the images that share the first one's
        samples = [s for s in samples if tuple(s["image"].shape) == tuple(samples[0]["image"].shape)]
    return {"image": torch.stack([s["image"] for s in samples]), "mask": torch.stack([s["mask"] for s in samples])}


def input_rgb(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalised (N, 3, H, W) network inputs back to (N, H, W, 3) uint8 pictures (albumentations'
    Normalize with max_pixel_value 255, undone)."""
    mean_t = torch.as_tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    rgb = (images.detach().float().cpu() * std_t + mean_t) * 255.0
    return rgb.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()


@contextmanager
def networks_to_compare(pl_module: L.LightningModule) -> Iterator[dict[str, nn.Module]]:
    """``{"teacher": ..., "student": ...}`` in the order pictures show them: an offline-KD system's
    teacher (reloaded for the duration when its cache let it go), or a mutual system's first peer
    under its own name, then the network of interest; a supervised run has the student alone."""
    inspect = getattr(pl_module, "inspection_teacher", None)
    scored = pl_module.scored_nets() if hasattr(pl_module, "scored_nets") else {"net": pl_module.net}
    peers = [(name, net) for name, net in scored.items() if name != "net"]
    with (inspect() if inspect is not None else nullcontext(None)) as teacher:
        nets: dict[str, nn.Module] = {}
        if teacher is not None:
            nets["teacher"] = teacher
        elif peers:
            nets[peers[0][0]] = peers[0][1]
        nets["student"] = pl_module.net
        yield nets


@contextmanager
def eval_mode(nets: Sequence[nn.Module]) -> Iterator[None]:
    """Eval mode and no gradients for the duration; each network's own mode restored afterwards."""
    modes = [net.training for net in nets]
    try:
        for net in nets:
            net.eval()
        with torch.no_grad():
            yield
    finally:
        for net, mode in zip(nets, modes):
            net.train(mode)


def save_and_log(trainer: L.Trainer, pictures: dict[str, np.ndarray], directory: Path, prefix: str,
                 captions: Optional[dict[str, str]] = None) -> list[Path]:
    """Each picture as ``directory/<key>.png`` (characters other than letters, digits, ``.-_`` become
    ``_``) and, as ``<prefix>/<key>``, as an image of every logger that takes images (Lightning's
    WandbLogger.log_image), at the current step."""
    import cv2

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for key, picture in pictures.items():
        path = directory / f"{re.sub(r'[^A-Za-z0-9._-]', '_', key)}.png"
        if not cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")
        written.append(path)
        caption = (captions or {}).get(key)
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key=f"{prefix}/{key}", images=[picture], step=trainer.global_step,
                                 **({"caption": [caption]} if caption else {}))
    return written
