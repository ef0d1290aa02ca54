"""UNets from segmentation-models-pytorch, built by name so a checkpoint can rebuild its own net.

Every net is ``encoder -> decoder -> segmentation_head``: stable module paths for feature hooks.
A student is sized by its encoder and decoder channels; nothing here downloads unless the config
opts in with ``encoder_weights``.
"""

from __future__ import annotations

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
    return smp.create_model(
        "Unet",
        encoder_name=encoder_name,
        encoder_depth=encoder_depth,
        encoder_weights=encoder_weights,
        decoder_channels=list(decoder_channels),
        in_channels=in_channels,
        classes=classes,
    )


def build_net(spec: Mapping[str, Any]) -> nn.Module:
    """Build a net from its config (a ``_target_`` plus arguments), as stored in every checkpoint."""
    return instantiate(dict(spec), _convert_="all")
