"""docs/DATASETS.md stays true: every ``python -m segkd...`` command on it composes as the config its
module runs with (without running), its figures and links exist, its settings table is what
conf/dataset/ holds, its cache sizes follow from the cache layout, and its SynthStreets numbers of the
``make run`` size are what segkd.analyze's statistics give on the data regenerated in memory.

Regenerating the 300 images takes 5-20 s (idle to busy 2-core CPU). The 2000-image columns take
1-3 minutes: set SEGKD_DOC_FULL=1 to check them too.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from segkd.analysis.dataset_stats import ObjectSizes, class_shares, cityscapes_reference_shares
from segkd.config import CONF_DIR, compose_config
from segkd.data.class_stats import class_statistics
from segkd.data.labels import CLASS_NAMES, NUM_CLASSES, RAW_TO_TRAIN
from segkd.data.synthstreets import render_synthstreets_image
from segkd.distill.teacher_cache import bytes_per_image

ROOT = CONF_DIR.parent
DOC = ROOT / "docs" / "DATASETS.md"
FIGURES = ROOT / "docs" / "figures" / "datasets"
TEXT = DOC.read_text()
FULL = bool(os.environ.get("SEGKD_DOC_FULL"))
MISSING = object()


# ----------------------------------------------------------------------------- reading the page

PYTHON_M = re.compile(r"(?:^|[\s/])python3?\s+-m\s+segkd\.\w")


def segkd_commands(text: str) -> list[str]:
    """Every ``python -m segkd.<module> ...`` line of the page's bash blocks (continuation lines
    joined) and of its inline code spans."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        lines += block.replace("\\\n", " ").splitlines()
    lines += re.findall(r"`([^`\n]*python3? -m segkd[^`\n]*)`", text)
    return [line.strip() for line in lines if PYTHON_M.search(line)]


def parse_command(line: str) -> tuple[dict, str, list[str]]:
    """``(environment assignments, module, Hydra overrides)`` of one command line."""
    tokens = shlex.split(line, comments=True)
    env = {}
    while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):
        key, value = tokens.pop(0).split("=", 1)
        env[key] = value
    python, flag, module, *args = tokens
    assert python.endswith(("python", "python3")) and flag == "-m", line
    overrides, rest = [], iter(args)
    for arg in rest:
        if arg in ("-m", "--multirun"):
            pytest.fail(f"{line}: write sweeps on this page as single runs, they are composed one by one")
        if arg in ("--cfg", "-c", "--package", "-p"):
            next(rest, None)
        elif arg == "--resolve":
            continue
        elif arg.startswith("-"):
            pytest.fail(f"{line}: unknown flag {arg}")
        else:
            overrides.append(arg)
    return env, module, overrides


def config_name_of(module: str) -> str:
    """The primary config a segkd command line composes (its ``@hydra.main(config_name=...)``)."""
    source = ROOT / Path(*module.split(".")).with_suffix(".py")
    assert source.is_file(), f"{module} is not a module of segkd"
    found = re.search(r'@hydra\.main\([^)]*config_name="(\w+)"', source.read_text())
    assert found, f"{module} has no Hydra main"
    return found.group(1)


