"""What the teacher knows, shown once per distillation run: is this teacher worth learning from?"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import lightning as L
from lightning.pytorch import Callback

from segkd.callbacks.inspection import eval_mode, fixed_val_batch, networks_to_compare, save_and_log
from segkd.visual.knowledge import AGREEMENT_LEGEND, agreement_counts, teacher_maps
from segkd.visual.panels import knowledge_panels
from segkd.visual.report import draw_scores_report


class TeacherReport(Callback):
    """For a system with a teacher (offline KD), on rank 0:

    - when fitting starts, from the teacher's val scores (taken once when the system is set up, with
      calibration bins and per-class errors: they are also in summary.json under ``teacher``): its
      reliability diagram and per-class IoU / error chart as ``dirpath/teacher_report.png``, a W&B
      image, and its per-class errors as a W&B table; with several teachers that is the ensemble's
      (or the best teacher's, when each teaches on its own) and each teacher's own report is
      ``dirpath/teacher_report_<name>.png`` (summary.json: ``teachers``);
    - when fitting ends, on the first ``num_images`` val images: the teacher's entropy, off-argmax
      mass and where it and the trained student agree with the label, as
      ``dirpath/teacher_knowledge.png`` (and a W&B image); :attr:`agreement` counts the pixels.

    Other systems have no teacher and the callback does nothing for them.
    """

    def __init__(self, dirpath: str, num_images: int = 4) -> None:
        self.dirpath = Path(dirpath)
        self.num_images = num_images
        self.written: list[Path] = []
        self.agreement: Optional[dict[str, int]] = None

    @staticmethod
    def _teacher_scores(pl_module: L.LightningModule) -> Optional[dict]:
        scores = getattr(pl_module, "teacher_scores", None)
        return scores if scores and "reliability" in scores else None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        scores = self._teacher_scores(pl_module)
        if scores is None or not trainer.is_global_zero:
            return
        label = getattr(pl_module, "teacher_label", "teacher")
        path = draw_scores_report(scores, self.dirpath / "teacher_report.png",
                                  f"{label} on val · mIoU {100 * scores['mIoU']:.1f} · entropy {scores['entropy']:.2f} nats")
        self.written.append(path)
        # Several teachers: each one's report beside the ensemble's (or the best one's).
        for name, own in (getattr(pl_module, "teachers_scores", None) or {}).items():
            if own and "reliability" in own:
                self.written.append(draw_scores_report(
                    own, self.dirpath / f"teacher_report_{name}.png",
                    f"teacher '{name}' on val · mIoU {100 * own['mIoU']:.1f} · entropy {own['entropy']:.2f} nats"))
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key="teacher/report", images=[str(path)], step=trainer.global_step)
            if hasattr(logger, "log_table"):
                rows = [[name, scores["IoU"].get(name), e["miss_rate"], e["confused_with"], e["confused_share"]]
                        for name, e in scores["errors"].items()]
                logger.log_table(key="teacher/errors", columns=["class", "IoU", "miss_rate", "confused_with",
                                                                "confused_share"], data=rows)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._teacher_scores(pl_module) is None or not trainer.is_global_zero:
            return
        batch = fixed_val_batch(trainer, self.num_images)
        images, mask = batch["image"].to(pl_module.device), batch["mask"]
        with networks_to_compare(pl_module) as nets, eval_mode(list(nets.values())):
            teacher_logits = nets["teacher"](images).float().cpu()
            student_logits = nets["student"](images).float().cpu()
        ignore_index = pl_module.hparams.get("ignore_index", 255)
        self.agreement = agreement_counts(teacher_maps(teacher_logits, student_logits, mask, ignore_index)["agreement"])
        picture = knowledge_panels(teacher_logits, student_logits, mask, ignore_index)
        caption = f"teacher entropy | teacher off-argmax mass | agreement with the final student ({AGREEMENT_LEGEND})"
        self.written += save_and_log(trainer, {"teacher_knowledge": picture}, self.dirpath, "teacher",
                                     {"teacher_knowledge": caption})
