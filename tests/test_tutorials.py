"""The tutorials in docs/tutorials/, run as a reader runs them, so that they cannot rot.

Marker convention
-----------------
A fenced code block belongs to a tutorial's run when the line just before its opening fence is an
HTML comment ``<!-- tutorial-test [attributes] -->`` (invisible in the rendered page). Attributes:

- none: run the block. ```bash blocks run as written; ```python blocks are fed to
  ``.venv/bin/python`` on stdin, as if pasted into it.
- ``file=PATH``: do not run the block; save its text to PATH (``$WORK`` and other shell variables
  expanded), as the reader is told to save it.
- ``id=NAME``: keep the block's output (stdout and stderr) under NAME for the assertions here.

Unmarked blocks (full-size variants, sample output) are not run.

How a tutorial runs: all its marked blocks, in order, in one ``bash`` process under ``set -euo
pipefail`` with the repository root as working directory, so variables carry from block to block
as in the reader's terminal. Block texts are never edited, and the sizes are the tutorials' own
(their ``$TRY`` settings): what is tested is exactly what a reader types. The environment differs
from a reader's in three ways only: ``TMPDIR`` is a temp dir of its own per tutorial (the tutorials
keep everything under ``$WORK=${TMPDIR:-/tmp}/segkd-tutorial``, never in the repository),
``SEGKD_CACHE_DIR`` is the session cache (tiny SynthStreets is generated once for every test), and
``OMP_NUM_THREADS=1``. The tutorials are independent, so the selected ones start together and
their tests wait for them: each is mostly Python importing torch and Lightning, one process after
another, and side by side they take little longer than the longest alone.

After each run the test asserts what the tutorial's text promises: the new loss's terms in the
run's summary and metrics, the dataset's classes in its metrics and its layout error, the
comparison with paired seeds, the networks of other architectures each run trained and the line
a paradigm that cannot apply prints. Static checks (markers, outputs under ``$WORK``, a test per tutorial)
and a check that the loss tutorial's own test can fail run without a process.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
import yaml

from conftest import ROOT

TUTORIALS_DIR = ROOT / "docs" / "tutorials"
PYTHON = ROOT / ".venv" / "bin" / "python"
MARKER = re.compile(r"<!--\s*tutorial-test\b(?P<attrs>.*?)-->")
FENCE = re.compile(r"```(?P<lang>[\w-]*)")
ATTRIBUTES = {"file", "id"}
RUNNABLE = {"bash", "python"}
#: Each tutorial and the test that runs it (a new tutorial without a test fails test_every_tutorial_is_run).
TESTED = {"add_a_distillation_loss", "add_a_dataset", "paradigm_sweep", "distil_from_your_own_teacher",
          "any_architecture"}


@dataclass
class Block:
    tutorial: str
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    file: Optional[str] = None
    id: Optional[str] = None

    @property
    def where(self) -> str:
        return f"docs/tutorials/{self.tutorial}.md:{self.line}"


def marked_blocks(tutorial: str) -> list[Block]:
    """The marked blocks of docs/tutorials/<tutorial>.md, in order; a malformed marker is an error."""
    lines = (TUTORIALS_DIR / f"{tutorial}.md").read_text().splitlines()
    blocks = []
    for i, line in enumerate(lines):
        marker = MARKER.fullmatch(line.strip())
        if marker is None:
            continue
        where = f"docs/tutorials/{tutorial}.md:{i + 1}"
        fence = FENCE.fullmatch(lines[i + 1].strip()) if i + 1 < len(lines) else None
        if fence is None:
            raise ValueError(f"{where}: a tutorial-test marker must be followed directly by a fenced block")
        end = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise ValueError(f"{where}: the block after the marker is never closed")
        attrs = dict(token.split("=", 1) if "=" in token else (token, "") for token in shlex.split(marker["attrs"]))
        unknown = set(attrs) - ATTRIBUTES
        if unknown or any(not v for v in attrs.values()):
            raise ValueError(f"{where}: marker attributes must be {sorted(ATTRIBUTES)} with a value, got {attrs}")
        block = Block(tutorial, i + 2, fence["lang"], "\n".join(lines[i + 2:end]) + "\n", attrs.get("file"), attrs.get("id"))
        if block.file is None and block.lang not in RUNNABLE:
            raise ValueError(f"{where}: a ```{block.lang} block can only be saved (file=PATH), not run")
        blocks.append(block)
    return blocks


def shell_script(blocks: list[Block], stage: Path) -> str:
    """One bash script that does what the reader does with each block, each block's output in its own log."""
    lines = ["set -euo pipefail"]
    current = shlex.quote(str(stage / "current"))  # the block under way: a failure is reported as that block's
    for n, block in enumerate(blocks):
        body, log = stage / f"{n:02d}.block", stage / f"{n:02d}.log"
        body.write_text(block.text)
        body, log = shlex.quote(str(body)), shlex.quote(str(log))
        lines.append(f"echo {n} > {current}")
        if block.file is not None:  # double quotes: the reader's shell expands $WORK in the path
            lines += [f'target="{block.file}"', 'mkdir -p "$(dirname "$target")"', f'cp {body} "$target"']
        elif block.lang == "bash":
            lines.append(f"source {body} > {log} 2>&1")
        else:
            lines.append(f".venv/bin/python - < {body} > {log} 2>&1")
    lines.append(f"echo done > {current}")
    return "\n".join(lines) + "\n"


