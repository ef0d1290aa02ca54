"""The public entry points: render one image as a pure function of ``(seed, split, index, height,
width)``, write a dataset in the Cityscapes layout, and reuse a written one whose manifest matches.

Why it exists: it keeps everything about files (names, PNG settings, the manifest, atomic writing,
the cache check) apart from the drawing underneath; the package re-exports its public names.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
from pathlib import Path

import cv2
import numpy as np

from segkd.data.synthstreets.composer import compose_scene

logger = logging.getLogger("segkd.data.synthstreets")

#: Bump whenever the pictures or labels change, so stale caches are refused instead of reused.
GENERATOR_VERSION = 1
MANIFEST_NAME = "synthstreets.json"
#: Invented city names; val uses other cities, as Cityscapes does.
TRAIN_CITIES: tuple[str, ...] = ("synthberg", "procville", "noisendorf")
VAL_CITIES: tuple[str, ...] = ("pixelheim", "rasterburg")
_SPLITS = {"train": (1, TRAIN_CITIES), "val": (2, VAL_CITIES)}
_FRAME = 19  # Cityscapes' annotated frame number
# Sensor noise makes the photos compress poorly (~40%), so they are stored uncompressed: twice as
# fast to write and to decode in every training epoch. Label maps compress ~20x at level 1.
_PNG_IMAGE = [cv2.IMWRITE_PNG_COMPRESSION, 0]
_PNG_LABEL = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def image_stem(split: str, index: int) -> tuple[str, str]:
    """``(city, stem)`` of image ``index``; a function of the index alone, so prefixes stay stable."""
    cities = _SPLITS[split][1]
    city = cities[index % len(cities)]
    return city, f"{city}_{index // len(cities):06d}_{_FRAME:06d}"


def render_synthstreets_image(
    seed: int, split: str, index: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """One scene as ``(RGB uint8 HxWx3, raw-id uint8 HxW)``; depends only on its arguments."""
    code = _SPLITS[split][0]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), code, int(index)]))
    return compose_scene(rng, int(height), int(width))


def generate_synthstreets(
    root: str | os.PathLike,
    num_train: int = 300,
    num_val: int = 61,
    height: int = 128,
    width: int = 256,
    seed: int = 0,
) -> Path:
    """Write SynthStreets under ``root`` (which must not exist, or be an empty directory).

    The files go to a temporary sibling first; the manifest is written last and the directory is
    renamed into place, so ``root`` either holds a complete dataset or nothing.
    """
    params = _params(num_train, num_val, height, width, seed)
    root = Path(root).expanduser()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} already exists and is not empty; generate_synthstreets never overwrites")
    root.parent.mkdir(parents=True, exist_ok=True)
    stale = sorted(root.parent.glob(f".{root.name}.partial-*"))
    if stale:
        logger.warning("ignoring %d partial SynthStreets dir(s) next to %s, left by an interrupted or concurrent run: "
                       "%s (delete them once no generation is running)", len(stale), root.name,
                       ", ".join(p.name for p in stale))
    start = time.perf_counter()
    # not tempfile.mkdtemp: its 0700 mode would survive the rename and hide the data from other users
    tmp = root.parent / f".{root.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        for split, count in (("train", num_train), ("val", num_val)):
            for index in range(count):
                rgb, label = render_synthstreets_image(seed, split, index, height, width)
                _write_pair(tmp, split, index, rgb, label)
        (tmp / MANIFEST_NAME).write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
        _commit(tmp, root, params)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("generated SynthStreets: %d train + %d val images (%dx%d, seed %d) in %.1f s at %s",
                num_train, num_val, height, width, seed, time.perf_counter() - start, root)
    return root


def ensure_synthstreets(
    root: str | os.PathLike,
    num_train: int = 300,
    num_val: int = 61,
    height: int = 128,
    width: int = 256,
    seed: int = 0,
) -> Path:
    """Return ``root`` holding SynthStreets made with these parameters, generating it if absent.

    A directory made with other parameters (or by another generator version) is refused rather
    than silently reused or overwritten: either would make runs quietly incomparable.
    """
    params = _params(num_train, num_val, height, width, seed)
    root = Path(root).expanduser()
    manifest = root / MANIFEST_NAME
    if manifest.is_file():
        found = _read_manifest(manifest)
        if found == params:
            return root
        raise ValueError(
            f"{root} holds SynthStreets made with other parameters ({_describe_diff(found, params)}); "
            "delete that directory or choose another root."
        )
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ValueError(
            f"{root} exists and is not empty but has no {MANIFEST_NAME}, so it is not a finished SynthStreets "
            "dataset; delete it or choose another root."
        )
    return generate_synthstreets(root, num_train, num_val, height, width, seed)


def _params(num_train, num_val, height, width, seed) -> dict:
    """Validated parameters plus the generator version: exactly what the manifest stores and compares."""
    values = {"num_train": num_train, "num_val": num_val, "height": height, "width": width, "seed": seed}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"SynthStreets {name} must be an int, got {value!r}")
    if num_train < 1 or num_val < 0:
        raise ValueError(f"SynthStreets needs num_train >= 1 and num_val >= 0, got {num_train} and {num_val}")
    if height < 32 or width < 32:
        raise ValueError(f"SynthStreets images must be at least 32x32, got {height}x{width}")
    if seed < 0:
        raise ValueError(f"SynthStreets seed must be >= 0, got {seed}")
    return {**{k: int(v) for k, v in values.items()}, "version": GENERATOR_VERSION}


def _read_manifest(path: Path) -> dict:
    """The manifest as a dict; an unreadable one is reported as such rather than as a mismatch."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is unreadable ({err}); delete {path.parent} or choose another root.") from err
    return found if isinstance(found, dict) else {}


def _describe_diff(found: dict, wanted: dict) -> str:
    """Which parameters differ, so the error says what the cached dir was made with."""
    keys = sorted(set(found) | set(wanted))
    diffs = [f"{k}={found.get(k)!r} there, {wanted.get(k)!r} requested" for k in keys if found.get(k) != wanted.get(k)]
    return "; ".join(diffs) or "unrecognised manifest"


def _write_pair(root: Path, split: str, index: int, rgb: np.ndarray, label: np.ndarray) -> None:
    """One image (PNG, converted to cv2's BGR order) and its raw-id label map, Cityscapes names."""
    city, stem = image_stem(split, index)
    image_dir = root / "leftImg8bit" / split / city
    label_dir = root / "gtFine" / split / city
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    ok = cv2.imwrite(str(image_dir / f"{stem}_leftImg8bit.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), _PNG_IMAGE)
    ok &= cv2.imwrite(str(label_dir / f"{stem}_gtFine_labelIds.png"), label, _PNG_LABEL)
    if not ok:
        raise OSError(f"could not write SynthStreets image {stem} under {root}")


def _commit(tmp: Path, root: Path, params: dict) -> None:
    """Rename the finished temporary dir to ``root``; tolerate a concurrent identical generator."""
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    try:
        os.rename(tmp, root)
    except OSError:
        manifest = root / MANIFEST_NAME
        if manifest.is_file() and _read_manifest(manifest) == params:
            shutil.rmtree(tmp, ignore_errors=True)  # another process (e.g. a DDP rank) finished first
            return
        raise
