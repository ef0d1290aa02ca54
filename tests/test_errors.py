"""segkd's own errors end a run with one line; everything else keeps its traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from segkd.runtime.errors import errors_in_one_line, users_error
from segkd.train import train

from conftest import FAST, ROOT


def test_an_error_segkd_raised_becomes_one_line_and_exit_status_1(make_cfg, capsys, monkeypatch):
    monkeypatch.delenv("SEGKD_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exit_info, errors_in_one_line():
        train(make_cfg("model.encoder_name=resnet999"))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("segkd: error: ")
    assert "resnet999" in err and "SEGKD_DEBUG=1" in err


def test_segkd_debug_shows_the_original_error(make_cfg, monkeypatch):
    monkeypatch.setenv("SEGKD_DEBUG", "1")
    with pytest.raises(ValueError, match="resnet999"), errors_in_one_line():
        train(make_cfg("model.encoder_name=resnet999"))


def test_an_error_raised_outside_segkd_keeps_its_traceback(monkeypatch):
    monkeypatch.delenv("SEGKD_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(RuntimeError), errors_in_one_line():
        torch.zeros(2) + torch.zeros(3)  # a library's error: possibly a bug, so the traceback stays


def test_segkd_error_types_raised_by_user_code_are_one_line_too(monkeypatch, capsys):
    # A user's own dataset class (outside segkd/) raising segkd's DatasetError speaks to the user as segkd does.
    from segkd.data.errors import DatasetError

    monkeypatch.delenv("SEGKD_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    namespace: dict = {"DatasetError": DatasetError}
    exec(compile("def load():\n    raise DatasetError('image x.png has no label file')", "/elsewhere/my_data.py",
                 "exec"), namespace)
    with pytest.raises(SystemExit) as exit_info, errors_in_one_line():
        namespace["load"]()
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.startswith("segkd: error: image x.png has no label file")


def test_the_message_is_found_inside_nested_instantiation_errors():
    # Hydra wraps an error of an inner node in one InstantiationException per level.
    inner = {"_target_": "segkd.distill.losses.cwd.ChannelWiseKD", "tau": -1}
    with pytest.raises(InstantiationException) as info:
        instantiate({"_target_": "builtins.dict", "loss": inner})
    found = users_error(info.value)
    assert isinstance(found, ValueError) and "tau must be > 0" in str(found)

    with pytest.raises(InstantiationException) as info:
        instantiate({"_target_": "builtins.dict", "loss": {"_target_": "torch.nn.Conv2d", "in_channels": -1,
                                                           "out_channels": 1, "kernel_size": 1}})
    assert users_error(info.value) is None, "a library's error is not segkd's: its traceback stays"


@pytest.mark.parametrize("override, message", [
    ("system.optimizer.lr=-0.01", r"^system\.optimizer\.lr must be > 0, got -0\.01"),
    ("system.optimizer.lr=0", r"^system\.optimizer\.lr must be > 0"),
    ("+system.optimizer.lrr=1", r"^system\.optimizer\.lrr: AdamW takes no argument 'lrr'; its arguments are "
                                r"\['lr', 'betas', 'eps', 'weight_decay', .*\(remove it with ~system\.optimizer\.lrr\)"),
    ("system.optimizer.lr=abc", r"^system\.optimizer\.lr='abc' is not a number; AdamW's lr defaults to 0\.001"),
    ("system.optimizer.weight_decay=much", r"^system\.optimizer\.weight_decay='much' is not a number"),
    ("trainer.max_epochs=0", r"^trainer\.max_epochs=0: nothing would train; set it to 1 or more"),
    ("trainer.max_steps=0", r"^trainer\.max_steps=0: nothing would train"),
    ("trainer.limit_train_batches=0", r"^trainer\.limit_train_batches=0: nothing would train"),
])
def test_invalid_values_are_refused_naming_the_key(make_cfg, override, message):
    with pytest.raises(ValueError, match=message):
        train(make_cfg(override))


@pytest.mark.slow
def test_the_cli_prints_one_line_without_a_traceback(tmp_path, cache_dir):
    cmd = [sys.executable, "-m", "segkd.run", *FAST, f"paths.cache_dir={cache_dir}", f"hydra.run.dir={tmp_path}",
           "dataset.root=/nonexistent/synthstreets_elsewhere", "dataset.prepare=null"]
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("SEGKD_DEBUG", "HYDRA_FULL_ERROR")}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("segkd: error: ") and "/nonexistent/synthstreets_elsewhere" in last


@pytest.mark.parametrize("code, words", [(28, "no space left on the device"), (30, "a read-only file system"),
                                         (13, "permission denied")])
def test_a_place_that_cannot_be_written_is_one_line_naming_the_path(tmp_path, capsys, code, words):
    """Raised by a library, not by segkd, and still one line: the fix is another place (issue 29 #16, #17)."""

    from segkd.runtime.errors import errors_in_one_line

    target = tmp_path / "out" / "last.ckpt"
    target.parent.mkdir()
    (tmp_path / "out" / "best.ckpt").write_bytes(b"x" * 3_000_000)  # what a save there needs

    def save():  # a full disk mid-save surfaces as torch's RuntimeError with the OSError as its context
        try:
            raise OSError(code, "os says no", str(target))
        except OSError as err:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos") from err

    with pytest.raises(SystemExit) as exit_:
        with errors_in_one_line():
            save()
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 1 and len(lines) == 1
    assert lines[0].startswith(f"segkd: error: cannot write {target}: {words}")
    if code == 28:
        assert " free there; a checkpoint there takes 3.0 MB)" in lines[0] and "free some space or write elsewhere" in lines[0]
