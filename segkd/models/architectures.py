"""Any segmentation-models-pytorch architecture by name, and what segkd asks of a network whatever its
architecture: what it is called, the input sizes it takes, how many classes it predicts.

smp builds every architecture (Unet, UnetPlusPlus, FPN, PSPNet, DeepLabV3, DeepLabV3Plus, PAN,
UPerNet, Segformer, DPT, MAnet, Linknet) as ``encoder -> decoder -> segmentation_head``, on any of
its encoders or timm's (``tu-<name>``). segkd never assumes more than that shape:

- **input sizes** (:func:`size_divisor`): an input's height and width must be multiples of the
  encoder's output stride, the coarsest grid it computes on: 32 for a 5-stage encoder (Unet, FPN,
  UPerNet, Segformer, Linknet), 16 for DeepLabV3+ at its default ``encoder_output_stride`` of 16, 8
  for DeepLabV3 and PSPNet's 3-stage encoder. Evaluation pads images to it, export and profile
  refuse other sizes, the train crop is checked against it (:func:`check_input_size`);
- **classes** (:func:`num_classes`): read from the network (its segmentation head, or one blank
  pass), not from a ``classes`` keyword of its spec;
- **its name** (:func:`describe`): ``DeepLabV3Plus (resnet34)``, for messages and tables.

A network built by another factory (any ``_target_``) may state its divisor as a ``size_divisor``
attribute; without one, and without an smp encoder, 32 is assumed.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Optional, Sequence

import segmentation_models_pytorch as smp
import torch
from torch import nn

from segkd.models.unet import check_encoder_name, is_weights_file, load_encoder_weights

#: The input divisor of a network that says nothing about it (the stride of a 5-stage encoder).
DEFAULT_SIZE_DIVISOR = 32


def architectures() -> dict[str, type]:
    """smp's architecture classes by their class name (``DeepLabV3Plus``, ``Segformer``, ...)."""
    return {cls.__name__: cls for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()}


def build_smp(
    arch: str,
    encoder_name: str,
    classes: int,
    encoder_weights: Optional[str] = None,
    in_channels: int = 3,
    **kwargs: Any,
) -> nn.Module:
    """Any smp architecture (``arch``: ``DeepLabV3Plus``, ``FPN``, ``Segformer``, ... as smp names
    the class) on any smp encoder or ``tu-<timm model>``; ``kwargs`` are that architecture's own
    arguments (``encoder_depth``, ``encoder_output_stride``, ``decoder_channels``, ...). As for
    :func:`~segkd.models.unet.build_unet`, ``encoder_weights`` may be a local file, and nothing is
    downloaded unless it names smp's weights (``imagenet``)."""
    known = architectures()
    cls = known.get(arch) or next((c for name, c in known.items() if name.lower() == str(arch).lower()), None)
    if cls is None:
        raise ValueError(f"model.arch={arch}: smp has no such architecture; choose one of {sorted(known)}")
    check_encoder_name(encoder_name)
    accepted = [name for name, p in inspect.signature(cls.__init__).parameters.items()
                if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD]
    unknown = [key for key in kwargs if key not in accepted]
    if unknown:
        raise ValueError(f"model.{unknown[0]}: smp's {cls.__name__} takes no argument '{unknown[0]}'; it takes "
                         f"{[a for a in accepted if a not in ('encoder_name', 'encoder_weights', 'in_channels', 'classes')]}")
    weights_file = encoder_weights if is_weights_file(encoder_weights) else None
    net = cls(encoder_name=encoder_name, encoder_weights=None if weights_file else encoder_weights,
              in_channels=in_channels, classes=classes, **kwargs)
    if weights_file:
        load_encoder_weights(net.encoder, weights_file, encoder_name)
    return net


def on_meta(factory: Callable[[], nn.Module]) -> nn.Module:
    """The network ``factory`` builds, on the meta device (shapes only: counting a 1024x2048 pass of a
    large teacher costs nothing). Built there directly; a network whose construction reads a tensor's
    value (SegFormer's Mix Transformer spaces its drop-path rates with ``.item()``) is built on the
    CPU and moved."""
    try:
        with torch.device("meta"):
            return factory()
    except Exception:  # noqa: BLE001 (Hydra wraps the error of a target it instantiates in its own)
        return factory().to("meta")


