"""Command line: ``python -m segkd.predict ckpt_path=PATH input=DIR_OR_FILE_OR_GLOB [output_dir=...]``

Runs one network of any segkd checkpoint on your own images or videos and writes what it sees, in
the Cityscapes palette, into ``output_dir`` (by default the run dir, outputs/predict/runs/<time>/):

- each image: ``masks/<name>.png`` (the colour-coded prediction) and ``overlays/<name>.png`` (blended
  over the image); ``<name>`` is the path below the input folder, so sub-folders are kept;
- each video: ``<name>_mask.mp4`` and ``<name>_overlay.mp4`` at the video's frame rate (mp4v), no
  frame files (``ffmpeg -i <name>_overlay.mp4 frames/%05d.png`` makes them if needed).

A file that cannot be read is reported by name on stderr and skipped; the others are still written.
The command fails (one line, exit status 1) only when no input could be read at all. Inference is
one image at a time on one device (``device=auto``: a GPU when there is one); the same whole/slide
and TTA options as segkd.evaluate apply.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig
from rich.console import Console

from segkd.config import command_line, to_plain
from segkd.inference import SegmentationPredictor
from segkd.inference.checkpoint import network_from
from segkd.inference.devices import resolve_device
from segkd.inference.prediction import VIDEO_CODEC, predict_inputs
from segkd.inference.sources import InputError, find_inputs
from segkd.runtime.errors import errors_in_one_line

__all__ = ["VIDEO_CODEC", "main", "predict"]


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    with errors_in_one_line():
        predict(cfg)


def predict(cfg: DictConfig) -> dict:
    """Predict every input, write masks and overlays, and return what was done (counts, skips, speed)."""
    net, _, ckpt_path = network_from(cfg.get("ckpt_path"), cfg.net)
    if not cfg.get("input"):
        raise InputError("no input given; set input=DIR (searched recursively), input='frames/*.png' or input=FILE")
    inputs = find_inputs(str(cfg.input))
    device = resolve_device(str(cfg.device))
    predictor = SegmentationPredictor(net, mode=cfg.mode, window=to_plain(cfg.window), stride=to_plain(cfg.stride),
                                      flip=cfg.tta.flip, scales=to_plain(cfg.tta.scales)).to(device).eval()
    output_dir = Path(cfg.output_dir)
    done = predict_inputs(predictor, inputs, device, output_dir, cfg.overlay_alpha)

    seconds, count = done["time_s"], done["images"] + done["frames"]
    summary = {
        "checkpoint": str(ckpt_path), "net": cfg.net, "inputs": len(inputs), "images": done["images"],
        "videos": done["videos"], "frames": done["frames"], "skipped": done["skipped"], "time_s": seconds,
        "images_per_s": count / seconds if count and seconds > 0 else None, "output_dir": str(output_dir),
    }
    if count == 0:
        raise InputError(f"none of the {len(inputs)} inputs could be read (each is listed above); nothing was written")
    Console().print(
        f"{done['images']} images" + (f" and {done['videos']} videos ({done['frames']} frames)" if done["videos"] else "")
        + f" in {seconds:.1f} s: {summary['images_per_s']:.2f} images/s on {device}"
        + (f"; {len(done['skipped'])} unreadable file(s) skipped" if done["skipped"] else "")
        + f"\nmasks and overlays in {output_dir}", highlight=False, markup=False,
    )
    return summary


if __name__ == "__main__":
    sys.argv = command_line("predict", sys.argv)
    main()
