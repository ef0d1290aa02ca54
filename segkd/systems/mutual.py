"""Online mutual distillation (Deep Mutual Learning, Zhang et al. 2018): networks learn together."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Any, Iterator, Optional, Sequence

import torch
from hydra.utils import instantiate
from torch import Tensor, nn

from segkd.config import to_plain
from segkd.distill.distiller import Distiller
from segkd.metrics import NetScores
from segkd.models import build_net, measure_complexity
from segkd.models.checkpoint import MAIN_NET
from segkd.systems.base import SystemBase
from segkd.systems.optim import batches_seen


def pair(student: str, peer: str) -> str:
    return f"{student}_from_{peer}"


class MutualLearningSystem(SystemBase):
    """``net`` and its ``peers`` each learn from the labels and from the others.

    Network i minimises ``supervised * CE_i + distill * mean_j D(i <- j)``, where ``D(i <- j)`` is the
    weighted sum of the ``distill`` terms with roles ``student`` (i) and ``teacher`` (j, detached): the
    terms are a distillation paradigm as offline KD reads it (``distill_paradigm=cwd``, ``=decoder``:
    the same YAMLs), checked against each loss's signature when the system is built, so any loss of
    the library can link peers, feature terms included (their connectors belong to the learning
    network i).

    One optimizer with a parameter group per network, and Lightning's automatic optimization: one
    optimizer step per batch, so ``global_step``, ``trainer.max_steps``, step-based schedule periods
    and the LR schedule all count batches, and gradient clipping and accumulation work as in every
    other system. All losses go through one backward pass: every peer term is detached, so the
    gradient of the sum with respect to network i is exactly the gradient of loss i, and DDP sees
    every parameter used in every step.

    When the schedule updates one network at a time (``loss_schedule=alternating_network``), the idle
    network runs in eval mode for that batch: it teaches like a frozen teacher, its BatchNorm
    statistics do not move, and its gradients are dropped before the step (AdamW leaves parameters
    without a gradient untouched: no moment update, no weight decay). The learning rate follows the
    run's batch count for every network alike, so an idle phase does not postpone a network's decay.

    ``val/mIoU`` is the first network's (``net``, the student of interest); peers log under
    ``val/<name>/`` and are saved as ``peers.<name>.*``.
    """

    job_type = "mutual"

    def __init__(
        self,
        net: dict[str, Any],
        peers: dict[str, dict[str, Any]],
        class_names: Sequence[str],
        loss: dict[str, Any],
        distill: dict[str, Any],
        optimizer: dict[str, Any],
        schedule: dict[str, Any],
        scheduler: Optional[dict[str, Any]] = None,
        ignore_index: int = 255,
        probe_size: Sequence[int] = (64, 64),
    ) -> None:
        peers, distill, schedule = (to_plain(x) for x in (peers, distill, schedule))
        if not peers:
            raise ValueError("mutual learning needs at least one peer network: set system.peers.<name>=<model spec>")
        if MAIN_NET in peers:
            raise ValueError(f"'{MAIN_NET}' names the first network; give the peers other names")
        super().__init__(net, class_names, loss, optimizer, scheduler, ignore_index)
        self.peers = nn.ModuleDict({name: build_net(spec) for name, spec in peers.items()})
        for name in self.peers:
            self.scores_of[name] = NetScores(list(class_names), ignore_index)
        nets = self.scored_nets()
        terms = distill.get("terms") or {}
        self.distillers = nn.ModuleDict({
            pair(i, j): Distiller(terms, {"student": nets[i], "teacher": nets[j]}, list(probe_size),
                                  size_key="dataset.crop_size")
            for i in nets for j in nets if i != j
        })
        self.schedule = instantiate(schedule)
        self._idle: list[str] = []

    def scored_nets(self) -> dict[str, nn.Module]:
        return {MAIN_NET: self.net, **self.peers}

    def forward_gmacs(self, input_size: Sequence[int]) -> dict[str, dict[str, float]]:
        """Every network is trained (an idle one of an alternating schedule still runs its backward
        pass, so that DDP sees its parameters used), and so is every pair's distillation terms."""
        nets = self.scored_nets()
        trained = {name: measure_complexity(net, input_size)["gmacs"] for name, net in nets.items()}
        trained["distill_terms"] = sum(
            self.distillers[pair(i, j)].terms_gmacs({"student": nets[i], "teacher": nets[j]}, input_size)
            for i in nets for j in nets if i != j)
        return {"trained": trained, "frozen": {}}

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        images, target = batch["image"], batch["mask"]
        phase = self.schedule(batches_seen(self.trainer, batch_idx), self.current_epoch)
        nets = self.scored_nets()
        names = list(nets)
        self._idle = [] if phase.update is None else [n for k, n in enumerate(names) if k != phase.update % len(names)]
        with self._idle_in_eval_mode(nets), self._recording():
            logits = {name: net(images) for name, net in nets.items()}
        losses, logs = {}, {}
        for i in names:
            supervised = self.criterion(logits[i], target)
            per_peer = []
            for j in names:
                if j == i:
                    continue
                distiller = self.distillers[pair(i, j)]
                values = distiller({"student": logits[i], "teacher": logits[j]}, target)
                per_peer.append(sum(distiller.weighted(values).values(), torch.zeros((), device=self.device)))
                logs.update({f"train/{i}/kd/{name}" + (f"/{j}" if len(names) > 2 else ""): v for name, v in values.items()})
            distill = sum(per_peer) / len(per_peer)
            losses[i] = phase.supervised * supervised + phase.distill * distill
            logs.update({f"train/{i}/supervised": supervised, f"train/{i}/distill": distill})
        total = sum(losses.values())

        n = len(images)
        self.log("train/loss", total, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True, batch_size=n)
        self.log_dict(logs, on_step=False, on_epoch=True, sync_dist=True, batch_size=n)
        self.log_dict(
            {"schedule/supervised": phase.supervised, "schedule/distill": phase.distill,
             "schedule/updating": float(-1 if phase.update is None else phase.update)},
            on_step=True,
        )
        return total

    def _recording(self) -> ExitStack:
        stack = ExitStack()
        for distiller in self.distillers.values():
            stack.enter_context(distiller.record())
        return stack

    @contextmanager
    def _idle_in_eval_mode(self, nets: dict[str, nn.Module]) -> Iterator[None]:
        for name in self._idle:
            nets[name].eval()
        try:
            yield
        finally:
            for name in self._idle:
                nets[name].train()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Idle networks computed gradients (so that DDP saw every parameter used); they are dropped here.
        for group in optimizer.param_groups:
            if group.get("network") in self._idle:
                for p in group["params"]:
                    p.grad = None

    def configure_optimizers(self) -> Any:
        nets = self.scored_nets()
        groups = []
        for name, net in nets.items():
            connectors = [self.distillers[pair(name, j)].parameters() for j in nets if j != name]
            params = [*net.parameters(), *(p for c in connectors for p in c)]
            groups.append({"params": [p for p in params if p.requires_grad], "network": name})
        return self.optimizer_over(groups)
