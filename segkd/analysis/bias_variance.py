"""Bias and variance of a group of networks' log loss (Heskes 1998), accumulated over a whole split.

For M networks with class distributions p_1..p_M at a pixel labelled y, the normalised geometric mean

    p̄ = exp(mean_m log p_m) / Z,    Z = sum_c exp(mean_m log p_m(c))

splits the members' mean cross-entropy exactly into two terms:

    mean_m CE(y, p_m) = -mean_m log p_m(y)
                      = [log Z - mean_m log p_m(y)] + [-log Z]
                      = CE(y, p̄)                     + mean_m KL(p̄ || p_m)

The last step: KL(p̄ || p_m) = sum_c p̄(c) (log p̄(c) - log p_m(c)); averaged over m, log p_m(c)
becomes mean_m log p_m(c) = log p̄(c) + log Z, so the sum is -log Z. Z <= 1 by the AM-GM inequality
(the geometric mean of probabilities is at most their arithmetic mean, which sums to 1), so the
variance is >= 0, and 0 exactly when all members agree. ``bias`` = CE(y, p̄) is the loss of the
group's "central" prediction; with one sample per pixel it cannot be told apart from label noise,
so it contains the irreducible error too. Variance needs no label: it is how much the members
disagree, here averaged over labelled pixels so that it adds up with the bias.

This is the decomposition for log loss; the squared-error one (mean prediction) does not add up for
cross-entropy. Everything is float64 from log_softmax of the logits, so a probability that
underflows in float32 stays finite and the two terms add up to the expected CE to ~1e-12, over
millions of pixels too.
"""

from __future__ import annotations

import glob
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

#: The three terms, in the order they are stored: expected CE = bias + variance.
TERMS = ("expected_ce", "bias", "variance")


@dataclass
class PixelTerms:
    """The decomposition at each labelled pixel (1-D, one entry per pixel), their labels, and the group's
    mean log-probability (N, C, H, W) at every pixel, whose argmax is the geometric ensemble's prediction."""

    labels: Tensor
    expected_ce: Tensor
    bias: Tensor
    variance: Tensor
    mean_log_probs: Tensor


def pixel_terms(member_logits: Iterable[Tensor], target: Tensor, ignore_index: int = 255) -> PixelTerms:
    """Expected CE, bias and variance at each pixel of ``target`` (N, H, W) whose label is not ``ignore_index``.

    ``member_logits`` yields each member's logits (N, C, H, W) in turn: only their running sum of
    log-probabilities is kept, so a group of any size costs the memory of two members.
    """
    total: Optional[Tensor] = None
    members = 0
    for logits in member_logits:
        if logits.ndim != 4 or logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
            raise ValueError(f"member logits {tuple(logits.shape)} do not match target {tuple(target.shape)} "
                             "as (N, C, H, W) to (N, H, W)")
        if total is not None and logits.shape != total.shape:
            raise ValueError(f"member {members} gives logits {tuple(logits.shape)}, member 0 {tuple(total.shape)}: "
                             "every member must predict the same classes")
        log_p = F.log_softmax(logits.double(), dim=1)
        total = log_p if total is None else total + log_p
        members += 1
    if total is None:
        raise ValueError("no member logits given")
    mean_log_p = total / members
    log_z = torch.logsumexp(mean_log_p, dim=1)  # (N, H, W), <= 0
    valid = target != ignore_index
    labels = target[valid]
    if labels.numel() and (labels.min() < 0 or labels.max() >= mean_log_p.shape[1]):
        raise ValueError(f"labels range over {int(labels.min())}..{int(labels.max())} but the members predict "
                         f"{mean_log_p.shape[1]} classes")
    at_label = mean_log_p.gather(1, torch.where(valid, target, 0).unsqueeze(1)).squeeze(1)[valid]
    log_z = log_z[valid]
    return PixelTerms(labels=labels, expected_ce=-at_label, bias=log_z - at_label, variance=-log_z,
                      mean_log_probs=mean_log_p)


