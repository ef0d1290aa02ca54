"""The maths of softmax distributions that losses and metrics share: tempered log-probabilities, KL,
entropy and the mass off the argmax.

Written once so that a distillation loss, the confidence penalty and the uncertainty metrics cannot
drift apart in how they compute the same quantity. Every function keeps the reduction over classes
(``dim``) and leaves the reduction over pixels, and any T² factor, to its caller.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def tempered_log_softmax(logits: Tensor, temperature: float = 1.0, dim: int = 1) -> Tensor:
    """log softmax(logits / T): a temperature above 1 flattens the distribution."""
    if temperature != 1.0:  # at T = 1 skip the division, and the full-size copy it would make
        logits = logits / temperature
    return F.log_softmax(logits, dim=dim)


def softmax_kl(p_logits: Tensor, q_logits: Tensor, temperature: float = 1.0, dim: int = 1) -> Tensor:
    """KL(softmax(p / T) || softmax(q / T)) at each position, without the T² factor.

    From log-probabilities on both sides, which stays finite where a probability underflows to 0.
    """
    log_p = tempered_log_softmax(p_logits, temperature, dim)
    log_q = tempered_log_softmax(q_logits, temperature, dim)
    return (log_p.exp() * (log_p - log_q)).sum(dim=dim)


def entropy(log_p: Tensor, dim: int = 1) -> Tensor:
    """Entropy (nats) at each position, from log-probabilities, so one log_softmax serves several statistics."""
    return -(log_p.exp() * log_p).sum(dim=dim)


def off_argmax_mass(log_p: Tensor, dim: int = 1) -> Tensor:
    """1 - the largest probability at each position: what the distribution says beyond its argmax."""
    return 1.0 - log_p.amax(dim=dim).exp()
