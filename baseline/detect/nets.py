"""The network architectures the detect stage knows, built from a card's config.

A model card names an architecture and its config; :func:`build_network` is the
only place that turns that pair into a ``torch.nn.Module``. Keeping the list
closed means a card can never make the loader import or run arbitrary code.

- ``building-unet``: a segmentation-models-pytorch U-Net (light encoder, no
  pretrained weights) whose output channels are listed in
  :data:`BUILDING_CHANNELS`: building extent, instance boundary and ground
  shadow (logits) and roof height (metres / 10).
- ``vehicle-centernet``: a small fully convolutional CenterNet-style net at
  output stride 2, channels in :data:`VEHICLE_CHANNELS`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from baseline.errors import ModelError

BUILDING_CHANNELS = ("extent", "boundary", "shadow", "height")
BUILDING_HEIGHT_SCALE_M = 10.0  # the height channel predicts metres / this

# heatmap per class, then sub-pixel offset (row, col), log length and width (m),
# the doubled long-axis angle, and the blue->nir displacement (row, col) in metres
VEHICLE_CHANNELS = (
    "heat_car",
    "heat_large",
    "off_row",
    "off_col",
    "log_length",
    "log_width",
    "cos2a",
    "sin2a",
    "disp_row",
    "disp_col",
)
VEHICLE_STRIDE = 2


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class _Residual(nn.Module):
    """Two 3x3 convolutions with an identity shortcut."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class VehicleCenterNet(nn.Module):
    """A small encoder-decoder that outputs CenterNet maps at stride 2.

    Encoder stages at strides 2, 4, 8 and 16 (receptive field ~100 px, enough
    for a bus at 0.3 m); the decoder upsamples back to stride 2 with skips.
    The heatmap bias starts at -2.19 (probability 0.1), as in CenterNet.
    """

    def __init__(self, in_channels: int = 4, widths: tuple[int, ...] = (16, 32, 64, 96)) -> None:
        super().__init__()
        w2, w4, w8, w16 = widths
        self.s2 = nn.Sequential(_conv_bn_relu(in_channels, w2, 2), _conv_bn_relu(w2, w2))
        self.s4 = nn.Sequential(_conv_bn_relu(w2, w4, 2), _Residual(w4))
        self.s8 = nn.Sequential(_conv_bn_relu(w4, w8, 2), _Residual(w8))
        self.s16 = nn.Sequential(_conv_bn_relu(w8, w16, 2), _Residual(w16), _Residual(w16, 2))
        self.up8 = _conv_bn_relu(w16 + w8, w8)
        self.up4 = _conv_bn_relu(w8 + w4, w4)
        self.up2 = _conv_bn_relu(w4 + w2, w2)
        self.head = nn.Sequential(_conv_bn_relu(w2, w2), nn.Conv2d(w2, len(VEHICLE_CHANNELS), 1))
        with torch.no_grad():
            self.head[-1].bias.zero_()
            self.head[-1].bias[:2] = -2.19

    @staticmethod
    def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.s2(x)
        b = self.s4(a)
        c = self.s8(b)
        d = self.s16(c)
        u = self.up8(torch.cat([self._up(d, c), c], 1))
        u = self.up4(torch.cat([self._up(u, b), b], 1))
        u = self.up2(torch.cat([self._up(u, a), a], 1))
        return self.head(u)


def build_building_unet(
    encoder: str = "tu-regnetx_002",
    decoder_channels: tuple[int, ...] = (64, 32, 32, 16, 16),
    in_channels: int = 4,
    space_to_depth: int = 1,
) -> nn.Module:
    """A segmentation-models-pytorch U-Net with one output per :data:`BUILDING_CHANNELS`.

    With ``space_to_depth`` = 2 the input is folded 2x2 into channels first
    (``PixelUnshuffle``): the net runs on a grid twice as coarse (a quarter of
    the compute) yet still sees every input pixel, such as the thin roof rims
    that separate touching buildings; its output is on the coarse grid.
    """
    import segmentation_models_pytorch as smp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unet = smp.Unet(
            encoder_name=encoder,
            encoder_weights=None,
            encoder_depth=len(decoder_channels),
            decoder_channels=tuple(decoder_channels),
            in_channels=in_channels * space_to_depth * space_to_depth,
            classes=len(BUILDING_CHANNELS),
        )
    if space_to_depth == 1:
        return unet
    return nn.Sequential(nn.PixelUnshuffle(space_to_depth), unet)


def build_vehicle_centernet(widths: tuple[int, ...] = (16, 32, 64, 96), in_channels: int = 4) -> nn.Module:
    """The vehicle net; ``widths`` are the channels at strides 2, 4, 8, 16."""
    return VehicleCenterNet(in_channels, tuple(widths))


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "building-unet": build_building_unet,
    "vehicle-centernet": build_vehicle_centernet,
}


def build_network(architecture: str, config: dict[str, Any]) -> nn.Module:
    """Build ``architecture`` with keyword ``config``; unknown names or keys are a :class:`ModelError`."""
    try:
        builder = ARCHITECTURES[architecture]
    except KeyError:
        raise ModelError(
            f"unknown architecture {architecture!r}", hint=f"known: {', '.join(sorted(ARCHITECTURES))}"
        ) from None
    try:
        return builder(**config)
    except TypeError as exc:
        raise ModelError(f"architecture {architecture!r}: bad config {config!r} ({exc})") from None