class BiasVariance:
    """Sums of the three terms per ground-truth class over everything :meth:`update` saw: a split is
    decomposed batch by batch without keeping its pixels. :meth:`compute` gives the means."""

    def __init__(self, class_names: Sequence[str], ignore_index: int = 255) -> None:
        self.class_names = tuple(class_names)
        self.ignore_index = ignore_index
        self.sums = torch.zeros(len(TERMS), len(self.class_names), dtype=torch.float64)
        self.pixels = torch.zeros(len(self.class_names), dtype=torch.int64)

    def update(self, member_logits: Iterable[Tensor], target: Tensor) -> Tensor:
        """Add one batch (see :func:`pixel_terms`); returns the group's mean log-probabilities (N, C, H, W)."""
        terms = pixel_terms(member_logits, target, self.ignore_index)
        if terms.mean_log_probs.shape[1] != len(self.class_names):
            raise ValueError(f"the members predict {terms.mean_log_probs.shape[1]} classes, the data has "
                             f"{len(self.class_names)}")
        labels = terms.labels.cpu()
        for row, name in enumerate(TERMS):
            self.sums[row].index_add_(0, labels, getattr(terms, name).cpu())
        self.pixels += torch.bincount(labels, minlength=len(self.class_names))
        return terms.mean_log_probs

    def compute(self) -> dict:
        """Mean of each term over all labelled pixels and per class (None for a class with no pixels),
        with the pixel counts; ``variance_share`` is the variance's part of the expected CE.

        ``class_mean`` averages the per-class terms over the classes that have pixels, each class
        weighted equally as mIoU weights them: the pixel mean is ruled by road, building and
        vegetation, while mIoU moves with the rare classes.
        """
        total = int(self.pixels.sum())
        overall = {name: float(self.sums[row].sum() / total) if total else None for row, name in enumerate(TERMS)}
        seen = self.pixels > 0
        per_pixel = self.sums[:, seen] / self.pixels[seen]
        class_mean = {name: float(per_pixel[row].mean()) if seen.any() else None for row, name in enumerate(TERMS)}
        per_class = {}
        for c, class_name in enumerate(self.class_names):
            n = int(self.pixels[c])
            per_class[class_name] = {"pixels": n, **{name: float(self.sums[row, c] / n) if n else None
                                                     for row, name in enumerate(TERMS)}}
        share = overall["variance"] / overall["expected_ce"] if total and overall["expected_ce"] else None
        return {"pixels": total, **overall, "variance_share": share, "class_mean": class_mean, "per_class": per_class}


# ----------------------------------------------------------------------------- groups of seeds on a split

MEMBER_HINT = "each member of a group must be a segkd checkpoint, e.g. outputs/<task>/runs/<time>/checkpoints/last.ckpt"
GROUPS_HINT = ("set groups={name:[path_or_glob,...],...}, "
               "e.g. 'groups={scratch:[outputs/a/seed*/checkpoints/last.ckpt],kd:[...]}'")


def expand_groups(groups: Any) -> dict[str, list[Path]]:
    """Name -> checkpoint paths, each glob pattern expanded in sorted order (a path without wildcards is
    kept as given, so that a missing file is reported by name when it is read). The same file may
    appear twice: a group of one network twice has variance 0, a check of the tool itself. ``groups``
    is a plain mapping (or None)."""
    if isinstance(groups, (list, tuple)) and groups:
        raise ValueError(f"groups is a list ({len(groups)} items); it must be a mapping of a group name to its "
                         f"checkpoints; {GROUPS_HINT}")
    if not isinstance(groups, dict) or not groups:
        raise ValueError(f"no groups given; {GROUPS_HINT}")
    expanded = {}
    for name, patterns in groups.items():
        patterns = [patterns] if isinstance(patterns, str) else patterns
        if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
            raise ValueError(f"groups.{name} must be a list of checkpoint paths or glob patterns; {GROUPS_HINT}")
        paths: list[Path] = []
        for pattern in patterns:
            pattern = os.path.expanduser(pattern)
            if not glob.has_magic(pattern):
                paths.append(Path(pattern))
                continue
            found = sorted(glob.glob(pattern, recursive=True))
            if not found:
                raise FileNotFoundError(f"groups.{name}: the pattern {pattern} matches no file")
            paths.extend(Path(p) for p in found)
        if len(paths) < 2:
            raise ValueError(f"groups.{name} has {len(paths)} checkpoint(s): variance needs at least two seeds "
                             "of a recipe; list more checkpoints or a glob that matches them")
        expanded[str(name)] = paths
    return expanded


