"""What segkd.predict reads: a folder, a glob, one image or a video, as a list of inputs with output names."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})


class InputError(ValueError):
    """The input names nothing segkd.predict can read."""


class UnreadableInput(OSError):
    """One input file that cannot be decoded: reported by name and skipped, the others still run.

    Its own type so that a failure to *write* (a full disk, a read-only folder) is not mistaken for
    a bad input and stops the run instead.
    """


@dataclass(frozen=True)
class Input:
    """One file to predict. ``name`` is its path relative to the input (without suffix): outputs
    keep the input's folder structure, so equal file names in different folders do not collide."""

    path: Path
    name: str

    @property
    def is_video(self) -> bool:
        return self.path.suffix.lower() in VIDEO_SUFFIXES


def find_inputs(spec: str | os.PathLike) -> list[Input]:
    """A folder (searched recursively for image and video files), a glob pattern, or one file.

    A folder contributes only files with an image or video suffix; a glob or a named file is taken
    as given (whatever cannot be decoded is reported and skipped when it is read).
    """
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        known = IMAGE_SUFFIXES | VIDEO_SUFFIXES
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in known)
        if not files:
            raise InputError(f"input folder {path} holds no images or videos "
                             f"(looked for {', '.join(sorted(known))})")
        return _unique([Input(p, p.relative_to(path).with_suffix("").as_posix()) for p in files])
    if path.is_file():
        return [Input(path, path.stem)]
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True) if Path(p).is_file())
        if not files:
            raise InputError(f"input pattern {text} matches no files")
        base = Path(os.path.commonpath([p.parent for p in files]))
        return _unique([Input(p, p.relative_to(base).with_suffix("").as_posix()) for p in files])
    raise InputError(f"input {text} does not exist; give a folder, a glob such as 'frames/*.png' (quoted) or a file")


def _unique(inputs: list[Input]) -> list[Input]:
    """Inputs whose names would collide (``img.jpg`` and ``img.png``, ``drive.mp4`` and ``drive.avi``) keep
    their suffix in the name (``img_jpg``, ``img_png``), so that no output of a run overwrites another."""
    from collections import Counter

    counts = Counter(item.name for item in inputs)
    return [Input(item.path, f"{item.name}_{item.path.suffix.lstrip('.').lower()}") if counts[item.name] > 1 else item
            for item in inputs]


def video_frames(path: Path) -> tuple[Iterator[np.ndarray], float, int]:
    """RGB frames of a video, its frame rate (25 when the file does not say) and its frame count (0: unknown).

    Raises UnreadableInput when the file cannot be opened as a video.
    """
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise UnreadableInput("not a readable video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    count = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    return frames(), fps, count
