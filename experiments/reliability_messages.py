"""Print the one line a user sees for each bad input of docs/RELIABILITY.md, as Markdown rows.

    .venv/bin/python experiments/reliability_messages.py [--out outputs/reliability]

Each case is the command line's overrides, run in this process through the same path as
``python -m segkd.run`` (config composed by Hydra, ``segkd.errors.errors_in_one_line``), on a tiny
SynthStreets and a tiny teacher written under --out, so the table is made in about a minute. Paths
in the messages are shortened to ``<out>``. The tests named in RELIABILITY.md are what hold these
behaviours; this script only shows their words.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
from pathlib import Path

import torch

from segkd.config import compose_train_config
from segkd.errors import errors_in_one_line
from segkd.train import train

TINY = ["dataset.prepare.num_train=16", "dataset.prepare.num_val=5", "dataset.prepare.height=64",
        "dataset.prepare.width=128", "dataset.crop_size=[64,64]", "dataset.batch_size=4", "dataset.val_batch_size=4",
        "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "trainer.num_sanity_val_steps=0", "logger=csv"]


def run(overrides: list[str], out: Path, name: str) -> str:
    """The run's last line on stderr (the error), or 'trained' when it did not fail."""
    tiny = [o for o in TINY if not o.startswith("dataset.prepare.")] if "dataset=cityscapes" in overrides else TINY
    cfg = compose_train_config([*tiny, *overrides, f"paths.cache_dir={out / 'cache'}"], out / "runs" / name)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            with errors_in_one_line():
                train(cfg)
        except SystemExit:
            pass
    lines = [line for line in stderr.getvalue().splitlines() if line.startswith("segkd: error:")]
    return lines[-1].removeprefix("segkd: error: ").replace(" (SEGKD_DEBUG=1 shows the traceback)", "") if lines else "trained"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/reliability")
    out = Path(parser.parse_args().out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    logging.disable(logging.WARNING)

    with contextlib.redirect_stdout(io.StringIO()):
        teacher = Path(train(compose_train_config(
            [*TINY, "+experiment=teacher", f"paths.cache_dir={out / 'cache'}"], out / "runs" / "teacher"))["last_checkpoint"])
    (out / "a_dir").mkdir()
    (out / "empty.ckpt").write_bytes(b"")
    (out / "truncated.ckpt").write_bytes(teacher.read_bytes()[:5000])
    torch.save({"state_dict": {"weight": torch.ones(2)}}, out / "foreign.ckpt")
    kd = ["+experiment=offline_kd", f"teacher_ckpt={teacher}"]

    cases = [  # (case, overrides, the test that holds it)
        ("missing dataset root", ["dataset=cityscapes", "dataset.root=/data/nope"],
         "test_datasets::test_missing_root_names_the_setting"),
        ("wrong layout", ["dataset=cityscapes", f"dataset.root={out / 'a_dir'}"],
         "test_datasets::test_wrong_layout_names_the_expected_layout"),
        ("fewer train images than one batch", ["dataset.prepare.num_train=3"],
         "test_data_guards::test_too_few_train_images_for_one_batch_fails_the_run"),
        ("batch size < 1", ["dataset.batch_size=0"], "test_data_guards::test_batch_sizes_below_one_are_refused"),
        ("crop far larger than every image", ["dataset.crop_size=[512,1024]"],
         "test_data_guards::test_crop_mostly_padding_is_refused_a_little_larger_is_not"),
        ("empty val split", ["dataset.prepare.num_val=0"], "test_data_guards::test_empty_split_is_one_error_for_every_dataset"),
        ("unknown encoder", ["model.encoder_name=resnet999"],
         "test_errors::test_an_error_segkd_raised_becomes_one_line_and_exit_status_1"),
        ("learning rate <= 0", ["system.optimizer.lr=-0.01"], "test_errors::test_invalid_values_are_refused_naming_the_key"),
        ("unknown class weighting", ["system.loss.class_weighting=balanced"],
         "test_losses::test_bad_loss_options_fail_with_choices"),
        ("unknown hook path", [*kd, "distill_paradigm=decoder",
                               "distill_paradigm.terms.dec2.inputs.student=student:decoder.blokcs.2"],
         "test_distill::test_unknown_hook_path_fails_at_build_time_with_the_paths_near_it"),
        ("loss input the loss does not take", [*kd, "+distill_paradigm.terms.logits.inputs.labels=target"],
         "test_distill::test_loss_inputs_are_checked_against_forward_at_build_time"),
        ("teacher checkpoint missing", ["+experiment=offline_kd", f"teacher_ckpt={out / 'nope.ckpt'}"],
         "test_distill::test_teacher_checkpoint_that_does_not_match_its_config"),
        ("teacher checkpoint is a directory", ["+experiment=offline_kd", f"teacher_ckpt={out / 'a_dir'}"],
         "test_distill::test_teacher_checkpoint_that_does_not_match_its_config"),
        ("teacher checkpoint of another model", [*kd, "model@system.teacher.net=student_r18"],
         "test_distill::test_teacher_checkpoint_that_does_not_match_its_config"),
        ("cached teacher with a feature term", [*kd, "distill_paradigm=decoder", "teacher_cache=true"],
         "test_teacher_cache::test_cached_teacher_refuses_feature_terms"),
        ("ckpt_path is a directory", [f"ckpt_path={out / 'a_dir'}"],
         "test_checkpoint_errors::test_an_unreadable_ckpt_path_is_one_line"),
        ("ckpt_path empty file", [f"ckpt_path={out / 'empty.ckpt'}"],
         "test_checkpoint_errors::test_an_unreadable_ckpt_path_is_one_line"),
        ("ckpt_path truncated file", [f"ckpt_path={out / 'truncated.ckpt'}"],
         "test_checkpoint_errors::test_an_unreadable_ckpt_path_is_one_line"),
        ("ckpt_path foreign file", [f"ckpt_path={out / 'foreign.ckpt'}"],
         "test_checkpoint_errors::test_an_unreadable_ckpt_path_is_one_line"),
        ("ckpt_path of another model", [f"ckpt_path={teacher}"],
         "test_checkpoint_errors::test_a_checkpoint_of_another_model_names_each_differing_field"),
        ("ckpt_path of a single-network run for mutual learning", ["+experiment=online_dml", f"ckpt_path={teacher}"],
         "test_checkpoint_errors::test_a_single_network_checkpoint_is_not_a_mutual_learning_run_and_back"),
    ]
    print("| case | overrides | what the user sees | test |\n|---|---|---|---|")
    for i, (case, overrides, test) in enumerate(cases):
        message = run(overrides, out, f"case{i}").replace(str(out), "<out>")
        shown = " ".join(o.replace(str(out), "<out>") for o in overrides if o not in kd or o.startswith("+experiment"))
        print(f"| {case} | `{shown}` | {message} | `{test}` |", flush=True)


if __name__ == "__main__":
    main()
