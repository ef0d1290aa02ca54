"""Small bridges between Hydra's config objects and what libraries and checkpoints accept."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


def to_plain(value: Any) -> Any:
    """Resolve a DictConfig/ListConfig into plain dicts and lists.

    Checkpoints are loaded with ``weights_only=True`` (torch >= 2.6), which refuses OmegaConf objects,
    and many libraries type-check for list/dict.
    """
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value