def _inner(net: nn.Module) -> nn.Module:
    """The network itself, out of the wrappers segkd puts around one (a rescaled teacher, a predictor)."""
    while not hasattr(net, "encoder") and isinstance(getattr(net, "net", None), nn.Module):
        net = net.net
    return net


def architecture_name(net: nn.Module) -> str:
    """``DeepLabV3Plus``, ``Unet``, ...: the network's class (smp names its classes after the architecture)."""
    return type(_inner(net)).__name__


def encoder_name(net: nn.Module) -> Optional[str]:
    """The smp encoder's name (``resnet34``, ``mit_b0``, ``tu-mobilenetv2_050``), None for other networks."""
    name = getattr(_inner(net), "name", None)  # smp: "<arch>-<encoder name>", "u-<encoder>" for a Unet
    return name.split("-", 1)[1] if isinstance(name, str) and "-" in name else None


def describe(net: nn.Module) -> str:
    """``DeepLabV3Plus (resnet34)``: the architecture and, for an smp model, its encoder."""
    encoder = encoder_name(net)
    return f"{architecture_name(net)} ({encoder})" if encoder else architecture_name(net)


def size_divisor(net: nn.Module) -> int:
    """The multiple an input's height and width must be for ``net`` (see the module docstring): a
    ``size_divisor`` the network states, else its encoder's ``output_stride``, else 32."""
    stated = getattr(net, "size_divisor", None)
    if isinstance(stated, int) and not isinstance(stated, bool) and stated > 0:
        return stated
    inner = _inner(net)
    if inner is not net:
        return size_divisor(inner)
    stride = getattr(getattr(net, "encoder", None), "output_stride", None)
    return int(stride) if isinstance(stride, int) and stride > 0 else DEFAULT_SIZE_DIVISOR


def common_divisor(nets: Sequence[nn.Module]) -> int:
    """The smallest divisor every one of ``nets`` takes (their least common multiple): what inputs that
    all of them read, such as the val images of a distillation run, are padded to."""
    return math.lcm(*(size_divisor(net) for net in nets)) if nets else DEFAULT_SIZE_DIVISOR


def needs_divisible_input(net: nn.Module) -> bool:
    """Whether ``net`` refuses an input whose sides are not multiples of its divisor. smp's Unet
    resizes inside its decoder and takes any size (it is still padded to 32 for evaluation, as it
    always was); every other smp architecture refuses one."""
    return bool(getattr(_inner(net), "requires_divisible_input_shape", True))


def check_input_size(net: nn.Module, size: Sequence[int], key: str, strict: bool = False,
                     what: Optional[str] = None) -> tuple[int, int]:
    """``size`` as ``(height, width)``, or one error naming ``key`` when ``net`` cannot take it: a
    side that is not a multiple of :func:`size_divisor` for a network that refuses those (any
    network with ``strict``, as an export whose file must take every size it was checked at)."""
    divisor = size_divisor(net)
    values = list(size)
    if len(values) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in values):
        raise ValueError(f"{key}={values} must be [height, width], each a positive multiple of {divisor} "
                         f"(the output stride of {what or describe(net)})")
    if (strict or needs_divisible_input(net)) and any(s % divisor for s in values):
        fit = [max(divisor, round(s / divisor) * divisor) for s in values]
        raise ValueError(f"{key}={values}: {what or describe(net)} needs heights and widths that are multiples of "
                         f"{divisor} (its output stride); set {key}={fit}")
    return values[0], values[1]


def num_classes(net: nn.Module) -> int:
    """How many classes ``net`` predicts: the output channels of an smp segmentation head's
    convolution, else the channels of one forward pass on a blank image."""
    inner = _inner(net)
    head = getattr(inner, "segmentation_head", None)
    if isinstance(head, nn.Module):
        convs = [m for m in head.modules() if isinstance(m, nn.Conv2d)]
        if convs:
            return int(convs[-1].out_channels)
    param = next(inner.parameters(), None)
    side = 2 * size_divisor(inner)
    x = torch.zeros(1, 3, side, side, dtype=param.dtype if param is not None else torch.float32,
                    device=param.device if param is not None else "cpu")
    training = inner.training
    inner.eval()
    try:
        with torch.no_grad():
            out = inner(x)
    finally:
        inner.train(training)
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        raise ValueError(f"{describe(inner)} returns {type(out).__name__ if not isinstance(out, torch.Tensor) else tuple(out.shape)}"
                         ", not class scores of shape N x C x H x W")
    return int(out.shape[1])
