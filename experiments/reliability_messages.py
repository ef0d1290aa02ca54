"""Print the one line a user sees for each bad input of docs/RELIABILITY.md, as Markdown rows.

    .venv/bin/python experiments/reliability_messages.py [--out outputs/reliability]

Each case is the command line's overrides, run in this process through the same path as
``python -m segkd.run`` (config composed by Hydra, ``segkd.runtime.errors.errors_in_one_line``), on a tiny
SynthStreets and a tiny teacher written under --out, so the table is made in about a minute. The
second table does the same for ``python -m segkd.evaluate`` and ``python -m segkd.predict`` (their
own configs, the same ``errors_in_one_line``), on the same data and teacher and a few files written
under --out. Paths in the messages are shortened to ``<out>``. The tests named in RELIABILITY.md are
what hold these behaviours; this script only shows their words.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from segkd.config import compose_config, compose_train_config
from segkd.evaluate import evaluate
from segkd.models.checkpoint import with_classes
from segkd.predict import predict
from segkd.runtime.errors import errors_in_one_line
from segkd.train import train

TINY = ["dataset.prepare.num_train=16", "dataset.prepare.num_val=5", "dataset.prepare.height=64",
        "dataset.prepare.width=128", "dataset.crop_size=[64,64]", "dataset.batch_size=4", "dataset.val_batch_size=4",
        "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "trainer.num_sanity_val_steps=0", "logger=csv"]


DEBUG_HINT = " (SEGKD_DEBUG=1 shows the traceback)"
#: segkd.evaluate on the tiny SynthStreets the teacher trained on (its own dataset and trainer overrides).
EVAL_TINY = [o for o in TINY if o.startswith("dataset.prepare.")] + ["trainer.enable_progress_bar=false",
                                                                      "trainer.enable_model_summary=false"]
INFERENCE = {"segkd.evaluate": ("evaluate", evaluate, EVAL_TINY), "segkd.predict": ("predict", predict, [])}


def segkd_lines(job: Callable[[], object]) -> tuple[list[str], object]:
    """What ``job`` wrote on stderr as segkd (its error, files it skipped), run as the commands run it,
    and what it returned (None when it failed)."""
    stderr, result = io.StringIO(), None
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            with errors_in_one_line():
                result = job()
        except SystemExit:
            pass
    return [line for line in stderr.getvalue().splitlines() if line.startswith("segkd: ")], result


def run(overrides: list[str], out: Path, name: str) -> str:
    """The run's last line on stderr (the error), or 'trained' when it did not fail."""
    tiny = [o for o in TINY if not o.startswith("dataset.prepare.")] if "dataset=cityscapes" in overrides else TINY
    cfg = compose_train_config([*tiny, *overrides, f"paths.cache_dir={out / 'cache'}"], out / "runs" / name)
    lines, _ = segkd_lines(lambda: train(cfg))
    lines = [line for line in lines if line.startswith("segkd: error:")]
    return lines[-1].removeprefix("segkd: error: ").replace(DEBUG_HINT, "") if lines else "trained"


def run_inference(command: str, overrides: list[str], out: Path, name: str) -> str:
    """Every line segkd.evaluate or segkd.predict wrote on stderr (files skipped, then the error), joined by
    <br>; after a run that did not fail, how many images it wrote."""
    config_name, job, tiny = INFERENCE[command]
    other_data = any(o.startswith("dataset=") for o in overrides)
    tiny = [o for o in tiny if not (other_data and o.startswith("dataset.prepare."))]
    cfg = compose_config(config_name, [*tiny, *overrides, f"paths.cache_dir={out / 'cache'}"], out / "runs" / name)
    lines, result = segkd_lines(lambda: job(cfg))
    shown = [line.replace(DEBUG_HINT, "") for line in lines]
    if result is not None:
        shown.append(f"(exit status 0; {result['images']} image(s) written)")
    return "<br>".join(shown)


