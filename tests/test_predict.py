"""segkd.predict: images (folder, glob) and a video in, colour masks and overlays out; unreadable files skipped."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from segkd.config import compose_config
from segkd.inference.drawing import PALETTE
from segkd.predict import predict
from segkd.runtime.errors import errors_in_one_line

from conftest import random_image, write_png


def predict_cfg(tmp_path: Path, *overrides: str):
    device = [] if any(o.startswith("device=") for o in overrides) else ["device=cpu"]
    return compose_config("predict", [*overrides, *device, f"paths.log_dir={tmp_path}"], tmp_path / "run")


def test_images_of_a_folder_become_masks_and_overlays_and_an_unreadable_one_is_skipped(tmp_path, student_run, capsys):
    rng = np.random.default_rng(0)
    inputs = tmp_path / "in"
    write_png(inputs / "a.png", random_image(rng, (48, 80)))
    write_png(inputs / "sub" / "b.jpg", random_image(rng, (64, 64)))  # cv2 writes by suffix: a JPEG
    (inputs / "broken.png").write_bytes(b"not a png")
    (inputs / "notes.txt").write_text("not an image, not looked at")

    summary = predict(predict_cfg(tmp_path, f"ckpt_path={student_run['last_checkpoint']}", f"input={inputs}"))
    out = tmp_path / "run"
    assert summary["images"] == 2 and summary["inputs"] == 3 and summary["images_per_s"] > 0
    assert [s["path"] for s in summary["skipped"]] == [str(inputs / "broken.png")]
    captured = capsys.readouterr()
    assert f"skipped {inputs / 'broken.png'}" in captured.err, "the unreadable file is named"
    assert "images/s" in captured.out

    mask = cv2.cvtColor(cv2.imread(str(out / "masks" / "a.png")), cv2.COLOR_BGR2RGB)
    assert mask.shape == (48, 80, 3)
    assert {tuple(c) for c in mask.reshape(-1, 3)} <= {tuple(c) for c in PALETTE[:19]}, "Cityscapes palette only"
    assert cv2.imread(str(out / "overlays" / "a.png")).shape == (48, 80, 3)
    assert (out / "masks" / "sub" / "b.png").is_file() and (out / "overlays" / "sub" / "b.png").is_file()
    assert not (out / "masks" / "broken.png").exists()


def test_a_glob_picks_its_files_and_output_dir_moves_the_outputs(tmp_path, student_run):
    rng = np.random.default_rng(1)
    for name in ("x1.png", "x2.png", "y.png"):
        write_png(tmp_path / "in" / name, random_image(rng, (32, 64)))
    summary = predict(predict_cfg(tmp_path, f"ckpt_path={student_run['last_checkpoint']}",
                                  f"input={tmp_path / 'in' / 'x*.png'}", f"output_dir={tmp_path / 'elsewhere'}"))
    assert summary["images"] == 2
    assert sorted(p.name for p in (tmp_path / "elsewhere" / "masks").iterdir()) == ["x1.png", "x2.png"]


def test_a_video_becomes_a_mask_video_and_an_overlay_video(tmp_path, student_run):
    video, frames, size = tmp_path / "clip.mp4", 6, (64, 128)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (size[1], size[0]))
    rng = np.random.default_rng(2)
    for _ in range(frames):
        writer.write(random_image(rng, size))
    writer.release()

    summary = predict(predict_cfg(tmp_path, f"ckpt_path={student_run['last_checkpoint']}", f"input={video}"))
    assert (summary["videos"], summary["frames"], summary["images"]) == (1, frames, 0)
    for kind in ("mask", "overlay"):
        capture = cv2.VideoCapture(str(tmp_path / "run" / f"clip_{kind}.mp4"))
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
        read = []
        while (frame := capture.read())[0]:
            read.append(frame[1])
        capture.release()
        assert len(read) == frames and read[0].shape == (*size, 3), kind


@pytest.mark.parametrize("case, expected", [
    ("nothing_readable", "none of the 2 inputs could be read"),
    ("missing", "does not exist"),
    ("no_input", "no input given"),
    ("no_images", "holds no images or videos"),
    ("no_match", "matches no files"),
])
def test_input_errors_are_one_line(tmp_path, student_run, capsys, monkeypatch, case, expected):
    monkeypatch.delenv("SEGKD_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"")
    (tmp_path / "in" / "b.mp4").write_bytes(b"not a video")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("no image, no video")
    given = {"nothing_readable": f"input={tmp_path / 'in'}", "missing": f"input={tmp_path / 'nowhere'}",
             "no_input": "input=null", "no_images": f"input={tmp_path / 'notes'}",
             "no_match": f"input={tmp_path / 'in' / '*.jpg'}"}[case]
    with pytest.raises(SystemExit) as exit_info, errors_in_one_line():
        predict(predict_cfg(tmp_path, f"ckpt_path={student_run['last_checkpoint']}", given))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("segkd: error: ") and expected in err[-1], err[-1]
    if case == "nothing_readable":  # each file is named, with its reason, before the error
        assert any(line.startswith(f"segkd: skipped {tmp_path / 'in' / 'a.png'}: not a readable image") for line in err)
        assert any(line.startswith(f"segkd: skipped {tmp_path / 'in' / 'b.mp4'}: not a readable video") for line in err)


@pytest.mark.parametrize("given, expected", [
    (["ckpt_path=null"], "no checkpoint given"),
    (["ckpt_path=nowhere/last.ckpt"], "does not exist"),
    (["overlay_alpha=2"], "overlay_alpha=2 must be between 0"),
    (["device=bogus"], "device=bogus is not a device"),
    (["device=cuda:7"], "device=cuda:7: this machine has no such GPU"),
])
def test_a_bad_checkpoint_or_option_is_one_line(tmp_path, student_run, capsys, monkeypatch, given, expected):
    monkeypatch.delenv("SEGKD_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    write_png(tmp_path / "in" / "a.png", random_image(np.random.default_rng(3), (32, 64)))
    with pytest.raises(SystemExit) as exit_info, errors_in_one_line():
        predict(predict_cfg(tmp_path, f"ckpt_path={student_run['last_checkpoint']}", f"input={tmp_path / 'in'}",
                            *given))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("segkd: error: ") and expected in err, err
    assert not (tmp_path / "run" / "masks").exists(), "refused before any prediction"


def test_inputs_that_differ_only_in_their_suffix_write_outputs_of_their_own(tmp_path):
    from segkd.inference.sources import find_inputs

    rng = np.random.default_rng(2)
    write_png(tmp_path / "in" / "img.png", random_image(rng, (32, 64)))
    write_png(tmp_path / "in" / "img.jpg", random_image(rng, (32, 64)))
    write_png(tmp_path / "in" / "other.png", random_image(rng, (32, 64)))
    (tmp_path / "in" / "drive.mp4").write_bytes(b"x")
    (tmp_path / "in" / "drive.avi").write_bytes(b"x")
    names = sorted(item.name for item in find_inputs(tmp_path / "in"))
    assert names == ["drive_avi", "drive_mp4", "img_jpg", "img_png", "other"]
    assert sorted(i.name for i in find_inputs(f"{tmp_path / 'in'}/img.*")) == ["img_jpg", "img_png"]


def test_a_truncated_jpeg_is_skipped_by_name(tmp_path, student_run, capsys):
    rng = np.random.default_rng(3)
    inputs = tmp_path / "in"
    inputs.mkdir()
    assert cv2.imwrite(str(inputs / "whole.jpg"), random_image(rng, (48, 80)))
    assert cv2.imwrite(str(inputs / "cut.jpg"), random_image(rng, (48, 80)))
    data = (inputs / "cut.jpg").read_bytes()
    (inputs / "cut.jpg").write_bytes(data[: len(data) // 3])
    summary = predict(predict_cfg(tmp_path, f"ckpt_path={student_run['last_checkpoint']}", f"input={inputs}"))
    assert summary["images"] == 1 and [s["path"] for s in summary["skipped"]] == [str(inputs / "cut.jpg")]
    assert f"skipped {inputs / 'cut.jpg'}: not a readable image" in capsys.readouterr().err