@dataclass
class TutorialRun:
    work: Path
    outputs: dict[str, str]  # block id -> what it printed


class Launched:
    """One tutorial's bash process, started in the background; :meth:`result` waits for it."""

    def __init__(self, tutorial: str, tmpdir: Path, cache_dir: Path) -> None:
        self.tutorial, self.tmpdir = tutorial, tmpdir
        self.blocks = marked_blocks(tutorial)
        self.stage = tmpdir / "stage"
        self.stage.mkdir()
        (self.stage / "script.sh").write_text(shell_script(self.blocks, self.stage))
        env = {**os.environ, "TMPDIR": str(tmpdir), "SEGKD_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "1",
               "PYTHONUNBUFFERED": "1"}
        with (self.stage / "bash.err").open("w") as err:
            self.process = subprocess.Popen(["bash", str(self.stage / "script.sh")], cwd=ROOT, env=env,
                                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)

    def result(self) -> TutorialRun:
        code = self.process.wait(timeout=1200)
        current = self.stage / "current"
        reached = current.read_text().strip() if current.exists() else "0"
        if code != 0 or reached != "done":
            n = int(reached) if reached.isdigit() else 0
            log = self.stage / f"{n:02d}.log"
            output = (log if log.exists() else self.stage / "bash.err").read_text()[-4000:]
            block = self.blocks[n]
            pytest.fail(f"block at {block.where} failed (exit {code}):\n{block.text}\n--- its output ---\n{output}")
        outputs = {b.id: (self.stage / f"{n:02d}.log").read_text() for n, b in enumerate(self.blocks) if b.id is not None}
        return TutorialRun(self.tmpdir / "segkd-tutorial", outputs)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait()


class _Runs(dict):
    """Tutorial runs by name; one asked for that has not started starts then."""

    def __init__(self, start) -> None:
        super().__init__()
        self.start = start

    def __missing__(self, name: str) -> "Launched":
        self[name] = self.start(name)
        return self[name]


@pytest.fixture(scope="session")
def tutorial_runs(request, tmp_path_factory, cache_dir) -> dict[str, Launched]:
    """Every selected tutorial, started at once: they are independent (each in its own TMPDIR, as for a
    reader who follows only that one) and each runs one process at a time, so on two free cores
    they finish together in about the time of the longest. Under `make test`'s workers (pytest-xdist)
    each one starts when its test asks for it instead: a worker cannot know which tests it will get,
    and every worker starting all of them would run each tutorial once per worker."""
    if not PYTHON.exists():
        pytest.skip("the tutorials call .venv/bin/python; `make install` creates it")
    runs = _Runs(lambda name: Launched(name, tmp_path_factory.mktemp(name), cache_dir))
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        selected = {item.originalname.removeprefix("test_") for item in request.session.items
                    if item.path == Path(__file__)} & TESTED
        runs.update({name: runs.start(name) for name in sorted(selected)})
    yield runs
    for run in runs.values():
        run.stop()