def inference_cases(out: Path, teacher: Path) -> list[tuple[str, str, list[str], str]]:
    """(case, command, overrides, the test that holds it) for segkd.evaluate and segkd.predict, and the
    files they read, written under ``out``."""
    with_classes(teacher, 20, out / "classes20.ckpt")
    images = out / "predict_in"
    (images / "mixed").mkdir(parents=True)
    picture = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    assert cv2.imwrite(str(images / "mixed" / "a.png"), picture)
    (images / "mixed" / "broken.png").write_bytes(b"not a png")
    (images / "mixed" / "notes.txt").write_text("not an image, not looked at")
    (images / "unreadable").mkdir()
    (images / "unreadable" / "a.png").write_bytes(b"")
    (images / "unreadable" / "b.mp4").write_bytes(b"not a video")
    (images / "no_images").mkdir()
    (images / "no_images" / "notes.txt").write_text("no image, no video")

    ckpt = f"ckpt_path={teacher}"
    mixed = f"input={images / 'mixed'}"
    e, p = "test_evaluate::", "test_predict::"
    bad_ckpt = f"{e}test_a_bad_checkpoint_is_one_line_naming_it"
    bad_option = f"{e}test_a_bad_inference_option_is_one_line_naming_the_key"
    predict_input = f"{p}test_input_errors_are_one_line"
    return [
        ("no ckpt_path", "segkd.evaluate", [], bad_ckpt),
        ("checkpoint missing", "segkd.evaluate", [f"ckpt_path={out / 'nope.ckpt'}"], bad_ckpt),
        ("checkpoint is a directory", "segkd.evaluate", [f"ckpt_path={out / 'a_dir'}"], bad_ckpt),
        ("checkpoint empty file", "segkd.evaluate", [f"ckpt_path={out / 'empty.ckpt'}"], bad_ckpt),
        ("checkpoint truncated file", "segkd.evaluate", [f"ckpt_path={out / 'truncated.ckpt'}"], bad_ckpt),
        ("checkpoint foreign file", "segkd.evaluate", [f"ckpt_path={out / 'foreign.ckpt'}"], bad_ckpt),
        ("a network the checkpoint does not hold", "segkd.evaluate", [ckpt, "net=peer"], bad_ckpt),
        ("a checkpoint for another number of classes", "segkd.evaluate", [f"ckpt_path={out / 'classes20.ckpt'}"],
         f"{e}test_a_checkpoint_for_another_number_of_classes_is_one_line"),
        ("missing dataset root", "segkd.evaluate", [ckpt, "dataset=cityscapes", "dataset.root=/data/nope"],
         f"{e}test_a_missing_dataset_root_is_one_line_naming_it"),
        ("a split the dataset does not have", "segkd.evaluate", [ckpt, "split=test"],
         f"{e}test_a_split_the_dataset_does_not_have_is_one_line"),
        ("unknown inference mode", "segkd.evaluate", [ckpt, "mode=bogus"], bad_option),
        ("window that is not a size", "segkd.evaluate", [ckpt, "mode=slide", "window=[0,64]"], bad_option),
        ("stride larger than the window", "segkd.evaluate", [ckpt, "mode=slide", "window=[32,64]", "stride=[48,64]"],
         bad_option),
        ("TTA scale <= 0", "segkd.evaluate", [ckpt, "tta.scales=[0]"], bad_option),
        ("overlay weight outside 0..1", "segkd.evaluate", [ckpt, "save_overlays=true", "overlay_alpha=2"], bad_option),
        ("batch size < 1", "segkd.evaluate", [ckpt, "batch_size=0"], bad_option),
        ("no ckpt_path", "segkd.predict", [mixed], f"{p}test_a_bad_checkpoint_or_option_is_one_line"),
        ("no input", "segkd.predict", [ckpt], predict_input),
        ("input does not exist", "segkd.predict", [ckpt, f"input={out / 'nowhere'}"], predict_input),
        ("input folder without image or video files", "segkd.predict", [ckpt, f"input={images / 'no_images'}"],
         predict_input),
        ("input pattern matching no files", "segkd.predict", [ckpt, f"input={images / 'mixed' / '*.jpg'}"],
         predict_input),
        ("no input readable (an empty .png, a .mp4 that is no video)", "segkd.predict",
         [ckpt, f"input={images / 'unreadable'}"], predict_input),
        ("an unreadable file among readable ones (skipped by name)", "segkd.predict", [ckpt, mixed],
         f"{p}test_images_of_a_folder_become_masks_and_overlays_and_an_unreadable_one_is_skipped"),
        ("overlay weight outside 0..1", "segkd.predict", [ckpt, mixed, "overlay_alpha=2"],
         f"{p}test_a_bad_checkpoint_or_option_is_one_line"),
        ("a device this machine does not have", "segkd.predict", [ckpt, mixed, "device=cuda:7"],
         f"{p}test_a_bad_checkpoint_or_option_is_one_line"),
    ]


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
    print_train_table(out, teacher)
    print()
    print_inference_table(out, teacher)


