"""The public entry points: render one image as a pure function of ``(seed, split, index, height,
width)``, write a dataset in the Cityscapes layout, and reuse a written one whose manifest matches.

Why it exists: it keeps everything about files (names, PNG settings, the manifest, atomic writing,
the cache check) apart from the drawing underneath; the package re-exports its public names.

The manifest holds the generation parameters and the byte size of every file written. Reuse checks
both: files deleted or changed since then (a cleaned-up cache, a half-finished copy) would
otherwise make a run train on fewer images without a word, so the dataset is regenerated instead.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from segkd.data.errors import DatasetError
from segkd.data.synthstreets.composer import compose_scene

logger = logging.getLogger("segkd.data.synthstreets")

#: Bump whenever the pictures or labels change, so stale caches are refused instead of reused.
GENERATOR_VERSION = 1
MANIFEST_NAME = "synthstreets.json"
#: The manifest's record of what was written: every file's path under the root and its size in bytes.
#: Manifests written before it existed lack it; they are upgraded in place once the files are found.
_FILES = "files"
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
    return _generate(root, params)


def _generate(root: Path, params: dict, replace: bool = False) -> Path:
    """Write the dataset to a temporary sibling, then move it to ``root`` (in place of the old one if ``replace``)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    stale = sorted(root.parent.glob(f".{root.name}.partial-*"))
    if stale:
        logger.warning("ignoring %d partial SynthStreets dir(s) next to %s, left by an interrupted or concurrent run: "
                       "%s (delete them once no generation is running)", len(stale), root.name,
                       ", ".join(p.name for p in stale))
    start = time.perf_counter()
    tmp = _sibling(root, "partial")
    tmp.mkdir()
    try:
        for split in _SPLITS:
            for index in range(params[f"num_{split}"]):
                rgb, label = render_synthstreets_image(params["seed"], split, index, params["height"], params["width"])
                _write_pair(tmp, split, index, rgb, label)
        _write_manifest(tmp, params, _file_sizes(tmp, params))
        if replace:
            _swap_in(tmp, root, params)
        else:
            _commit(tmp, root, params)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("generated SynthStreets: %d train + %d val images (%dx%d, seed %d) in %.1f s at %s",
                params["num_train"], params["num_val"], params["height"], params["width"], params["seed"],
                time.perf_counter() - start, root)
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
    than silently reused or overwritten: either would make runs quietly incomparable. One made with
    these parameters whose files are no longer what was written is regenerated (see :func:`_verified`).
    """
    params = _params(num_train, num_val, height, width, seed)
    root = Path(root).expanduser()
    manifest = root / MANIFEST_NAME
    if manifest.is_file():
        found = _read_manifest(manifest)
        if _params_of(found) == params:
            return _verified(root, params, found.get(_FILES))
        raise ValueError(
            f"{root} holds SynthStreets made with other parameters ({_describe_diff(_params_of(found), params)}); "
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
    if num_train < 1 or num_val < 1:
        # an empty val split would train without ever being scored; refused before anything is written
        raise DatasetError(
            f"SynthStreets needs at least one image per split, got num_train={num_train} and num_val={num_val}; "
            "set dataset.prepare.num_train and dataset.prepare.num_val to 1 or more"
        )
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


def _verified(root: Path, params: dict, recorded: Optional[dict]) -> Path:
    """``root`` once every file is as the manifest recorded it; regenerated if some are missing or changed.

    Only sizes are compared: a stat per file costs 0.1-0.3 s for the 2000+201-pair dataset, where
    hashing would read its 224 MB at every start. Sizes catch deleted, truncated and foreign files;
    an edit that keeps a file's size is not caught. A manifest without the record (written before
    it existed) is upgraded in place when every file is present, so existing caches stay valid.
    """
    sizes = _file_sizes(root, params)
    changed = [
        name for name, size in sizes.items()
        if size is None or (recorded is not None and recorded.get(name) != size)
    ]
    if not changed:
        if recorded is None:
            _upgrade_manifest(root, params, sizes)
        return root
    logger.warning("SynthStreets at %s: %d of %d files are missing or changed since it was written (first: %s); "
                   "regenerating it", root, len(changed), len(sizes), changed[0])
    try:
        return _generate(root, params, replace=True)
    except OSError as err:
        raise DatasetError(
            f"SynthStreets at {root} has {len(changed)} missing or changed files (first: {changed[0]}) and cannot be "
            f"regenerated ({err}); make {root.parent} writable, or point paths.cache_dir at a writable folder"
        ) from err


def _file_sizes(root: Path, params: dict) -> dict[str, Optional[int]]:
    """Size in bytes of every file these parameters call for, by path under ``root``; None if it is missing."""
    sizes = {}
    for split in _SPLITS:
        for index in range(params[f"num_{split}"]):
            for path in _pair_paths(root, split, index):
                try:
                    sizes[path.relative_to(root).as_posix()] = path.stat().st_size
                except FileNotFoundError:
                    sizes[path.relative_to(root).as_posix()] = None
    return sizes


def _write_manifest(root: Path, params: dict, sizes: dict[str, int]) -> None:
    """The parameters first (what a reader looks for), then the files; replaced atomically, never half written."""
    text = json.dumps({**dict(sorted(params.items())), _FILES: sizes}, indent=2) + "\n"
    tmp = root / f".{MANIFEST_NAME}.{os.getpid()}-{secrets.token_hex(4)}"
    try:
        tmp.write_text(text)
        os.replace(tmp, root / MANIFEST_NAME)
    finally:
        tmp.unlink(missing_ok=True)


def _upgrade_manifest(root: Path, params: dict, sizes: dict[str, int]) -> None:
    """Record the file sizes in an old manifest; a read-only cache keeps checking presence only."""
    try:
        _write_manifest(root, params, sizes)
    except OSError as err:
        logger.info("could not record file sizes in %s (%s); only the files' presence is checked", root, err)


def _describe_diff(found: dict, wanted: dict) -> str:
    """Which parameters differ, so the error says what the cached dir was made with."""
    keys = sorted(set(found) | set(wanted))
    diffs = [f"{k}={found.get(k)!r} there, {wanted.get(k)!r} requested" for k in keys if found.get(k) != wanted.get(k)]
    return "; ".join(diffs) or "unrecognised manifest"


def _pair_paths(root: Path, split: str, index: int) -> tuple[Path, Path]:
    """Where image ``index`` of ``split`` and its label map live, in Cityscapes names."""
    city, stem = image_stem(split, index)
    return (
        root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
        root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png",
    )


def _write_pair(root: Path, split: str, index: int, rgb: np.ndarray, label: np.ndarray) -> None:
    """One image (PNG, converted to cv2's BGR order) and its raw-id label map."""
    image_path, label_path = _pair_paths(root, split, index)
    image_path.parent.mkdir(parents=True, exist_ok=True)
    label_path.parent.mkdir(parents=True, exist_ok=True)
    ok = cv2.imwrite(str(image_path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), _PNG_IMAGE)
    ok &= cv2.imwrite(str(label_path), label, _PNG_LABEL)
    if not ok:
        raise OSError(f"could not write SynthStreets image {image_path.name} under {root}")


def _sibling(root: Path, kind: str) -> Path:
    """A hidden, unique name next to ``root`` (``kind``: partial or replaced), so concurrent runs never collide.

    Not tempfile.mkdtemp: its 0700 mode would survive the rename and hide the data from other users.
    """
    return root.parent / f".{root.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _commit(tmp: Path, root: Path, params: dict) -> None:
    """Rename the finished temporary dir to ``root``; tolerate a concurrent identical generator."""
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    try:
        os.rename(tmp, root)
    except OSError:
        manifest = root / MANIFEST_NAME
        if manifest.is_file() and _params_of(_read_manifest(manifest)) == params:
            shutil.rmtree(tmp, ignore_errors=True)  # another process (e.g. a DDP rank) finished first
            return
        raise


def _swap_in(tmp: Path, root: Path, params: dict) -> None:
    """Replace ``root`` by the finished ``tmp``: the old dir is renamed aside first and deleted last,
    so ``root`` is at every moment the old dataset, nothing, or the new one, never a mix."""
    old = _sibling(root, "replaced")
    try:
        os.rename(root, old)
    except FileNotFoundError:
        pass  # a concurrent run moved it aside first
    _commit(tmp, root, params)
    shutil.rmtree(old, ignore_errors=True)


def _params_of(manifest: dict) -> dict:
    """The generation parameters of a manifest, without its file record."""
    return {k: v for k, v in manifest.items() if k != _FILES}