class _Member:
    """One network of a group, its predictor and its own scores (for the group's mean mIoU)."""

    def __init__(self, group: str, path: Path, net: str, predictor: dict, dataset: str,
                 class_names: tuple[str, ...], ignore_index: int, device: torch.device) -> None:
        from segkd.inference import SegmentationPredictor
        from segkd.metrics import SegmentationMetrics
        from segkd.models.architectures import num_classes
        from segkd.models.checkpoint import load_net, read_checkpoint

        self.path = path.expanduser().absolute()
        ckpt = read_checkpoint(self.path, MEMBER_HINT, key=f"groups.{group}")
        network, _ = load_net(self.path, net, ckpt=ckpt)
        classes = num_classes(network)  # from the network itself: a spec need not name it `classes`
        if classes != len(class_names):
            raise ValueError(f"checkpoint {self.path} predicts {classes} classes but dataset="
                             f"{dataset} has {len(class_names)}; every member of every group "
                             "must be trained for the data it is decomposed on")
        # Logits at the labels' size; no TTA, which averages probabilities whose logarithm the maths needs.
        self.predictor = SegmentationPredictor(network, **predictor).to(device).eval()
        self.metrics = SegmentationMetrics(len(class_names), class_names, ignore_index).to(device)

    def logits(self, image: Tensor, mask: Tensor) -> Tensor:
        logits = self.predictor.logits(image)
        self.metrics.update(logits, mask)
        return logits


class _Group:
    """The members of one recipe, the decomposition of their predictions, and the geometric ensemble's scores."""

    def __init__(self, name: str, paths: list[Path], class_names: tuple[str, ...], ignore_index: int,
                 device: torch.device, **member) -> None:
        from segkd.metrics import SegmentationMetrics

        self.members = [_Member(name, path, class_names=class_names, ignore_index=ignore_index, device=device,
                                **member) for path in paths]
        self.decomposition = BiasVariance(class_names, ignore_index)
        self.ensemble = SegmentationMetrics(len(class_names), class_names, ignore_index).to(device)

    def update(self, image: Tensor, mask: Tensor) -> None:
        members: Iterator[Tensor] = (member.logits(image, mask) for member in self.members)
        self.ensemble.update(self.decomposition.update(members, mask), mask)

    def results(self) -> dict:
        member_miou = [_miou(member.metrics) for member in self.members]
        finite = [v for v in member_miou if v is not None]
        return {
            "n_members": len(self.members),
            "members": [str(member.path) for member in self.members],
            "member_mIoU": member_miou,
            "mean_mIoU": sum(finite) / len(finite) if finite else None,
            "ensemble_mIoU": _miou(self.ensemble),
            **self.decomposition.compute(),
        }


def _miou(metrics) -> Optional[float]:
    value = metrics.as_dict(metrics.compute())["mIoU"]
    return value if math.isfinite(value) else None


def decompose_groups(paths: dict[str, list[Path]], datamodule, split: str, net: str, predictor: dict,
                     device: torch.device, num_workers: int = 0, progress_bar: bool = True) -> dict:
    """segkd.bias_variance's work: every member of every group (name -> checkpoints, as
    :func:`expand_groups` gives them) predicts each image of ``split`` of ``datamodule``, one image
    at a time, read once; each group's expected CE is split into bias and variance, overall and per
    ground-truth class, beside its members' and its geometric ensemble's mIoU. ``net`` names the
    network of each checkpoint, ``predictor`` the :class:`SegmentationPredictor` options (mode,
    window, stride). Returns the report (what bias_variance.json holds)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from torch.utils.data import DataLoader

    from segkd.inference import EvaluationSet

    datamodule.prepare_data()  # SynthStreets is written on first use, as for training
    folder = datamodule.dataset(split=split, transform=None)
    class_names, ignore_index = tuple(folder.class_names), folder.ignore_index
    groups = {name: _Group(name, members, class_names, ignore_index, device, net=net, predictor=predictor,
                           dataset=datamodule.name)
              for name, members in paths.items()}
    # Images of a split may differ in size: one at a time.
    loader = DataLoader(EvaluationSet(folder, datamodule.mean, datamodule.std), batch_size=1, shuffle=False,
                        num_workers=num_workers)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    start = time.perf_counter()
    with torch.no_grad(), Progress(*columns, disable=not progress_bar) as progress:
        task = progress.add_task(f"{sum(len(m) for m in paths.values())} networks on {split}", total=len(loader))
        for batch in loader:
            image, mask = batch["image"].to(device), batch["mask"].to(device)
            for group in groups.values():
                group.update(image, mask)
            progress.advance(task)
    seconds = time.perf_counter() - start

    return {
        "dataset": datamodule.name,
        "root": str(folder.root),
        "split": split,
        "images": len(folder),
        "net": net,
        **next(iter(groups.values())).members[0].predictor.describe(),
        "device": str(device),
        "time_s": seconds,
        "groups": {name: group.results() for name, group in groups.items()},
    }
