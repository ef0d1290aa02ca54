"""Command line: ``python -m segkd.predict ckpt_path=PATH input=DIR_OR_FILE_OR_GLOB [output_dir=...]``

Runs one network of any segkd checkpoint on your own images or videos and writes what it sees, in
the Cityscapes palette, into ``output_dir`` (by default the run dir, outputs/predict/runs/<time>/):

- each image: ``masks/<name>.png`` (the colour-coded prediction) and ``overlays/<name>.png`` (blended
  over the image); ``<name>`` is the path below the input folder, so sub-folders are kept;
- each video: ``<name>_mask.mp4`` and ``<name>_overlay.mp4`` at the video's frame rate (mp4v), no
  frame files (``ffmpeg -i <name>_overlay.mp4 frames/%05d.png`` makes them if needed).

A file that cannot be read is reported by name on stderr and skipped; the others are still written.
The command fails (one line, exit status 1) only when no input could be read at all. Inference is
one image at a time on one device (``device=auto``: a GPU when there is one); the same whole/slide
and TTA options as segkd.evaluate apply.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import cv2
import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from segkd.config import to_plain
from segkd.inference import SegmentationPredictor, colorize, overlay
from segkd.inference.drawing import check_alpha
from segkd.inference.checkpoint import network_from
from segkd.inference.data import normalize, to_input
from segkd.inference.devices import resolve_device
from segkd.inference.sources import Input, InputError, UnreadableInput, find_inputs, video_frames
from segkd.inference.writers import write_image
from segkd.runtime.errors import errors_in_one_line

VIDEO_CODEC = "mp4v"


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    with errors_in_one_line():
        predict(cfg)


def predict(cfg: DictConfig) -> dict:
    """Predict every input, write masks and overlays, and return what was done (counts, skips, speed)."""
    net, _, ckpt_path = network_from(cfg.get("ckpt_path"), cfg.net)
    if not cfg.get("input"):
        raise InputError("no input given; set input=DIR (searched recursively), input='frames/*.png' or input=FILE")
    inputs = find_inputs(str(cfg.input))
    device = resolve_device(str(cfg.device))
    predictor = SegmentationPredictor(net, mode=cfg.mode, window=to_plain(cfg.window), stride=to_plain(cfg.stride),
                                      flip=cfg.tta.flip, scales=to_plain(cfg.tta.scales)).to(device).eval()
    run = _Run(predictor, device, Path(cfg.output_dir), cfg.overlay_alpha)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    start = time.perf_counter()
    with Progress(*columns) as progress:
        task = progress.add_task("predicting", total=len(inputs))  # a video counts 1 until its frames are known
        for item in inputs:
            try:
                if item.is_video:
                    run.video(item, progress, task)
                else:
                    run.image(item)
                    progress.advance(task)
            except UnreadableInput as err:
                run.skipped.append({"path": str(item.path), "reason": str(err)})
                print(f"segkd: skipped {item.path}: {err}", file=sys.stderr)
                progress.advance(task)
    seconds = time.perf_counter() - start

    done = run.images + run.frames
    summary = {
        "checkpoint": str(ckpt_path), "net": cfg.net, "inputs": len(inputs), "images": run.images,
        "videos": run.videos, "frames": run.frames, "skipped": run.skipped, "time_s": seconds,
        "images_per_s": done / seconds if done and seconds > 0 else None, "output_dir": str(run.output_dir),
    }
    if done == 0:
        raise InputError(f"none of the {len(inputs)} inputs could be read (each is listed above); nothing was written")
    Console().print(
        f"{run.images} images" + (f" and {run.videos} videos ({run.frames} frames)" if run.videos else "")
        + f" in {seconds:.1f} s: {summary['images_per_s']:.2f} images/s on {device}"
        + (f"; {len(run.skipped)} unreadable file(s) skipped" if run.skipped else "")
        + f"\nmasks and overlays in {run.output_dir}", highlight=False, markup=False,
    )
    return summary


class _Run:
    """One network over the inputs: reads, predicts and writes, and counts what it did."""

    def __init__(self, predictor: SegmentationPredictor, device: torch.device, output_dir: Path, alpha: float) -> None:
        self.predictor = predictor
        self.device = device
        self.output_dir = output_dir
        self.alpha = check_alpha(alpha)
        self.transform = normalize()
        self.images = self.videos = self.frames = 0
        self.skipped: list[dict] = []

    def labels(self, image: np.ndarray) -> np.ndarray:
        """HxW train ids of an HxWx3 RGB image."""
        batch = to_input(image, self.transform).unsqueeze(0).to(self.device)
        with torch.inference_mode():
            return self.predictor(batch).argmax(dim=1)[0].to(torch.uint8).cpu().numpy()

    def image(self, item: Input) -> None:
        bgr = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise UnreadableInput("not a readable image (missing, truncated or another format)")
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        labels = self.labels(image)
        write_image(self.output_dir / "masks" / f"{item.name}.png", colorize(labels))
        write_image(self.output_dir / "overlays" / f"{item.name}.png", overlay(image, labels, self.alpha))
        self.images += 1

    def video(self, item: Input, progress: Progress, task: int) -> None:
        frames, fps, count = video_frames(item.path)
        if count > 1:
            progress.update(task, total=progress.tasks[task].total + count - 1)
        writers: Optional[tuple[cv2.VideoWriter, cv2.VideoWriter]] = None
        seen = 0
        try:
            for frame in frames:
                labels = self.labels(frame)
                if writers is None:
                    writers = tuple(self._video_writer(f"{item.name}_{kind}.mp4", fps, frame.shape)
                                    for kind in ("mask", "overlay"))
                for writer, picture in zip(writers, (colorize(labels), overlay(frame, labels, self.alpha))):
                    writer.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
                seen += 1
                if count == 0 or seen <= count:
                    progress.advance(task)
        finally:
            for writer in writers or ():
                writer.release()
        if seen == 0:
            raise UnreadableInput("a video file without a single readable frame")
        self.videos += 1
        self.frames += seen

    def _video_writer(self, name: str, fps: float, shape: tuple[int, ...]) -> cv2.VideoWriter:
        path = self.output_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*VIDEO_CODEC), fps, (shape[1], shape[0]))
        if not writer.isOpened():
            raise OSError(f"cannot write the video {path} (codec {VIDEO_CODEC})")
        return writer


if __name__ == "__main__":
    main()
