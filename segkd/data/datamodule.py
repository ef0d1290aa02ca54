"""One LightningDataModule for every dataset: the dataset class and its root come from config."""

from __future__ import annotations

import logging
from typing import Callable, Optional, Sequence

import lightning as L
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader

from segkd.data.class_stats import class_statistics
from segkd.data.datasets import SegmentationFolder
from segkd.data.errors import DatasetError
from segkd.data.io import read_size
from segkd.data.sampling import BatchPlan, SeededSampler, plan_batches, resolve_seed
from segkd.data.transforms import IMAGENET_MEAN, IMAGENET_STD, SIZE_DIVISOR, eval_transform, train_transform

log = logging.getLogger(__name__)

#: A per-sample extra: takes the transformed sample, returns the fields to add (see attach_train_extra).
Extra = Callable[[dict], dict]


def _extra_key(extra: Extra) -> tuple:
    """What an attached extra replaces: one of its type and ``extra_key`` (None when it states none)."""
    return type(extra), getattr(extra, "extra_key", None)


class SegmentationDataModule(L.LightningDataModule):
    """Train/val loaders over a :class:`SegmentationFolder`.

    ``dataset`` is a partial that takes ``split`` and ``transform`` (Hydra ``_partial_: true``), so the
    same module serves Cityscapes, BDD100K and the embedded SynthStreets. ``prepare``, when given, is
    run once per node before anything is read (it writes SynthStreets on first use).

    ``root`` is where the data lives. The config keeps it at the top of each dataset file, so that
    the same override (``dataset.root=/data/cityscapes``) works for every dataset, and interpolates
    it into ``dataset`` and ``prepare``; here it is only recorded.

    ``batch_size`` is the global batch: the images of one optimizer step over all processes.
    Each process takes its share of it (:meth:`batch_plan`), in micro-batches of at most
    ``device_batch_size`` with gradient accumulation making up the rest; the learning rate is
    stated for the global batch, so a recipe means the same on 1, 4 or 8 GPUs.

    Validation under DDP uses a sampler that does not pad the split by repeating samples: the
    confusion matrix summed over ranks then counts every image exactly once.

    A configuration that would train nothing is refused with a :class:`DatasetError` naming the key
    to change: batch sizes and crop sizes when the module is built, the number of train batches and
    the crop against the images in ``setup("fit")``, before the first step.

    **Per-sample extras.** Whatever adds fields to each train sample (the teacher-logit cache of
    offline KD adds ``teacher_logits``) is handed to this module with :meth:`attach_train_extra`; the
    module owns its train set and applies it there, now or when the set is built. A system asks for
    it and never touches a dataset. What such an extra needs to know about the data comes from here
    too: :attr:`normalisation` (what the student's inputs are normalised with, so a teacher sees the
    same), :meth:`plain_train_set` (the train split without augmentation) and, on that set,
    :meth:`~segkd.data.datasets.SegmentationFolder.manifest` and
    :meth:`~segkd.data.datasets.SegmentationFolder.image_size`. The geometry each train sample was
    given travels on it as ``sample["geometry"]`` (:class:`~segkd.data.geometry.CropGeometry`).

    **KD-facing settings.** ``logit_cache`` and ``teacher_scale_range`` are not used by this module:
    they are facts about the data that distillation configs read (``${dataset.logit_cache.stride}``
    in conf/experiment/offline_kd.yaml, ``${dataset.teacher_scale_range}`` in
    conf/experiment/reference_teacher.yaml). They live in each dataset file, and so are accepted
    here, because the right value follows from the data, not from the recipe: the cache layout from
    the image size (full resolution for 128x256 SynthStreets, stride 4 and top-5 for 1024x2048
    Cityscapes: docs/DATASETS.md), the teacher's scale augmentation from what the reference teacher
    of that data was trained with. Keeping them under ``dataset.`` keeps ``dataset=<name>`` the one
    switch that brings them along, every override (``dataset.logit_cache.stride=2``) and every
    recorded run config (whose recipe identity includes them) as they were.

    **Input divisor.** Val images (and a teacher cache's plain train images) are padded at the bottom
    and right to a multiple of what the networks take: the output stride of their encoder (32 for
    a UNet, 16 for DeepLabV3+). The data layer knows no network, so the number comes from outside:
    ``size_divisor`` when given, else the ``size_divisor`` of the LightningModule being fitted (every
    segkd system states the one all its networks take, segkd.systems.base), else 32. Asking the
    module being fitted, when the datasets are built in ``setup``, serves every way a fit starts
    (``segkd.train``, a benchmark, a test) without each caller having to remember to pass it.
    """

    #: A crop is refused when, even at the largest scale, less than this share of it can be image
    #: (the rest is padding with the ignore label): see :meth:`_check_crop`.
    MIN_CROP_COVERAGE = 0.5

    def __init__(
        self,
        dataset: Callable[..., SegmentationFolder],
        name: str = "dataset",
        root: Optional[str] = None,
        num_classes: int = 19,
        train_split: str = "train",
        val_split: str = "val",
        crop_size: Sequence[int] = (64, 128),
        scale_range: Sequence[float] = (0.5, 1.5),
        jitter: float = 0.3,
        val_size: Optional[Sequence[int]] = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        batch_size: int = 8,
        device_batch_size: Optional[int] = None,
        val_batch_size: int = 4,
        num_workers: int = 0,
        pin_memory: bool = False,
        prepare: Optional[Callable[[], object]] = None,
        stats_cache_dir: Optional[str] = None,
        seed: Optional[int] = None,
        logit_cache: Optional[dict] = None,
        teacher_scale_range: Optional[Sequence[float]] = None,
        verify: bool = False,
        size_divisor: Optional[int] = None,
    ) -> None:
        super().__init__()
        #: What images are padded to; None: the fitted module's (see "Input divisor" above), else 32.
        self.size_divisor = size_divisor
        #: Read every file of both splits once before training and list every unreadable one (a corrupt
        #: label is otherwise found when first read, mid-epoch, one file at a time).
        self.verify = bool(verify)
        self.dataset = dataset
        self.name = name
        self.root = root
        self.num_classes = num_classes
        self.train_split = train_split
        self.val_split = val_split
        self.crop_size = _crop_size(crop_size)
        self.scale_range = tuple(scale_range)
        self.jitter = jitter
        self.val_size = tuple(val_size) if val_size is not None else None
        self.mean, self.std = tuple(mean), tuple(std)
        #: The global batch (all processes, all accumulation steps of one optimizer step).
        self.batch_size = _batch_size(batch_size, "dataset.batch_size")
        self.device_batch_size = (
            _batch_size(device_batch_size, "dataset.device_batch_size") if device_batch_size is not None else None
        )
        self.val_batch_size = _batch_size(val_batch_size, "dataset.val_batch_size")
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.prepare = prepare
        self.stats_cache_dir = stats_cache_dir
        #: Seeds the training order and each sample's augmentation (see segkd.data.sampling).
        self.seed = resolve_seed(seed)
        #: KD-facing (see the class docstring), read by the config only. How offline KD stores a
        #: teacher's logits over this data (segkd.distill.teacher_cache): full resolution suits small
        #: images; 1024x2048 ones need a stride and top-k.
        self.logit_cache = dict(logit_cache or {"stride": 1, "top_k": None})
        #: KD-facing, read by the config only. The scale augmentation of this data's reference teacher
        #: (conf/experiment/reference_teacher.yaml), which may differ from the students' (``scale_range``).
        self.teacher_scale_range = tuple(teacher_scale_range) if teacher_scale_range is not None else self.scale_range
        self._train_extras: list[Extra] = []  # see attach_train_extra
        self.train_set: Optional[SegmentationFolder] = None
        self.val_set: Optional[SegmentationFolder] = None
        self._resume_at: Optional[dict] = None  # (epoch, steps) of a mid-epoch checkpoint being resumed

    def prepare_data(self) -> None:
        if self.prepare is not None:
            self.prepare()

    def setup(self, stage: Optional[str] = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self.dataset(
                split=self.train_split,
                transform=train_transform(self.crop_size, self.scale_range, self.jitter, self.mean, self.std),
            )
            self.train_set.extras = list(self._train_extras)
            self._check_classes(self.train_set)
            self._check_crop(self.train_set)
        if stage in (None, "fit"):
            # on every call: the number of processes is known only once a trainer is attached
            self._check_train_batches(self.train_set)
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self.dataset(
                split=self.val_split, transform=eval_transform(self.val_size, self.mean, self.std, self.input_divisor())
            )
            self._check_classes(self.val_set)
            self._check_val_batches(self.val_set)
            if self.verify:
                for dataset in (self.train_set, self.val_set):
                    if dataset is not None:
                        verify_files(dataset)

    def input_divisor(self) -> int:
        """What images are padded to: ``size_divisor``, else the fitted module's, else 32 (class docstring)."""
        if self.size_divisor is not None:
            return int(self.size_divisor)
        module = self.trainer.lightning_module if self.trainer is not None else None
        stated = getattr(module, "size_divisor", None)
        return int(stated) if isinstance(stated, int) and stated > 0 else SIZE_DIVISOR

    def _check_val_batches(self, dataset: SegmentationFolder) -> None:
        """Val batches stack whole images (padded to the input divisor): a split of several sizes cannot be
        batched by more than one, which torch would report mid-validation as "stack expects each tensor
        to be equal size". Said up front, with the two settings that fix it."""
        if self.val_batch_size == 1 or self.val_size is not None:
            return
        divisor = self.input_divisor()

        def padded(size):
            return tuple(-(-s // divisor) * divisor for s in size)

        sizes: dict[tuple[int, int], int] = {}
        for i in range(len(dataset)):
            size = padded(dataset.image_size(i))
            sizes.setdefault(size, i)
            if len(sizes) > 1:
                (a, ia), (b, ib) = list(sizes.items())[:2]
                raise DatasetError(
                    f"the {dataset.split} split holds images of more than one size ({dataset.samples[ia][0].name} "
                    f"is {a[0]}x{a[1]} padded to /{divisor}, {dataset.samples[ib][0].name} {b[0]}x{b[1]}), and val batches "
                    f"stack images of one size: set dataset.val_batch_size=1, or dataset.val_size=[H,W] to resize "
                    f"every val image"
                )

    def plain_train_set(self, size_divisor: Optional[int] = None) -> SegmentationFolder:
        """The train split without augmentation, normalised and padded to a multiple of ``size_divisor``
        (the network that reads it: a teacher cache is built from it; None: :meth:`input_divisor`)."""
        divisor = int(size_divisor) if size_divisor is not None else self.input_divisor()
        return self.dataset(split=self.train_split, transform=eval_transform(None, self.mean, self.std, divisor))

    @property
    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(mean, std)`` per RGB channel (of 0..1 values) that every image of this module is normalised with."""
        return self.mean, self.std

    def attach_train_extra(self, extra: Extra) -> None:
        """Have every train sample also carry what ``extra(sample)`` returns (a dict merged into it).

        ``extra`` is called in whichever process reads samples (DataLoader workers too, so it must
        pickle), after the transform, with the sample's ``index`` and ``geometry``. An extra of the same
        type and ``extra_key`` attached earlier is replaced, so attaching again (a second fit) does not
        stack them, while extras of one type with different keys (the logit caches of several teachers,
        keyed by teacher name) all apply. It applies from the next sample read: attach before the train
        loader is built.
        """
        key = _extra_key(extra)
        self._train_extras = [e for e in self._train_extras if _extra_key(e) != key] + [extra]
        if self.train_set is not None:
            self.train_set.extras = list(self._train_extras)

    @property
    def train_extras(self) -> tuple[Extra, ...]:
        """The extras :meth:`attach_train_extra` attached, in order."""
        return tuple(self._train_extras)

    def _check_classes(self, dataset: SegmentationFolder) -> None:
        if dataset.num_classes != self.num_classes:
            raise ValueError(
                f"dataset.num_classes={self.num_classes} but {dataset.dataset_name} has {dataset.num_classes} "
                f"classes; set dataset.num_classes={dataset.num_classes}"
            )

    def _check_train_batches(self, dataset: SegmentationFolder) -> None:
        """At least one global batch: incomplete batches are dropped (so that every step sees
        ``batch_size`` samples), and with fewer samples than that a run would take no step at all yet
        finish without an error. The plan is checked here too: the process count is known only now."""
        self.batch_plan()
        if len(dataset) >= self.batch_size:
            return
        raise DatasetError(
            f"the {self.train_split} split has {len(dataset)} images, fewer than one batch of "
            f"dataset.batch_size={self.batch_size}, and incomplete batches are dropped, so nothing would train; "
            f"lower dataset.batch_size to {len(dataset)} or less, or {self._more_train_images()}"
        )

    def batch_plan(self) -> BatchPlan:
        """How the global batch splits over this run's processes (and accumulation steps)."""
        return plan_batches(self.batch_size, self._world()[0], self.device_batch_size)

    def _more_train_images(self) -> str:
        """How to get more train images: SynthStreets makes as many as it is asked for, real data has what it has."""
        if "num_train" in getattr(self.prepare, "keywords", {}):
            return "raise dataset.prepare.num_train"
        return f"add images to the {self.train_split} split under dataset.root"

    def _check_crop(self, dataset: SegmentationFolder) -> None:
        """Refuse a crop that is mostly padding in every sample.

        A crop larger than the (randomly scaled) image is legal: the image is padded to the crop with
        ignored labels (segkd.data.transforms.train_transform), and a crop a little larger than the
        images costs only some wasted compute. Where even the largest image at the largest scale
        fills less than :attr:`MIN_CROP_COVERAGE` of the crop, most of every batch is padding; that
        is a crop size meant for other data (e.g. Cityscapes' 512x1024 on 128x256 SynthStreets).
        Only the image headers are read: 0.2-0.5 s for 2000 images.
        """
        crop_h, crop_w = self.crop_size
        scale = max(self.scale_range)
        sizes = {read_size(image) for image, _ in dataset.samples}
        coverage = max(min(1.0, scale * h / crop_h) * min(1.0, scale * w / crop_w) for h, w in sizes)
        if coverage >= self.MIN_CROP_COVERAGE:
            return
        height, width = max(sizes, key=lambda hw: hw[0] * hw[1])
        raise DatasetError(
            f"dataset.crop_size={list(self.crop_size)} is far larger than the {self.train_split} images (the largest "
            f"is {height}x{width}, scaled by at most {scale:g}): at most {coverage:.0%} of every crop would be image, "
            f"the rest ignored padding; set dataset.crop_size to at most [{int(scale * height)}, {int(scale * width)}]"
        )

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.dataset.func.class_names if hasattr(self.dataset, "func") else self.dataset.class_names

    def class_statistics(self) -> dict:
        """Pixel statistics of the train split (for class weighting), cached under ``stats_cache_dir``."""
        self.setup("fit")
        return class_statistics(self.train_set, self.num_classes, self.stats_cache_dir)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def train_dataloader(self) -> DataLoader:
        world_size, rank = self._world()
        plan = self.batch_plan()
        sampler = SeededSampler(self.train_set, self.seed, num_replicas=world_size, rank=rank,
                                global_batch=plan.global_batch)
        if self._resume_at is not None:
            sampler.skip_steps(self._resume_at["epoch"], self._resume_at["steps"])
        return ResumableLoader(
            self.train_set,
            batch_size=plan.per_device,
            sampler=sampler,
            drop_last=True,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            progress=self._steps_done,
        )

    def state_dict(self) -> dict:
        """Saved in every checkpoint: where in the training data the run is (see :class:`ResumableLoader`)."""
        epoch, steps = self._steps_done()
        return {"epoch": epoch, "steps": steps}

    def load_state_dict(self, state: dict) -> None:
        # Lightning restores the datamodule before it first builds the train loader, but loads a loader's
        # own state only when it builds it after the restore (not when the schedule's step estimate built
        # it earlier): the datamodule is the reliable carrier.
        self._resume_at = dict(state) if "steps" in state else None

    def _steps_done(self) -> tuple[int, int]:
        """(epoch, optimizer steps done in it): where a checkpoint written now resumes the data."""
        trainer = self.trainer
        if trainer is None:
            return 0, 0
        batches = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return trainer.current_epoch, batches // max(1, trainer.accumulate_grad_batches)

    def val_dataloader(self) -> DataLoader:
        sampler = None
        world_size, rank = self._world()
        if world_size > 1:
            sampler = UnrepeatedDistributedSampler(self.val_set, num_replicas=world_size, rank=rank, shuffle=False)
        return DataLoader(
            self.val_set,
            batch_size=self.val_batch_size,
            shuffle=False,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )


class ResumableLoader(DataLoader):
    """The train loader, resumable inside an epoch: how many optimizer steps of which epoch were done
    travels in every checkpoint, so that a run resumed from a mid-epoch checkpoint (preemption,
    time-based saves) continues with the next global batch instead of training on the epoch's first
    batches twice. The datamodule carries it (its ``state_dict``); the loader declares itself
    resumable to Lightning with the same state, and applying it twice skips the same steps.
    """

    def __init__(self, *args, progress: Callable[[], tuple[int, int]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._progress = progress

    def state_dict(self) -> dict:
        epoch, steps = self._progress()
        return {"epoch": epoch, "steps": steps}

    def load_state_dict(self, state: dict) -> None:
        self.sampler.skip_steps(state["epoch"], state["steps"])  # type: ignore[union-attr]


def verify_files(dataset: SegmentationFolder, shown: int = 5) -> None:
    """Read every image and label of a split once; one error that lists the unreadable files."""
    from rich.progress import track

    bad = []
    for i in track(range(len(dataset)), description=f"verifying the {dataset.split} split", transient=True):
        try:
            dataset.load(i)
        except DatasetError as err:
            bad.append(str(err))
    if bad:
        more = f"; and {len(bad) - shown} more" if len(bad) > shown else ""
        raise DatasetError(f"{len(bad)} of the {len(dataset)} samples of the {dataset.split} split cannot be read: "
                           + "; ".join(bad[:shown]) + more)


def _batch_size(value: int, key: str) -> int:
    """An int of at least 1 (a bool or float here is a config slip, not a size)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DatasetError(f"{key}={value!r} is not a batch size; set {key} to a whole number of at least 1")
    return value


def _crop_size(crop_size: Sequence[int]) -> tuple[int, int]:
    """``(height, width)`` of the train crop, both positive ints."""
    crop = tuple(crop_size)
    if len(crop) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in crop):
        raise DatasetError(
            f"dataset.crop_size={list(crop)} is not a crop size; set it to [height, width] in pixels, both at least 1"
        )
    return crop
