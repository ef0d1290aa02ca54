"""segkd.predict's work: one network over your images and videos, what it sees written in the
Cityscapes palette (``masks/<name>.png`` and ``overlays/<name>.png`` per image, ``<name>_mask.mp4``
and ``<name>_overlay.mp4`` per video), a file that cannot be read reported on stderr and skipped."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from segkd.inference.data import normalize, to_input
from segkd.inference.drawing import check_alpha, colorize, overlay
from segkd.inference.predictor import SegmentationPredictor
from segkd.data.io import decode_image
from segkd.inference.sources import Input, UnreadableInput, video_frames
from segkd.inference.writers import write_image

VIDEO_CODEC = "mp4v"


def predict_inputs(predictor: SegmentationPredictor, inputs: Sequence[Input], device: torch.device,
                   output_dir: Path, alpha: float) -> dict:
    """Predict every input with ``predictor`` (on ``device``, in eval mode), one image or frame at a
    time, and write masks and overlays blended at ``alpha`` into ``output_dir``. Returns the counts
    (``images``, ``videos``, ``frames``), the ``skipped`` files with their reasons and ``time_s``."""
    run = _Run(predictor, device, Path(output_dir), alpha)
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
    return {"images": run.images, "videos": run.videos, "frames": run.frames, "skipped": run.skipped,
            "time_s": seconds}



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
        bgr = decode_image(item.path, cv2.IMREAD_COLOR)
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