def block_saved_as(tutorial: str, suffix: str) -> Block:
    return next(b for b in marked_blocks(tutorial) if b.file is not None and b.file.endswith(suffix))


# ----------------------------------------------------------------------------- without processes


def test_every_tutorial_is_run_and_its_markers_are_well_formed():
    found = {p.stem for p in TUTORIALS_DIR.glob("*.md")}
    assert found == TESTED, f"tutorials without a test here: {sorted(found - TESTED)}; gone: {sorted(TESTED - found)}"
    for tutorial in sorted(found):
        blocks = marked_blocks(tutorial)  # raises on a malformed marker
        assert any(b.file is None for b in blocks), f"{tutorial}.md runs no block"
        ids = [b.id for b in blocks if b.id]
        assert len(ids) == len(set(ids)), f"{tutorial}.md repeats a block id: {ids}"


def test_runs_write_outside_the_repository():
    """Every file a tutorial saves and every run it starts goes under $WORK, not into the checkout."""
    for tutorial in sorted(TESTED):
        for block in marked_blocks(tutorial):
            if block.file is not None:
                assert block.file.startswith("$WORK/"), f"{block.where}: saves {block.file} outside $WORK"
                continue
            if block.lang != "bash":
                continue
            for command in block.text.replace("\\\n", " ").splitlines():
                if "segkd.run" in command:
                    assert re.search(r"hydra\.(run|sweep)\.dir=\$WORK/", command), (
                        f"{block.where}: `{command.strip()}` writes into the repository's outputs/; "
                        "give it hydra.run.dir=$WORK/... (or hydra.sweep.dir for -m)")


LOSS_MUTANTS = {
    # What the loss tutorial's test must catch, as (text in the loss, the broken version).
    "teacher not detached": ("attention_map(teacher.detach(), self.p)", "attention_map(teacher, self.p)"),
    "maps not normalised": ("return F.normalize(features.abs().pow(p).mean(dim=1).flatten(1), dim=1)",
                            "return features.abs().pow(p).mean(dim=1).flatten(1)"),
}


def _loss_tests_against(loss_source: str) -> list[str]:
    """Run the tutorial's loss tests in this process against ``loss_source``; the names of those that fail."""
    loss_module = types.ModuleType("attention_transfer")
    exec(compile(loss_source, "attention_transfer.py", "exec"), loss_module.__dict__)
    saved = sys.modules.get("attention_transfer")
    sys.modules["attention_transfer"] = loss_module
    try:
        tests = types.ModuleType("tutorial_loss_tests")
        source = block_saved_as("add_a_distillation_loss", "test_attention_transfer.py").text
        exec(compile(source, "test_attention_transfer.py", "exec"), tests.__dict__)
    finally:
        if saved is None:
            sys.modules.pop("attention_transfer", None)
        else:
            sys.modules["attention_transfer"] = saved
    failed = []
    for name, test in vars(tests).items():
        if name.startswith("test_") and callable(test):
            try:
                test()
            except AssertionError:
                failed.append(name)
    return failed


@pytest.mark.parametrize("mutant", sorted(LOSS_MUTANTS))
def test_the_loss_tutorials_test_catches_a_broken_loss(mutant):
    """The tutorial teaches what a good loss test asserts; here its test passes on the tutorial's loss
    and fails on a copy with one typical mistake."""
    source = block_saved_as("add_a_distillation_loss", "attention_transfer.py").text
    assert _loss_tests_against(source) == []
    original, broken = LOSS_MUTANTS[mutant]
    assert original in source, f"the tutorial's loss changed; update LOSS_MUTANTS[{mutant!r}]"
    assert _loss_tests_against(source.replace(original, broken)), f"no test of the tutorial notices: {mutant}"


# ----------------------------------------------------------------------------- the tutorials, run


def _test_count(tutorial: str, suffix: str) -> int:
    return len(re.findall(r"^def test_", block_saved_as(tutorial, suffix).text, flags=re.M))


