"""A ckpt_path the run cannot resume from fails before fit, in one line naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from segkd.config import to_plain
from segkd.models.checkpoint import CheckpointError, check_resumable
from segkd.train import train


def _one_line_naming(err: pytest.ExceptionInfo, path) -> str:
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "ckpt_path" in message, message
    return message


def _rewritten(teacher_ckpt, path, **hparams):
    """The teacher checkpoint with some hyperparameters replaced: a checkpoint of another kind of run."""
    ckpt = torch.load(teacher_ckpt, map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"].update(hparams)
    torch.save(ckpt, path)
    return path


def test_a_checkpoint_of_another_model_names_each_differing_field(make_cfg, teacher_ckpt):
    with pytest.raises(CheckpointError) as err:
        train(make_cfg(f"ckpt_path={teacher_ckpt}"))  # a student_mnv2 run resuming the teacher_r34
    message = _one_line_naming(err, teacher_ckpt)
    assert "('net') is another model (encoder_name: checkpoint has 'resnet34', config says 'mobilenet_v2'" in message
    assert "decoder_channels: checkpoint has" in message


def test_a_single_network_checkpoint_is_not_a_mutual_learning_run_and_back(make_cfg, teacher_ckpt, tmp_path):
    cfg = make_cfg("+experiment=online_dml")
    student = _rewritten(teacher_ckpt, tmp_path / "student.ckpt", net=to_plain(cfg.model))
    with pytest.raises(CheckpointError) as err:
        train(make_cfg("+experiment=online_dml", f"ckpt_path={student}"))
    assert "holds the networks ['net'], this run trains ['net', 'peer']" in _one_line_naming(err, student)

    mutual = _rewritten(teacher_ckpt, tmp_path / "mutual.ckpt", peers={"peer": to_plain(cfg.model)})
    with pytest.raises(CheckpointError) as err:
        check_resumable(mutual, {"net": torch.load(teacher_ckpt, weights_only=True)["hyper_parameters"]["net"]})
    assert "holds the networks ['net', 'peer'], this run trains ['net']" in _one_line_naming(err, mutual)


def _empty(path, teacher_ckpt):
    path.write_bytes(b"")
    return path, "is empty (0 bytes)"


def _truncated(path, teacher_ckpt):
    path.write_bytes(teacher_ckpt.read_bytes()[:5000])
    return path, "cannot be read: truncated or not a torch checkpoint (5000 bytes; "


def _foreign(path, teacher_ckpt):
    torch.save({"state_dict": {"weight": torch.ones(2)}}, path)  # a torch checkpoint, not segkd's
    return path, "is not a segkd checkpoint (no network spec inside)"


def _not_torch(path, teacher_ckpt):
    path.write_text("not a checkpoint\n" * 20)
    return path, "cannot be read: truncated or not a torch checkpoint"


def _directory(path, teacher_ckpt):
    path.mkdir()
    return path, "is a directory; point ckpt_path at a .ckpt file inside it"


def _missing(path, teacher_ckpt):
    return path, "does not exist; ckpt_path must name a checkpoint of this experiment and model"


CASES = [_empty, _truncated, _foreign, _not_torch, _directory, _missing]


@pytest.mark.parametrize("case", CASES, ids=[case.__name__.strip("_") for case in CASES])
def test_an_unreadable_ckpt_path_is_one_line(teacher_ckpt, tmp_path, case):
    path, what = case(tmp_path / "run.ckpt", teacher_ckpt)
    hparams = torch.load(teacher_ckpt, weights_only=True)["hyper_parameters"]
    with pytest.raises((CheckpointError, FileNotFoundError)) as err:
        check_resumable(path, hparams)
    assert what in _one_line_naming(err, path)


def test_a_wrong_ckpt_path_fails_before_any_training(make_cfg, tmp_path):
    with pytest.raises(CheckpointError, match="is a directory; point ckpt_path at"):
        train(make_cfg(f"ckpt_path={tmp_path}"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_lightning_keywords_and_a_checkpoint_of_the_run_itself_pass(teacher_ckpt):
    hparams = torch.load(teacher_ckpt, weights_only=True)["hyper_parameters"]
    check_resumable(teacher_ckpt, hparams)
    for keyword in ("last", "best", "hpc", "registry:my-model", "s3://bucket/last.ckpt", None):
        check_resumable(keyword, hparams)


def test_with_classes_is_the_same_network_with_another_head(tmp_path):
    from conftest import write_net_checkpoint

    from segkd.models.checkpoint import load_net, with_classes

    source = write_net_checkpoint(tmp_path / "net.ckpt")
    net, spec = load_net(source)
    x = torch.randn(1, 3, 32, 64)
    with torch.no_grad():
        logits = net(x)
    for classes in (20, 5):
        other, other_spec = load_net(with_classes(str(source), classes, tmp_path / f"c{classes}.ckpt"))
        assert other_spec == {**spec, "classes": classes}
        with torch.no_grad():
            out = other(x)
        assert out.shape[1] == classes
        kept = min(classes, spec["classes"])
        assert torch.allclose(out[:, :kept], logits[:, :kept], atol=1e-5)  # the head's rows kept as they were
        if classes > spec["classes"]:
            assert torch.allclose(out[:, spec["classes"]:], logits[:, :1].expand(-1, classes - spec["classes"], -1, -1),
                                  atol=1e-5)  # padded with copies of the first row


def test_auto_resume_onto_a_truncated_last_checkpoint_gives_advice_that_works(make_cfg):
    """ckpt_path=null would pick the same file again: the advice is auto_resume=false, or the intact
    best checkpoint beside it."""
    cfg = make_cfg("trainer.limit_train_batches=1", "auto_resume=true")
    first = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    (run_dir / "summary.json").unlink()  # an interrupted run: checkpoints, no summary
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:5000])  # truncated, as a full disk or a kill mid-copy leaves it
    best = Path(first["best_checkpoint"])
    with pytest.raises(CheckpointError, match=rf"checkpoint {last} cannot be read.*picked by auto_resume; "
                                              rf"auto_resume=false starts the run over, or continue from the best "
                                              rf"checkpoint beside it with ckpt_path={best}"):
        train(cfg)
