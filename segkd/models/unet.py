"""UNets from segmentation-models-pytorch, built by name so a checkpoint can rebuild its own net
(every other smp architecture: segkd.models.architectures.build_smp).

Every net is ``encoder -> decoder -> segmentation_head``: stable module paths for feature hooks.
A student is sized by its encoder and decoder channels; nothing here downloads unless the config
opts in with ``encoder_weights``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import segmentation_models_pytorch as smp
from hydra.utils import instantiate
from torch import nn


def build_unet(
    encoder_name: str,
    classes: int,
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    encoder_depth: int = 5,
    encoder_weights: Optional[str] = None,
    in_channels: int = 3,
) -> nn.Module:
    """A UNet whose encoder is any smp encoder name (resnet34, mobilenet_v2, efficientnet-b0, ...) or
    ``tu-<timm model>``, smp's bridge to timm's backbones: the way to a width multiplier (e.g.
    ``tu-mobilenetv2_050``, half the channels of MobileNetV2), which smp's own encoders lack."""
    if len(decoder_channels) != encoder_depth:
        raise ValueError(
            f"decoder_channels has {len(decoder_channels)} entries but encoder_depth is {encoder_depth}; "
            "give one decoder width per encoder stage"
        )
    check_encoder_name(encoder_name)
    weights_file = encoder_weights if is_weights_file(encoder_weights) else None
    net = smp.create_model(
        "Unet",
        encoder_name=encoder_name,
        encoder_depth=encoder_depth,
        encoder_weights=None if weights_file else encoder_weights,
        decoder_channels=list(decoder_channels),
        in_channels=in_channels,
        classes=classes,
    )
    if weights_file:
        load_encoder_weights(net.encoder, weights_file, encoder_name)
    return net


def check_encoder_name(encoder_name: str) -> None:
    """An smp encoder name, or ``tu-<timm model>``; otherwise one error naming similar ones."""
    valid = smp.encoders.get_encoder_names()
    if encoder_name.startswith("tu-"):
        import timm

        if not timm.is_model(encoder_name[3:]):
            near = timm.list_models(f"*{encoder_name[3:].split('_')[0]}*")[:12]
            raise ValueError(f"unknown timm encoder '{encoder_name}'; timm models with a similar name: "
                             f"{['tu-' + n for n in near]} (timm.list_models() lists all)")
    elif encoder_name not in valid:
        near = [n for n in valid if encoder_name.split("-")[0].split("_")[0] in n][:12]
        raise ValueError(
            f"unknown encoder '{encoder_name}'; similar smp encoders: {near or valid[:12]} "
            "(segmentation_models_pytorch.encoders.get_encoder_names() lists all)"
        )


def is_weights_file(encoder_weights: Optional[str]) -> bool:
    """A path (compute nodes often have no internet: weights come as a file) rather than a name smp
    downloads (``imagenet``, ...)."""
    return bool(encoder_weights) and ("/" in encoder_weights or encoder_weights.endswith((".pth", ".pt", ".bin")))


def load_encoder_weights(encoder: nn.Module, path: str, encoder_name: str) -> None:
    """Pretrained encoder weights from a local file: a state dict of the encoder (as torchvision or
    timm save their backbones, or ``net.encoder.state_dict()``; a ``state_dict`` entry and an
    ``encoder.`` prefix are unwrapped), or one clear error when it does not fit."""
    import torch

    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"model.encoder_weights={path}: no such file; give the path of a state dict of the "
                                f"'{encoder_name}' encoder, or null to start from random weights")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"model.encoder_weights={path} cannot be read as torch weights "
                         f"({type(err).__name__}); save it with torch.save(encoder.state_dict(), path)") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise ValueError(f"model.encoder_weights={path} holds no state dict of tensors")
    if all(k.startswith("encoder.") for k in state):
        state = {k[len("encoder."):]: v for k, v in state.items()}
    fit = f"model.encoder_weights={path} does not fit encoder '{encoder_name}'"
    own = set(encoder.state_dict())
    # A backbone saved with its classifier (torchvision's fc., classifier.; timm's head.) has weights the
    # encoder dropped: those are left out, anything else unknown is an error.
    state = {k: v for k, v in state.items() if k in own or not k.startswith(("fc.", "classifier.", "head."))}
    try:
        result = nn.Module.load_state_dict(encoder, state, strict=False)  # smp's own override returns nothing
    except RuntimeError as err:  # same names, other shapes
        mismatch = [line.strip() for line in str(err).splitlines() if "size mismatch" in line][:2]
        raise ValueError(f"{fit}: {mismatch or str(err).splitlines()[:1]}") from None
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{fit}: {len(result.missing_keys)} of its weights missing (e.g. {result.missing_keys[:2]}), "
                         f"{len(result.unexpected_keys)} unknown to it (e.g. {result.unexpected_keys[:2]}); "
                         "it must be a state dict of that encoder")


def build_net(spec: Mapping[str, Any]) -> nn.Module:
    """Build a net from its config (a ``_target_`` plus arguments), as stored in every checkpoint."""
    return instantiate(dict(spec), _convert_="all")
