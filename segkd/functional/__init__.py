"""Maths several packages share (losses, distillation losses, metrics, visuals), below all of them: it
imports no other segkd module, so that a metric computing a teacher's entropy and the loss that
rewards it use one definition without a metric importing a loss."""