@pytest.mark.slow
@pytest.mark.study
def test_add_a_distillation_loss(tutorial_runs):
    run = tutorial_runs["add_a_distillation_loss"].result()
    tests = _test_count("add_a_distillation_loss", "test_attention_transfer.py")
    assert f"{tests} passed" in run.outputs["loss-tests"], run.outputs["loss-tests"]

    run_dir = run.work / "runs" / "attention"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["experiment"] == "offline_kd" and "paradigm:attention" in summary["tags"]
    assert summary["val"]["mIoU"] is not None
    config = yaml.safe_load((run_dir / "resolved_config.yaml").read_text())
    terms = config["system"]["distill"]["terms"]
    assert {name: term["loss"]["_target_"] for name, term in terms.items()} == {
        "at3": "attention_transfer.AttentionTransfer", "at4": "attention_transfer.AttentionTransfer"}
    assert terms["at4"]["inputs"] == {"student": "student:encoder#4", "teacher": "teacher:encoder#4"}
    # Both terms pulled on the student (the tutorial reads these to set the weights) and were logged.
    assert set(summary["grad_ratio"]) == {"at3", "at4"}
    assert all(ratio > 0 for ratio in summary["grad_ratio"].values()), summary["grad_ratio"]
    with (run_dir / "csv" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    for column in ("train/kd/at3", "train/kd/at4"):
        values = [float(r[column]) for r in rows if r.get(column)]
        assert values and all(math.isfinite(v) and 0 <= v <= 4 for v in values), (column, values)
    assert "at3: gradient" in run.outputs["balance"] and "at4: gradient" in run.outputs["balance"]


@pytest.mark.slow
@pytest.mark.study
def test_add_a_dataset(tutorial_runs):
    run = tutorial_runs["add_a_dataset"].result()

    check = run.outputs["check"]
    assert "train 8 images" in check and "val 3 images" in check
    listed = re.search(r"classes in the first mask: (\[.*\])", check)
    assert listed, check
    classes = set(ast.literal_eval(listed[1]))
    # The masks' own ids arrive as the Cityscapes classes they name, and the unlabeled strip as ignored.
    assert {"road", "sidewalk", "sky", "car"} <= classes <= {"road", "sidewalk", "building", "vegetation", "sky", "car"}
    assert "wrong root: ToyRoads split 'train' under" in check
    assert "has no images; expected train/images/*.png and train/masks/*.png" in check

    summary = json.loads((run.work / "runs" / "toyroads" / "summary.json").read_text())
    assert summary["dataset"] == "toyroads"
    assert summary["global_step"] == 2, "8 train images in batches of 4, one epoch"
    iou = summary["val"]["IoU"]
    assert len(iou) == 19
    for name in ("road", "sidewalk", "sky", "car"):  # in every val mask: scored
        assert iou[name] is not None, name


@pytest.mark.slow
@pytest.mark.study
def test_paradigm_sweep(tutorial_runs):
    run = tutorial_runs["paradigm_sweep"].result()
    sweeps = run.work / "sweeps"
    assert sorted(p.name for p in (sweeps / "scratch").iterdir() if p.name.isdigit()) == ["0", "1"]
    assert sorted(p.name for p in (sweeps / "kd").iterdir() if p.name.isdigit()) == ["0", "1", "2", "3"]
    for name in ("comparison.md", "comparison.csv", "miou_vs_gmacs.png", "paired_delta.png"):
        assert (sweeps / "kd" / name).is_file(), name

    # The paired differences, from the summaries themselves.
    miou: dict[tuple[str, int], float] = {}
    for path in sweeps.glob("*/*/summary.json"):
        s = json.loads(path.read_text())
        paradigm = next((t.split(":", 1)[1] for t in s["tags"] if t.startswith("paradigm:")), "scratch")
        miou[paradigm, s["seed"]] = s["val"]["mIoU"]
    assert len(miou) == 6

    rows = json.loads((sweeps / "kd" / "comparison.json").read_text())
    baseline = next(r for r in rows if r["verdict"] == "baseline")
    assert baseline["experiment"] == "student" and baseline["seeds"] == [1, 2]
    kd = {r["paradigm"]: r for r in rows if r["experiment"] == "offline_kd"}
    assert set(kd) == {"logits", "cwd"} and len(rows) == 3
    for paradigm, row in kd.items():
        assert row["baseline"] == baseline["recipe"] and row["n_paired"] == 2 and row["seeds"] == [1, 2]
        expected = sum(miou[paradigm, s] - miou["scratch", s] for s in (1, 2)) / 2
        assert row["delta_mean"] == pytest.approx(expected, abs=1e-12)
        low, high = row["delta_ci95"]
        assert low <= row["delta_mean"] <= high
        assert row["verdict"] == ("better" if low > 0 else "worse" if high < 0 else "not distinguishable")
        assert f"{paradigm}: Δ {100 * row['delta_mean']:+.2f} points over 2 paired seeds" in run.outputs["verdicts"]


@pytest.mark.slow
@pytest.mark.study
def test_distil_from_your_own_teacher(tutorial_runs):
    run = tutorial_runs["distil_from_your_own_teacher"].result()
    assert "saved ['my_teacher.pt', 'my_teacher.safetensors', 'my_teacher_scripted.pt']" in run.outputs["weights"]

    run_dir = run.work / "runs" / "own_teacher"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["experiment"] == "external_teacher" and summary["global_step"] == 2
    assert summary["teacher"]["mIoU"] is not None and summary["val"]["mIoU"] is not None
    config = yaml.safe_load((run_dir / "resolved_config.yaml").read_text())
    external = config["system"]["teacher"]["external"]
    assert external["net"] == {"_target_": "my_teacher.MyTeacher", "classes": 21}
    assert external["label_map"].endswith("label_map.yaml")
    assert config["system"]["distill"]["terms"]["dec2"]["inputs"]["teacher"] == "teacher:body"
    with (run_dir / "csv" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    for column in ("train/kd/logits", "train/kd/dec2"):
        values = [float(r[column]) for r in rows if r.get(column)]
        assert values and all(math.isfinite(v) and v >= 0 for v in values), (column, values)

    # Each problem is the one line the tutorial shows, and the command fails.
    wrong_map = run.outputs["wrong-map"]
    assert ("segkd: error: system.teacher.external.label_map: teacher class ids [21] are out of range: "
            "the teacher predicts 21 classes (ids 0..20)") in wrong_map and "exit status 1" in wrong_map
    assert "Traceback" not in wrong_map
    wrong_weights = run.outputs["wrong-weights"]
    assert "does not fit my_teacher.MyTeacher" in wrong_weights and "stem.0.weight (16, 3, 3, 3) vs (8, 3, 3, 3)" in wrong_weights
    assert "exit status 1" in wrong_weights and "Traceback" not in wrong_weights


def _finite_column(metrics: Path, column: str) -> list[float]:
    """The logged values of ``column`` in a run's metrics.csv, asserted present and finite."""
    with metrics.open() as f:
        values = [float(r[column]) for r in csv.DictReader(f) if r.get(column)]
    assert values and all(math.isfinite(v) for v in values), (metrics, column, values)
    return values


@pytest.mark.slow
@pytest.mark.study
def test_any_architecture(tutorial_runs):
    run = tutorial_runs["any_architecture"].result()
    runs = run.work / "runs"

    # 1. A DeepLabV3+ teacher, and the line it ends with names its network for offline KD.
    teacher = json.loads((runs / "teacher_dlv3p" / "summary.json").read_text())
    assert teacher["experiment"] == "teacher" and teacher["model"] == "teacher_dlv3p_r34"
    assert teacher["global_step"] == 2 and teacher["val"]["mIoU"] is not None
    config = yaml.safe_load((runs / "teacher_dlv3p" / "resolved_config.yaml").read_text())
    assert config["model"]["arch"] == "DeepLabV3Plus" and config["model"]["encoder_output_stride"] == 16
    hint = ("next: distil this teacher into a student: python -m segkd.run +experiment=offline_kd "
            f"model@system.teacher.net=teacher_dlv3p_r34 teacher_ckpt={teacher['last_checkpoint']} ")
    assert hint in run.outputs["teacher"], run.outputs["teacher"][-2000:]

    # 2. It taught a SegFormer student through its logits (job 0) and its encoder features (job 1).
    sweep = run.work / "sweeps" / "segformer"
    for job, paradigm, terms in (("0", "cwd", ["cwd"]), ("1", "encoder", ["enc2", "enc3", "enc4"])):
        summary = json.loads((sweep / job / "summary.json").read_text())
        assert summary["experiment"] == "offline_kd" and summary["model"] == "student_segformer_b0"
        assert f"paradigm:{paradigm}" in summary["tags"] and summary["global_step"] == 2
        assert summary["val"]["mIoU"] is not None
        # the teacher scored on val is the one its own run validated
        assert summary["teacher"]["mIoU"] == pytest.approx(teacher["val"]["mIoU"], abs=1e-6)
        config = yaml.safe_load((sweep / job / "resolved_config.yaml").read_text())
        assert (config["model"]["arch"], config["model"]["encoder_name"]) == ("Segformer", "mit_b0")
        assert config["system"]["teacher"]["net"]["arch"] == "DeepLabV3Plus"
        assert sorted(config["system"]["distill"]["terms"]) == terms
        for term in terms:
            assert all(v >= 0 for v in _finite_column(sweep / job / "csv" / "metrics.csv", f"train/kd/{term}"))
    assert run.outputs["connectors"].splitlines() == [
        "enc2: the student's 32 channels -> the teacher's 64",
        "enc3: the student's 64 channels -> the teacher's 128",
        "enc4: the student's 160 channels -> the teacher's 256"]

    # 3. A paradigm of UNet decoder blocks on a SegFormer: one line, exit status 1, nothing trained.
    refused = run.outputs["decoder"]
    assert ("segkd: error: distillation term 'dec1': the student, Segformer (mit_b0), has no module "
            "'decoder.blocks.1' (a module of smp's Unet decoder): this term needs a Unet student; address features "
            "by role instead (the student has encoder#2, encoder#3, encoder#4, encoder#5, decoder, logits), as "
            "distill_paradigm=encoder, bottleneck, cwd and logits do (SEGKD_DEBUG=1 shows the traceback)") in refused
    assert "exit status 1" in refused and "Traceback" not in refused
    assert not (runs / "decoder" / "summary.json").exists()

    # 4. The UNet and the DeepLabV3+ teach an FPN student as a mean ensemble, each cached on its own.
    unet = json.loads((runs / "teacher_unet" / "summary.json").read_text())
    assert unet["model"] == "teacher_r34"
    summary = json.loads((runs / "ensemble" / "summary.json").read_text())
    assert summary["experiment"] == "multi_teacher" and summary["model"] == "student_fpn_mnv2"
    assert summary["global_step"] == 2 and summary["val"]["mIoU"] is not None
    assert set(summary["teachers"]) == {"teacher0", "teacher1"}
    assert summary["teachers"]["teacher0"]["mIoU"] == pytest.approx(unet["val"]["mIoU"], abs=1e-6)  # the UNet
    assert summary["teachers"]["teacher1"]["mIoU"] == pytest.approx(teacher["val"]["mIoU"], abs=1e-6)  # the DLV3+
    assert summary["teacher"]["mIoU"] is not None  # the ensemble
    assert set(summary["cost"]["teacher_caches"]) == {"teacher0", "teacher1"}
    config = yaml.safe_load((runs / "ensemble" / "resolved_config.yaml").read_text())
    assert config["model"]["arch"] == "FPN" and config["system"]["ensemble"] == "mean"
    assert config["system"]["teacher"]["net"] is None
    assert [Path(c).parts[-3] for c in config["system"]["teachers"]] == ["teacher_unet", "teacher_dlv3p"]
    metrics = runs / "ensemble" / "csv" / "metrics.csv"
    assert all(v >= 0 for v in _finite_column(metrics, "train/kd/cwd"))
    for name in ("teacher0", "teacher1"):
        _finite_column(metrics, f"teacher/{name}/val/mIoU")
    printed = run.outputs["teachers"]
    assert "teacher0: val mIoU" in printed and "teacher1: val mIoU" in printed
    assert "the ensemble (teacher): val mIoU" in printed and "teacher caches: ['teacher0', 'teacher1']" in printed