def print_train_table(out: Path, teacher: Path) -> None:
    kd = ["+experiment=offline_kd", f"teacher_ckpt={teacher}"]
    cases = [  # (case, overrides, the test that holds it)
        ("missing dataset root", ["dataset=cityscapes", "dataset.root=/data/nope"],
         "test_datasets::test_missing_root_names_the_setting"),
        ("wrong layout", ["dataset=cityscapes", f"dataset.root={out / 'a_dir'}"],
         "test_datasets::test_wrong_layout_names_the_expected_layout"),
        ("fewer train images than one batch", ["dataset.prepare.num_train=3"],
         "test_data_guards::test_too_few_train_images_for_one_batch_fails_the_run"),
        ("batch size < 1", ["dataset.batch_size=0"], "test_data_guards::test_batch_sizes_below_one_are_refused"),
        ("crop far larger than every image", ["dataset.crop_size=[512,1024]", "dataset.scale_range=[0.5,1.25]"],
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
        ("paradigm of UNet blocks on another architecture", [*kd, "model=student_segformer_b0", "distill_paradigm=decoder"],
         "test_architectures::test_matrix"),
        ("train crop the network cannot take", ["model=student_segformer_b0", "dataset.crop_size=[48,100]"],
         "test_architectures::test_a_crop_the_network_cannot_take_is_one_line"),
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
        ("a paradigm on a run that does not distil (issue 29 #1)", ["distill_paradigm=cwd"],
         "test_distill::test_a_paradigm_on_a_run_that_does_not_distil_is_refused_in_one_line"),
        ("negative or non-finite term weight (#2)", [*kd, "distill_paradigm=cwd", "distill_paradigm.terms.cwd.weight=-1"],
         "test_distill::test_bad_distillation_numbers_are_refused_at_build_time_naming_the_key_typed"),
        ("a loss's own refusal, with its key (#2, #23)", [*kd, "distill_paradigm=cwd", "distill_paradigm.terms.cwd.loss.tau=0"],
         "test_distill::test_bad_distillation_numbers_are_refused_at_build_time_naming_the_key_typed"),
        ("teacher scale 0 or below (#3, #23)", [*kd, "teacher_scale=0"],
         "test_distill::test_bad_distillation_numbers_are_refused_at_build_time_naming_the_key_typed"),
        ("an argument the optimizer does not take (#9)", ["+system.optimizer.lrr=1"],
         "test_errors::test_invalid_values_are_refused_naming_the_key"),
        ("a number given as a word (#10)", ["system.optimizer.lr=abc"],
         "test_errors::test_invalid_values_are_refused_naming_the_key"),
        ("nothing would train (#11)", ["trainer.max_epochs=0"], "test_errors::test_invalid_values_are_refused_naming_the_key"),
    ]
    print("| case | overrides | what the user sees | test |\n|---|---|---|---|")
    for i, (case, overrides, test) in enumerate(cases):
        message = run(overrides, out, f"case{i}").replace(str(out), "<out>")
        shown = " ".join(o.replace(str(out), "<out>") for o in overrides if o not in kd or o.startswith("+experiment"))
        print(f"| {case} | `{shown}` | {message} | `{test}` |", flush=True)


def print_inference_table(out: Path, teacher: Path) -> None:
    print("| case | command line | what the user sees (stderr) | test |\n|---|---|---|---|")
    for i, (case, command, overrides, test) in enumerate(inference_cases(out, teacher)):
        message = run_inference(command, overrides, out, f"inference{i}").replace(str(out), "<out>")
        shown = " ".join([command, *(o.replace(str(out), "<out>") for o in overrides)])
        print(f"| {case} | `{shown}` | {message} | `{test}` |", flush=True)


if __name__ == "__main__":
    main()
