"""Distillation losses: one file each, each with a YAML of the same name in conf/distill_loss/.

Every loss is an nn.Module whose ``forward`` names the tensors it reads (``student``, ``teacher``,
optionally ``target``); a paradigm maps those names to sources, and the mapping is checked against
the signature when the system is built.
"""
