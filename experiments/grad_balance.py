"""How hard each distillation term pulls on the student at the start of training, per paradigm.

    .venv/bin/python experiments/grad_balance.py TEACHER_CKPT [--steps 20] [--variants default,...] [-- OVERRIDE ...]

Runs every paradigm for the first ``--steps`` steps of a KD run and prints the median of
||grad of weight x term|| / ||grad of cross-entropy|| on the student's parameters
(segkd.callbacks.GradientBalance, also in each run's summary.json under grad_ratio). A variant is
a named list of overrides, so a weight or a normalisation can be compared with the default.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from segkd.config import compose_train_config
from segkd.train import train

PARADIGMS = ["logits", "cwd", "pairwise", "encoder", "bottleneck", "decoder", "logits_decoder"]
#: name -> (paradigms it applies to, overrides)
VARIANTS = {
    "default": (PARADIGMS, []),
    "raw_mse": (["encoder", "bottleneck", "decoder", "logits_decoder"],
                [f"distill_paradigm.terms.{t}.loss.normalize=false" for t in ("enc2", "enc3", "enc4")]),
}


def overrides_for(paradigm: str, variant: list[str]) -> list[str]:
    """A variant's term overrides that exist in this paradigm (unknown keys would fail to compose)."""
    terms = {
        "encoder": ("enc2", "enc3", "enc4"), "bottleneck": ("bottleneck",), "decoder": ("dec1", "dec2", "dec3"),
        "logits_decoder": ("dec2",),
    }.get(paradigm, ())
    out = []
    for o in variant:
        if ".terms." in o:
            key, value = o.split("=", 1)
            suffix = key.split(".terms.", 1)[1].split(".", 1)[1]
            out += [f"distill_paradigm.terms.{t}.{suffix}={value}" for t in terms]
        else:
            out.append(o)
    return list(dict.fromkeys(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--variants", default="default,raw_mse")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="segkd-grad-"))
    rows = []
    for variant in args.variants.split(","):
        paradigms, extra = VARIANTS[variant]
        for paradigm in paradigms:
            cfg = compose_train_config(
                ["+experiment=offline_kd", f"teacher_ckpt={args.teacher}", f"distill_paradigm={paradigm}",
                 *overrides_for(paradigm, extra), "trainer.max_epochs=1", f"trainer.limit_train_batches={args.steps}",
                 "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
                 f"callbacks.grad_balance.steps={args.steps}", *args.overrides],
                work / f"{variant}-{paradigm}",
            )
            ratios = train(cfg)["grad_ratio"]
            rows.append((variant, paradigm, ratios))
    print(f"\nmedian over the first {args.steps} steps of ||grad(weight x term)|| / ||grad(CE)|| on the student")
    print("| variant | paradigm | term: ratio |")
    print("|---|---|---|")
    for variant, paradigm, ratios in rows:
        print(f"| {variant} | {paradigm} | {', '.join(f'{t}: {r:.2f}' for t, r in ratios.items())} |")


if __name__ == "__main__":
    main()
