"""Command line: ``python -m segkd.bias_variance 'groups={scratch:[GLOB_OR_PATH,...],kd:[...]}' [dataset=NAME]``

Does distillation make a student better on average (lower bias), or only more alike from seed to
seed (lower variance)? Each group is one recipe trained with several seeds; every member of every
group predicts each image of the split, and the group's expected cross-entropy is split into bias
and variance (Heskes 1998; the maths is in segkd.analysis.bias_variance and docs/BIAS_VARIANCE.md),
over all labelled pixels and per ground-truth class. The run dir (outputs/bias_variance/runs/<id>/)
gets ``bias_variance.json``, ``bias_variance.md`` (tables) and ``bias_variance.png`` (the groups side
by side). ``bias_variance(cfg)`` is what tests call.

All networks stay loaded and the split is read once, image by image, so that no pixel has to be kept:
a group costs the memory of its networks plus two members' log-probabilities of one image.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig
from rich.console import Console

from segkd.analysis.bias_variance import decompose_groups, expand_groups as _expand_groups
from segkd.analysis.bias_variance_report import print_report, write_reports
from segkd.config import build, command_line, to_plain
from segkd.inference.devices import resolve_device
from segkd.runtime.errors import errors_in_one_line


@hydra.main(version_base="1.3", config_path="../conf", config_name="bias_variance")
def main(cfg: DictConfig) -> None:
    """Decompose and report; segkd's own errors (no groups, a group of one, a missing checkpoint or
    data, classes that differ) end with their one line."""
    with errors_in_one_line():
        bias_variance(cfg)


def expand_groups(groups) -> dict[str, list[Path]]:
    """``groups=`` (a config node or a plain mapping) as name -> checkpoint paths, globs expanded
    (:func:`segkd.analysis.bias_variance.expand_groups`)."""
    return _expand_groups(to_plain(groups))


def bias_variance(cfg: DictConfig) -> dict:
    """Decompose every group on ``cfg.split``, write the JSON, Markdown and PNG reports, return the JSON's content."""
    paths = expand_groups(cfg.get("groups"))
    device = resolve_device(str(cfg.device))
    report = decompose_groups(paths, build(cfg.dataset), cfg.split, cfg.net,
                              {"mode": cfg.mode, "window": to_plain(cfg.window), "stride": to_plain(cfg.stride)},
                              device, num_workers=cfg.num_workers, progress_bar=cfg.progress_bar)
    output_dir = Path(cfg.paths.output_dir)
    write_reports(report, output_dir)
    print_report(report)
    Console().print(f"reports in {output_dir}", highlight=False)
    return report


if __name__ == "__main__":
    sys.argv = command_line("bias_variance", sys.argv)
    main()
