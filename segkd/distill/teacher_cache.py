"""Teacher-output caching: run the frozen teacher over the train split once, then replay its logits.

Offline KD with a live teacher pays a teacher forward pass at every step (on a 2-core CPU that is
as much as the whole student step). The teacher is frozen, so its output on an image never changes;
only the augmentation does. The cache therefore stores the teacher's logits on each *whole,
unaugmented* image (and on its mirror image, since a CNN is not exactly flip-equivariant), and each
training sample gets them warped by the geometry its own augmentation applied (scale, pad, crop,
flip: a :class:`segkd.data.geometry.CropGeometry`, recorded by :func:`segkd.data.transforms.geometry`).
Photometric augmentation stays on the student's input alone. The cache stores logits, not
probabilities, so the temperature stays a free choice.

What it reads of the data goes through the data layer's public interface: the split to build from
is a :class:`CacheableSplit` (the datamodule's ``plain_train_set()``), its mean/std come from the
datamodule (``normalisation``), and a built cache reaches the train samples as a per-sample extra
(``SegmentationDataModule.attach_train_extra``): it is a callable from a sample to its
``teacher_logits``.

Layout (chosen so a 1024x2048 Cityscapes image stays practical): fp16, optionally at 1/``stride``
of the image resolution (logits are smooth; replay upsamples bilinearly), and optionally only the
``top_k`` largest logits per pixel with their class ids plus one value for the rest, the
log-mean-exp of the other logits, so that the softmax mass of the rest is exact at T = 1.

The cache is keyed by a hash of the teacher checkpoint's bytes, the dataset's files and the layout;
it is written to a temporary directory and renamed into place, with ``meta.json`` last, so a
crashed build never looks finished. A cache given explicitly that does not match is refused with
the list of differences.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Mapping, Optional, Protocol, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from segkd.data.datasets import SplitManifest
from segkd.data.geometry import CropGeometry
from segkd.models.checkpoint import MAIN_NET
from segkd.models.complexity import count_gmacs

log = logging.getLogger(__name__)

CACHE_VERSION = 1
META = "meta.json"
#: Meta keys written only when they differ from their default (so ordinary caches keep their names).
OPTIONAL_META = {"teacher_net": MAIN_NET, "teacher_input_scale": 1.0}


class TeacherCacheError(ValueError):
    """A teacher-logit cache that cannot be used: missing, incomplete, or built for something else."""


class CacheableSplit(Protocol):
    """What the cache needs of the split it is built over (a :class:`segkd.data.SegmentationFolder`
    is one; ``SegmentationDataModule.plain_train_set()`` gives the train split's, unaugmented):

    * ``len(split)`` and ``split[i]``: a dict with ``index`` and ``image``, normalised and padded
      bottom/right to a multiple of the teacher's input divisor (``plain_train_set(size_divisor)``,
      segkd.models.size_divisor: what the teacher reads, batched by a DataLoader);
    * ``manifest()``: the split's name, dataset class and files (which key the cache);
    * ``image_size(i)``: sample ``i``'s size before padding (what the cache stores).
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict: ...

    def manifest(self) -> SplitManifest: ...

    def image_size(self, index: int) -> tuple[int, int]: ...


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def dataset_fingerprint(manifest: SplitManifest) -> str:
    """The split's files (path under the root, size, mtime): a changed or regenerated image changes it."""
    digest = hashlib.sha1()
    for files in manifest.files:
        for path in files:
            stat = path.stat()
            digest.update(f"{manifest.relative(path)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def stored_size(image_size: Sequence[int], stride: int) -> tuple[int, int]:
    return math.ceil(image_size[0] / stride), math.ceil(image_size[1] / stride)


def bytes_per_image(image_size: Sequence[int], num_classes: int, stride: int = 1, top_k: Optional[int] = None,
                    flip: bool = True) -> int:
    """Disk bytes of one image's cached logits in a given layout (fp16 values, uint8 class ids)."""
    h, w = stored_size(image_size, stride)
    per_pixel = 2 * num_classes if top_k is None else top_k * (2 + 1) + 2
    return (2 if flip else 1) * h * w * per_pixel


def compress(logits: Tensor, top_k: Optional[int]) -> dict[str, Tensor]:
    """(N, C, H, W) logits -> what the layout stores: all of them, or top-k + ids + log-mean-exp of the rest."""
    if top_k is None or top_k >= logits.shape[1]:
        return {"values": logits.half()}
    values, ids = logits.topk(top_k, dim=1)
    rest = logits.scatter(1, ids, float("-inf"))
    rest = torch.logsumexp(rest, dim=1) - math.log(logits.shape[1] - top_k)
    return {"values": values.half(), "ids": ids.to(torch.uint8), "rest": rest.half()}


def expand(values: Tensor, ids: Optional[Tensor], rest: Optional[Tensor], num_classes: int) -> Tensor:
    """The inverse of :func:`compress` for one view: (K, H, W) -> dense (C, H, W) float32 logits."""
    values = values.float()
    if ids is None:
        return values
    dense = rest.float().unsqueeze(0).expand(num_classes, *rest.shape).clone()
    return dense.scatter_(0, ids.long(), values)


def replay(logits: Tensor, geometry: Union[CropGeometry, Sequence[int]], image_size: Sequence[int]) -> Tensor:
    """Warp a view's (C, Hc, Wc) logits of the whole image into one augmented sample's crop.

    ``geometry`` is scale -> pad -> crop -> flip as recorded by the data pipeline (a
    :class:`~segkd.data.geometry.CropGeometry`, or its 11 values in field order); ``logits`` is the
    view of the right orientation (the mirrored image's for a flipped sample). The crop box is
    mapped back into the stored map's coordinates and sampled bilinearly with half-pixel centres
    (roi_align with ``aligned=True``), i.e. exactly what resizing then cropping would give, without
    resizing the whole map. Pixels that fall in the padding get 0 (their labels are ignored).
    """
    from torchvision.ops import roi_align

    sh, sw, pt, pb, pl, pr, x0, y0, x1, y1, flip = CropGeometry.of(geometry)
    hc, wc = logits.shape[-2:]
    if flip:  # the mirrored view: the crop's columns mirror inside the padded, scaled image
        x0, x1 = sw + pl + pr - x1, sw + pl + pr - x0
        pl = pr
    if (hc, wc) == (sh, sw):
        # Unscaled, full-resolution map (the distillation setting trains at scale 1): the crop box
        # lands on whole pixels, where bilinear sampling at pixel centres is the pixel itself, so a
        # slice gives the same values without roi_align's cost (~1 ms per sample on a CPU).
        out = logits.new_zeros(logits.shape[0], y1 - y0, x1 - x0)
        ya, yb, xa, xb = max(y0 - pt, 0), min(y1 - pt, sh), max(x0 - pl, 0), min(x1 - pl, sw)
        if ya < yb and xa < xb:
            out[:, ya - (y0 - pt):yb - (y0 - pt), xa - (x0 - pl):xb - (x0 - pl)] = logits[:, ya:yb, xa:xb]
        return out
    ry, rx = hc / sh, wc / sw
    box = torch.tensor([[0.0, (x0 - pl) * rx, (y0 - pt) * ry, (x1 - pl) * rx, (y1 - pt) * ry]], dtype=logits.dtype)
    out = roi_align(logits.unsqueeze(0), box, output_size=(y1 - y0, x1 - x0), spatial_scale=1.0,
                    sampling_ratio=1, aligned=True)[0]
    # roi_align extrapolates up to one pixel beyond the border; the augmentation padded there instead.
    ys = torch.arange(y0, y1, dtype=torch.float32) - pt + 0.5
    xs = torch.arange(x0, x1, dtype=torch.float32) - pl + 0.5
    inside = ((ys > 0) & (ys < sh))[:, None] & ((xs > 0) & (xs < sw))[None, :]
    return out * inside


class TeacherLogitCache:
    """A built cache on disk, read lazily (memory-mapped) in whichever process reads samples."""

    #: Which teacher of several it serves (:meth:`for_teacher`); None: the one teacher.
    teacher: Optional[str] = None

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_file = self.path / META
        if not meta_file.is_file():
            raise TeacherCacheError(
                f"teacher-logit cache {self.path} is missing or incomplete (no {META}); delete the folder "
                "and run again to rebuild it"
            )
        self.meta = json.loads(meta_file.read_text())
        self._arrays: Optional[dict[str, _NpyRows]] = None
        self._check_files()

    def _check_files(self) -> None:
        for name, shape in self.meta["arrays"].items():
            try:
                array = np.load(self.path / f"{name}.npy", mmap_mode="r")
            except (OSError, ValueError) as err:
                raise TeacherCacheError(
                    f"teacher-logit cache {self.path}: {name}.npy cannot be read ({err}); delete the folder to rebuild it"
                ) from None
            if list(array.shape) != list(shape):
                raise TeacherCacheError(
                    f"teacher-logit cache {self.path}: {name}.npy has shape {list(array.shape)}, meta.json says {shape}; "
                    "delete the folder to rebuild it"
                )

    def __getstate__(self) -> dict:
        # DataLoader workers get the path, not open files; each opens its own.
        return {**self.__dict__, "_arrays": None}

    @property
    def arrays(self) -> dict[str, "_NpyRows"]:
        if self._arrays is None:
            self._arrays = {name: _NpyRows(self.path / f"{name}.npy") for name in self.meta["arrays"]}
        return self._arrays

    def __len__(self) -> int:
        return self.meta["num_images"]

    def for_teacher(self, name: str) -> "TeacherLogitCache":
        """This cache as the extra of teacher ``name`` of several: its samples carry ``teacher_logits/<name>``.
        Two teachers with one cache (the same checkpoint twice) get one extra each."""
        named = copy.copy(self)
        named._arrays = None  # its own open files
        named.teacher = name
        return named

    @property
    def extra_key(self) -> Optional[str]:
        """What tells this extra from another cache's (SegmentationDataModule.attach_train_extra): its teacher."""
        return self.teacher

    @property
    def field(self) -> str:
        """The sample field it fills."""
        return "teacher_logits" if self.teacher is None else f"teacher_logits/{self.teacher}"

    def view(self, index: int, flipped: bool = False) -> Tensor:
        """Dense (C, Hc, Wc) float32 logits of image ``index`` (of its mirror image when ``flipped``)."""
        v = 1 if flipped and self.meta["flip"] else 0
        part = {name: torch.from_numpy(rows.read(index, v)) for name, rows in self.arrays.items()}
        logits = expand(part["values"], part.get("ids"), part.get("rest"), self.meta["num_classes"])
        if flipped and not self.meta["flip"]:  # no mirrored view stored: mirror the logits (approximation)
            logits = logits.flip(-1)
        return logits

    def __call__(self, sample: dict) -> dict:
        """A per-sample extra (``SegmentationDataModule.attach_train_extra``): the teacher's logits
        for this sample's augmented view (its ``index`` and ``geometry``)."""
        geometry = CropGeometry.of(sample["geometry"])
        logits = self.view(sample["index"], flipped=bool(geometry.flip))
        return {self.field: replay(logits, geometry, self.meta["image_size"])}

    def summary(self) -> dict:
        """What a run records about its cache (summary.json): where, how large, how it was stored."""
        meta = self.meta
        return {
            "path": str(self.path), "images": meta["num_images"], "bytes": meta["bytes"],
            "mb_per_image": meta["bytes"] / max(1, meta["num_images"]) / 1e6,
            "stored_size": meta["stored_size"], "stride": meta["stride"], "top_k": meta["top_k"], "flip": meta["flip"],
            "build_time_s": meta["build_time_s"], "build_gmacs": meta.get("build_gmacs"),
            "mb_per_image_at_1024x2048": bytes_per_image((1024, 2048), meta["num_classes"], meta["stride"],
                                                         meta["top_k"], meta["flip"]) / 1e6,
        }

    def check(self, expected: Mapping[str, Any]) -> None:
        """Refuse a cache built for another teacher, dataset or layout, naming each difference."""
        # Keys written only when not at their default are compared too when the cache has them.
        keys = list(expected) + [k for k in OPTIONAL_META if k in self.meta and k not in expected]
        diff = [f"{k}: cache has {self.meta.get(k)!r}, this run needs {expected.get(k, OPTIONAL_META.get(k))!r}"
                for k in keys if self.meta.get(k, OPTIONAL_META.get(k)) != expected.get(k, OPTIONAL_META.get(k))]
        if diff:
            raise TeacherCacheError(
                f"teacher-logit cache {self.path} does not match this run ({'; '.join(diff)}); point "
                "system.teacher.cache.path at the right cache, or drop it to build one for this teacher"
            )


class _NpyRows:
    """Reads one (image, view) slab of an .npy array with a positioned read.

    A memory map would do too, but every page it touches counts as the process's resident memory
    for the rest of the run (gigabytes for a large split); a read leaves them in the page cache only.
    """

    def __init__(self, path: Path) -> None:
        mapped = np.load(path, mmap_mode="r")
        self.shape, self.dtype, self.offset = mapped.shape, mapped.dtype, mapped.offset
        self.slab = int(np.prod(self.shape[2:])) * self.dtype.itemsize
        self.fd = os.open(path, os.O_RDONLY)
        del mapped

    def read(self, index: int, view: int) -> np.ndarray:
        position = self.offset + (index * self.shape[1] + view) * self.slab
        out = np.empty(self.shape[2:], dtype=self.dtype)
        # Straight into the array: 6x faster than pread's bytes plus a copy (measured per sample).
        got = os.preadv(self.fd, [memoryview(out).cast("B")], position)
        if got != self.slab:
            raise TeacherCacheError(f"teacher-logit cache file ended early at image {index}; delete the folder to rebuild it")
        return out

    def __del__(self) -> None:
        try:
            os.close(self.fd)
        except (AttributeError, OSError):
            pass


def expected_meta(teacher_checkpoint: str | Path, split: SplitManifest, num_classes: int, stride: int,
                  top_k: Optional[int], flip: bool, mean: Sequence[float], std: Sequence[float],
                  teacher_net: str = MAIN_NET, input_scale: float = 1.0) -> dict:
    """Everything a cache's content depends on; its hash names the cache folder.

    ``teacher_net`` (which network of the checkpoint teaches) and ``input_scale`` (the scale the
    teacher looks at the images at, segkd.distill.teacher.RescaledTeacher) enter only when they are
    not the defaults, so the caches of ordinary teachers keep their names.
    """
    meta = {
        "version": CACHE_VERSION,
        "teacher_sha256": file_sha256(teacher_checkpoint),
        "dataset": split.dataset,
        "split": split.split,
        "num_images": len(split),
        "files": dataset_fingerprint(split),
        "num_classes": num_classes,
        "stride": stride,
        "top_k": top_k,
        "flip": flip,
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
    }
    for key, value in (("teacher_net", teacher_net), ("teacher_input_scale", float(input_scale))):
        if value != OPTIONAL_META[key]:
            meta[key] = value
    return meta


def cache_key(meta: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]


@torch.no_grad()
def build_cache(teacher: nn.Module, dataset: CacheableSplit, path: str | Path, meta: Mapping[str, Any],
                batch_size: int = 8, num_workers: int = 0, device: torch.device | str = "cpu") -> TeacherLogitCache:
    """Run ``teacher`` over ``dataset`` (untransformed images, normalised and padded to the teacher's
    divisor by its eval transform) and write the cache atomically to ``path``."""
    from rich.progress import Progress

    path = Path(path)
    stride, top_k, flip, c = meta["stride"], meta["top_k"], meta["flip"], meta["num_classes"]
    views = 2 if flip else 1
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    remove_stale_builds(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    writer = _hold_writer(tmp)
    arrays: dict[str, np.ndarray] = {}
    image_size = None
    gmacs_per_view: Optional[float] = None
    start = time.perf_counter()
    was_training = teacher.training
    teacher.eval()
    try:
        with Progress(transient=True) as progress:
            task = progress.add_task(f"teacher logits -> {path.name}", total=len(dataset))
            done = reported = 0
            for batch in loader:
                index = batch["index"]
                size = tuple(int(s) for s in dataset.image_size(int(index[0])))
                if image_size is None:
                    image_size = size
                    hc, wc = stored_size(size, stride)
                    k = c if top_k is None or top_k >= c else top_k
                    shapes = {"values": (len(dataset), views, k, hc, wc)}
                    if k < c:
                        shapes.update(ids=(len(dataset), views, k, hc, wc), rest=(len(dataset), views, hc, wc))
                    dtypes = {"values": np.float16, "ids": np.uint8, "rest": np.float16}
                    arrays = {n: np.lib.format.open_memmap(tmp / f"{n}.npy", mode="w+", dtype=dtypes[n], shape=s)
                              for n, s in shapes.items()}
                elif size != image_size:
                    raise TeacherCacheError(
                        f"the teacher cache needs images of one size; {dataset.manifest().files[int(index[0])][0]} is {size}, "
                        f"the first image was {image_size}"
                    )
                images = batch["image"].to(device)
                if gmacs_per_view is None:  # the build's compute, recorded in meta.json (segkd.compare amortises it)
                    gmacs_per_view = count_gmacs(lambda: teacher(images[:1]))
                for v in range(views):
                    x = images.flip(-1) if v == 1 else images
                    logits = teacher(x)[..., : image_size[0], : image_size[1]].float()
                    if stride > 1:
                        logits = F.adaptive_avg_pool2d(logits, stored_size(image_size, stride))
                    for name, value in compress(logits, top_k).items():
                        arrays[name][index.numpy(), v] = value.cpu().numpy()
                done += len(index)
                progress.update(task, completed=done)
                if not progress.console.is_terminal and done >= reported + len(dataset) / 10:
                    # a log file gets no progress bar: a line per tenth, so a long build is seen moving
                    reported, elapsed = done, time.perf_counter() - start
                    log.info("teacher-logit cache: %d/%d images in %.0f s, ~%.0f s left", done, len(dataset),
                             elapsed, elapsed / done * (len(dataset) - done))
        for array in arrays.values():
            array.flush()
        meta = {**meta, "image_size": list(image_size), "stored_size": list(stored_size(image_size, stride)),
                "arrays": {n: list(a.shape) for n, a in arrays.items()},
                "bytes": int(sum(a.nbytes for a in arrays.values())), "build_time_s": time.perf_counter() - start,
                "build_gmacs": (gmacs_per_view or 0.0) * views * len(dataset)}
        arrays.clear()
        _write_synced(tmp / META, json.dumps(meta, indent=2))
        (tmp / WRITER).unlink()  # the finished cache holds only its arrays and meta.json
        try:
            os.rename(tmp, path)
        except OSError:  # another process finished the same cache first: theirs is as good as ours
            if not (path / META).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(writer)
        teacher.train(was_training)
    log.info("teacher-logit cache for %d images built in %.0f s: %s (%.2f MB per image)",
             meta["num_images"], meta["build_time_s"], path, meta["bytes"] / max(1, meta["num_images"]) / 1e6)
    return TeacherLogitCache(path)


#: A build's writer mark inside its temporary dir: flock-ed while the build runs (the kernel releases it
#: however the builder ends), so a later build tells a live build from the leftovers of a killed one.
WRITER = ".writer"
#: A temporary dir without a writer mark (a build of an older segkd) counts as stale after this long.
UNMARKED_STALE_S = 3600


def _hold_writer(tmp: Path) -> int:
    import fcntl

    fd = os.open(tmp / WRITER, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def remove_stale_builds(path: Path) -> list[Path]:
    """Delete the temporary dirs that killed builds of this cache left (up to a whole cache each); a
    build still running keeps its own. Returns what was removed."""
    import fcntl

    removed = []
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        mark = tmp / WRITER
        if mark.exists():
            try:
                fd = os.open(mark, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its writer is alive
            finally:
                os.close(fd)
        elif time.time() - tmp.stat().st_mtime < UNMARKED_STALE_S:
            continue
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp)
        log.info("teacher-logit cache: removed %s, left by a build that did not finish", tmp)
    return removed


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def open_or_build(teacher: nn.Module, teacher_checkpoint: str | Path, dataset: CacheableSplit, num_classes: int,
                  cache_dir: str | Path, path: Optional[str | Path] = None, stride: int = 1,
                  top_k: Optional[int] = None, flip: bool = True, batch_size: int = 8, num_workers: int = 0,
                  device: torch.device | str = "cpu", build: bool = True,
                  teacher_net: str = MAIN_NET, input_scale: float = 1.0, *,
                  normalisation: tuple[Sequence[float], Sequence[float]]) -> TeacherLogitCache:
    """The cache for this teacher and split: the given ``path`` (checked), else the keyed one under
    ``cache_dir``, built first if it does not exist (only when ``build``; other ranks wait and open).

    ``dataset`` is the unaugmented split (``SegmentationDataModule.plain_train_set()``);
    ``normalisation`` is the ``(mean, std)`` its images are normalised with
    (``SegmentationDataModule.normalisation``), which is part of the cache's key: the teacher must
    see what the student sees."""
    mean, std = normalisation
    split = dataset.manifest()
    meta = expected_meta(teacher_checkpoint, split, num_classes, stride, top_k, flip, mean, std, teacher_net,
                         input_scale)
    if path is not None:
        cache = TeacherLogitCache(path)
        cache.check(meta)
        return cache
    target = Path(cache_dir) / f"{split.dataset.lower()}-{split.split}-{cache_key(meta)}"
    if (target / META).is_file():
        cache = TeacherLogitCache(target)
        log.info("teacher-logit cache: reusing %s", target)
        return cache
    if not build:
        raise TeacherCacheError(f"teacher-logit cache {target} was not built; rank 0 builds it first")
    log.info("teacher-logit cache: building %s for %d %s images (once per teacher and split)",
             target, len(dataset), split.split)
    return build_cache(teacher, dataset, target, meta, batch_size, num_workers, device)

