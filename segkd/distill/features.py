"""Capturing intermediate tensors with forward hooks named by module path.

A feature reference is ``"<module path>"`` (e.g. ``decoder.blocks.2``) or ``"<module path>#<k>"`` for
the k-th element of a module that returns a list; smp encoders return all their stage outputs from
``encoder``, so ``encoder#3`` is the third downsampling stage of any encoder family, and ``decoder`` the
decoder's output in any smp architecture (the references that mean the same place in every
architecture, and what a network lacks for one: segkd.models.roles); ``<path>@<n>`` picks the n-th
call of a module that runs more than once per pass. The networks' code is never
edited: a recorder holds the hooks, and forgets its tensors at every ``record()``.
"""

from __future__ import annotations

import difflib
from contextlib import contextmanager
from typing import Iterator, Sequence

from torch import Tensor, nn

from segkd.models.roles import parse_ref

__all__ = ["FeatureRecorder", "parse_ref", "resolve_module"]


def resolve_module(net: nn.Module, path: str, owner: str = "net") -> nn.Module:
    """The submodule at ``path``, or an error that lists the valid paths closest to it."""
    modules = dict(net.named_modules())
    if path in modules and path != "":
        return modules[path]
    names = [n for n in modules if n]
    near = difflib.get_close_matches(path, names, n=8, cutoff=0.5)
    parent = path.rpartition(".")[0]
    siblings = [n for n in names if n.rpartition(".")[0] == parent][:8] if parent in modules else []
    hint = near or siblings or [n for n in names if "." not in n]
    raise ValueError(f"unknown module path '{path}' in the {owner}; valid paths near it: {hint}")


class FeatureRecorder:
    """Forward hooks on one network that keep the outputs of each referenced module during ``record()``.

    Outside ``record()`` the hooks keep nothing, so validation and inference hold no extra tensors.
    A module that runs more than once in a recorded pass keeps every call: ``path@n`` picks the
    n-th (as mmrazor's recorders do); a bare ``path`` then is an error that names the calls, never
    silently the last one.
    """

    def __init__(self, net: nn.Module, refs: Sequence[str], owner: str = "net") -> None:
        self.refs = list(dict.fromkeys(refs))
        self.owner = owner
        self.outputs: dict[str, list] = {}
        self._active = False
        self._handles = []
        for path in dict.fromkeys(parse_ref(r)[0] for r in self.refs):
            module = resolve_module(net, path, owner)
            self._handles.append(module.register_forward_hook(self._hook(path)))

    def _hook(self, path: str):
        def hook(module: nn.Module, args, output) -> None:
            if self._active:
                self.outputs.setdefault(path, []).append(output)

        return hook

    @contextmanager
    def record(self) -> Iterator["FeatureRecorder"]:
        """Empty the buffer and keep what the forward passes inside produce; read it before the next one."""
        self.outputs.clear()
        self._active = True
        try:
            yield self
        finally:
            self._active = False

    def get(self, ref: str) -> Tensor:
        path, call, index = parse_ref(ref)
        calls = self.outputs.get(path)
        if not calls:
            raise RuntimeError(f"{self.owner}: '{path}' did not run in the last recorded forward pass")
        if call is None:
            if len(calls) > 1:
                raise ValueError(
                    f"{self.owner}: '{path}' ran {len(calls)} times in one forward pass; pick a call with "
                    f"'{path}@<n>' (0..{len(calls) - 1})"
                )
            call = 0
        if not 0 <= call < len(calls):
            raise ValueError(f"{self.owner}: '{ref}' asks for call {call} of a module that ran {len(calls)} time(s)")
        output = calls[call]
        if index is None:
            if not isinstance(output, Tensor):
                raise ValueError(
                    f"{self.owner}: '{path}' returns {type(output).__name__} of {len(output)} tensors; "
                    f"pick one with '{path}#<index>' (0..{len(output) - 1})"
                )
            return output
        if isinstance(output, Tensor) or not 0 <= index < len(output):
            size = 1 if isinstance(output, Tensor) else len(output)
            raise ValueError(f"{self.owner}: '{ref}' indexes an output with {size} element(s)")
        return output[index]

    def features(self) -> dict[str, Tensor]:
        return {ref: self.get(ref) for ref in self.refs}

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