def table(text: str, first_header: str) -> tuple[list[str], list[list[str]]]:
    """The markdown table whose header row starts with ``| first_header |``: header and rows of cells."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |")), None)
    assert start is not None, f"no table starting with '{first_header}' in {DOC.name}"
    cells = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells.append([c.strip() for c in line.strip().strip("|").split("|")])
    return cells[0], [row for row in cells[2:]]


def number(cell: str) -> float:
    return float(cell.replace(",", "").rstrip("%"))


def agrees(quoted: float, value: float, digits: int = 3) -> bool:
    """``quoted`` is ``value`` rounded to ``digits`` significant digits."""
    if value == 0:
        return quoted == 0
    half_unit = 0.5 * 10 ** (math.floor(math.log10(abs(value))) - digits + 1)
    return abs(quoted - value) <= half_unit * (1 + 1e-9)


def dataset_cfg(name: str, tmp_path: Path):
    return compose_config("train", [f"dataset={name}", f"paths.log_dir={tmp_path}"], tmp_path / "run")


# ----------------------------------------------------------------------------- commands, figures, links

COMMANDS = segkd_commands(TEXT)


def test_the_page_has_commands_of_each_tool():
    modules = {parse_command(line)[1] for line in COMMANDS}
    assert len(COMMANDS) >= 10 and {"segkd.run", "segkd.analyze", "segkd.evaluate"} <= modules, COMMANDS


@pytest.mark.parametrize("line", COMMANDS, ids=[c[:70] for c in COMMANDS])
def test_every_command_composes_as_a_segkd_config(line, tmp_path, monkeypatch):
    env, module, overrides = parse_command(line)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cfg = compose_config(config_name_of(module), overrides, tmp_path / "run")
    plain = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    given = dict(o.split("=", 1) for o in overrides if "=" in o)
    dataset = given.get("dataset")
    if dataset in ("cityscapes", "bdd100k"):
        assert plain["dataset"]["name"] == dataset, f"{line}: the command does not train on {dataset}"
        if "dataset.root" in given:
            assert plain["dataset"]["root"] == given["dataset.root"]
        elif "SEGKD_DATA_DIR" in env:
            assert plain["dataset"]["root"] == f"{env['SEGKD_DATA_DIR']}/{dataset}"


def test_every_figure_exists_and_every_figure_file_is_shown():
    shown = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", TEXT)
    assert shown
    for ref in shown:
        path = DOC.parent / ref
        assert path.is_file(), f"{DOC.name} shows {ref}, which does not exist"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{ref} is not a PNG"
    on_disk = {p.resolve() for p in FIGURES.iterdir()}
    assert on_disk == {(DOC.parent / ref).resolve() for ref in shown if ref.startswith("figures/datasets/")}, \
        "every file under docs/figures/datasets/ is shown on the page"
    assert sum(p.stat().st_size for p in on_disk) < 1_000_000, "keep the page's figures under 1 MB"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_and_anchor_exists():
    links = re.findall(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)", TEXT)
    assert links
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        target, _, anchor = link.partition("#")
        path = DOC.parent / target if target else DOC
        assert path.is_file(), f"{DOC.name} links to {link}, which does not exist"
        if anchor:
            headings = {_anchor(h) for h in re.findall(r"^#+ (.+)$", path.read_text(), re.M)}
            assert anchor in headings, f"{link}: no such heading in {path.name}"


# ----------------------------------------------------------------------------- settings and cache sizes

def test_the_settings_table_is_what_conf_dataset_holds(tmp_path):
    header, rows = table(TEXT, "setting")
    names = [h.strip("`") for h in header[1:]]
    assert names == ["synthstreets", "synthstreets_kd", "cityscapes", "bdd100k"]
    for c, name in enumerate(names, start=1):
        cfg = dataset_cfg(name, tmp_path)
        for row in rows:
            key, cell = row[0].strip("`"), row[c]
            value = OmegaConf.select(cfg, key, default=MISSING)
            if cell == "—":
                assert value is MISSING, f"{key} of dataset={name} is {value}, the page says it has none"
            else:
                value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
                assert yaml.safe_load(cell.strip("`")) == value, f"{key} of dataset={name}: page {cell}, config {value}"


def test_the_cache_sizes_follow_from_the_layouts(tmp_path):
    header, rows = table(TEXT, "data")
    assert header == ["data", "`dataset.logit_cache`", "cached image (HxW)", "train images", "MB per image",
                      "GB for the train split"]
    assert len(rows) >= 4
    for data, layout, size, images, mb, gb in rows:
        stride, all_classes, top_k = re.fullmatch(r"stride (\d+), (?:all (\d+) classes|top (\d+))", layout).groups()
        stride, top_k = int(stride), None if all_classes else int(top_k)
        h, w = map(int, size.split("x"))
        n = int(number(images))
        per_image = bytes_per_image((h, w), NUM_CLASSES, stride, top_k)
        assert agrees(number(mb), per_image / 1e6), f"{data}: {mb} MB per image, the layout gives {per_image / 1e6}"
        assert agrees(number(gb), per_image * n / 1e9), f"{data}: {gb} GB, the layout gives {per_image * n / 1e9}"
        name = re.fullmatch(r"`(\w+)`", data)
        if name:  # a row named after a config: its layout is that config's
            cfg = dataset_cfg(name.group(1), tmp_path).dataset
            assert (cfg.logit_cache.stride, cfg.logit_cache.top_k) == (stride, top_k), data
            if "prepare" in cfg:
                assert (cfg.prepare.num_train, cfg.prepare.height, cfg.prepare.width) == (n, h, w), data


# ----------------------------------------------------------------------------- SynthStreets numbers

class InMemorySplit:
    """Train-id masks as :func:`class_statistics` reads a split (no files, so no cache key)."""

    def __init__(self, masks: list[np.ndarray]) -> None:
        self.masks = masks

    def __len__(self) -> int:
        return len(self.masks)

    def load_mask(self, index: int) -> np.ndarray:
        return self.masks[index]


def measure_synthstreets(name: str, tmp_path: Path) -> dict:
    """The train split of ``dataset=name`` rendered in memory (every image is a pure function of
    seed, split, index and size, so it is the data segkd.analyze read), measured with its functions."""
    prepare = dataset_cfg(name, tmp_path).dataset.prepare
    h, w = prepare.height, prepare.width
    masks = [RAW_TO_TRAIN[render_synthstreets_image(prepare.seed, "train", i, h, w)[1]].astype(np.uint8)
             for i in range(prepare.num_train)]
    stats = class_statistics(InMemorySplit(masks), NUM_CLASSES)
    share, presence = class_shares(stats)
    sizes = ObjectSizes(NUM_CLASSES)
    for mask in masks:
        sizes.add(mask)
    return {"images": len(masks), "size": f"{h}x{w}", "pixels": len(masks) * h * w,
            "labelled": sum(stats["pixels"]), "share": share, "presence": presence,
            "median_px": [sizes.summary(c)["median_area"] * h * w for c in range(NUM_CLASSES)]}


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict:
    tmp_path = tmp_path_factory.mktemp("synthstreets_doc")
    sizes = {"300": "synthstreets"} | ({"2000": "synthstreets_kd"} if FULL else {})
    return {column: measure_synthstreets(name, tmp_path) for column, name in sizes.items()}


def test_the_synthstreets_summary_rows(measured, tmp_path):
    header, rows = table(TEXT, "`dataset=`")
    assert header == ["`dataset=`", "train images", "image size", "labelled pixels", "ignored pixels"]
    columns = {"`synthstreets`": "300", "`synthstreets_kd`": "2000"}
    assert [row[0] for row in rows] == list(columns)
    for name, images, size, labelled, ignored in rows:
        prepare = dataset_cfg(name.strip("`"), tmp_path).dataset.prepare
        assert (int(images), size) == (prepare.num_train, f"{prepare.height}x{prepare.width}"), name
        if columns[name] in measured:
            m = measured[columns[name]]
            assert number(labelled) == m["labelled"], f"{name}: labelled pixels"
            assert agrees(number(ignored), 100 * (1 - m["labelled"] / m["pixels"])), f"{name}: ignored share"


def test_the_synthstreets_class_table(measured):
    header, rows = table(TEXT, "class")
    assert [row[0] for row in rows] == list(CLASS_NAMES)
    reference = cityscapes_reference_shares()
    checked = set()
    for col, title in enumerate(header[1:], start=1):
        source, _, quantity = title.partition(": ")
        for c, row in enumerate(rows):
            quoted = number(row[col])
            if source == "Cityscapes":
                assert agrees(quoted, 100 * reference[c]), f"{row[0]}: {title}"
            elif source in measured:
                m = measured[source]
                if quantity == "% pixels":
                    value, ok = 100 * m["share"][c], agrees(quoted, 100 * m["share"][c])
                elif quantity == "% images":
                    value, ok = 100 * m["presence"][c], agrees(quoted, 100 * m["presence"][c])
                elif quantity == "median region (px)":
                    value, ok = m["median_px"][c], abs(quoted - m["median_px"][c]) <= 0.5
                else:
                    pytest.fail(f"unknown column {title}")
                assert ok, f"{row[0]}, {title}: page {quoted}, data {value}"
            else:
                assert source == "2000" and not FULL, f"unknown column {title}"
                continue
            checked.add(title)
    assert {"300: % pixels", "300: % images", "300: median region (px)", "Cityscapes: % pixels"} <= checked
