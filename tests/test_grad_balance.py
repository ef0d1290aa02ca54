"""GradientBalance: each term's gradient norm on the student, relative to the supervised term's."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn

from segkd.callbacks import GradientBalance
from segkd.train import train


class TwoTerms(L.LightningModule):
    """A real (tiny) system whose second term is exactly 3x its supervised loss: the ratio must be 3."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        supervised = self.net(batch[0]).pow(2).mean()
        self.loss_terms = {"supervised": supervised, "triple": 3.0 * supervised, "frozen": torch.ones(())}
        return supervised

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_ratio_of_a_term_three_times_the_supervised_one_is_three():
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(12, 4)), batch_size=4)
    balance = GradientBalance(steps=2)
    trainer = L.Trainer(max_steps=3, callbacks=[balance], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(TwoTerms(), data)
    assert balance.ratios["triple"] == pytest.approx([3.0, 3.0]), "measured for the first 2 steps only"
    assert "frozen" not in balance.ratios, "a term without gradient is skipped"
    assert balance.summary() == pytest.approx({"triple": 3.0})


def test_kd_run_records_each_terms_balance(make_cfg, teacher_ckpt):
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "distill_paradigm=logits_decoder",
                   "trainer.limit_train_batches=3")
    ratios = train(cfg)["grad_ratio"]
    assert set(ratios) == {"logits", "dec2"}
    assert all(0 < r < float("inf") for r in ratios.values())
