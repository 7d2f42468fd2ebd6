"""U-Net (Ronneberger et al. 2015) for per-pixel prediction (task ``"segment"``).

Packed Bayer raw (``4 x H/2 x W/2``) is predicted at the full ``H x W`` sensor resolution:
the last layer emits 4 sub-pixel values per output channel and a pixel shuffle puts them
back on the 2x2 grid the packing came from (as in Chen et al. 2018, "Learning to See in
the Dark"). :mod:`.gan` reuses :class:`UNet` as the pix2pix generator.
"""

from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import register_model
from .layers import DoubleConv, make_activation

_UPSAMPLE_MODES = ("transpose", "bilinear")


def _make_upsampler(in_chans: int, out_chans: int, mode: str) -> nn.Module:
    """x2 spatial upsampling that also halves channels, so skip concatenation doubles them back."""
    if mode == "transpose":
        return nn.ConvTranspose2d(in_chans, out_chans, kernel_size=2, stride=2)
    # Bilinear interpolation avoids the checkerboard artefacts transposed convs can produce;
    # the 1x1 conv then does the channel reduction the transposed conv would have done.
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(in_chans, out_chans, kernel_size=1),
    )


class UNet(nn.Module):
    """Encoder-decoder with skip connections; output has the input's size (x2 if packed).

    Parameters
    ----------
    in_chans : int, default 4
    num_classes : int, default 10
        Output channels (class logits, or image channels when used as a generator).
    depth : int, default 4
        Number of 2x max-pool downsamplings; the bottleneck has ``base_width * 2**depth``
        channels.
    base_width : int, default 32
        Channels of the first encoder stage; each deeper stage doubles them.
    upsample : {"transpose", "bilinear"}, default "transpose"
        Decoder upsampling: a learned 2x2 stride-2 transposed conv (the paper's
        "up-convolution") or bilinear interpolation followed by a 1x1 conv.
    packed_input : bool, optional
        The input is packed Bayer raw at half resolution; the output is then ``2H x 2W``.
        Defaults to ``in_chans == 4``.
    final_activation : str or None, default None
        Applied to the output (see :func:`~rawcv.models.layers.make_activation`); ``None``
        returns raw logits / unbounded values.

    Notes
    -----
    Inputs whose size is not a multiple of ``2**depth`` are replicate-padded at the bottom
    and right, and the output cropped back, so any size works and output pixel ``(y, x)``
    stays aligned with input pixel ``(y, x)`` (and with the Bayer phase for packed input).
    """

    def __init__(
        self,
        in_chans: int = 4,
        num_classes: int = 10,
        depth: int = 4,
        base_width: int = 32,
        upsample: str = "transpose",
        packed_input: Optional[bool] = None,
        final_activation: Optional[str] = None,
    ) -> None:
        super().__init__()
        if int(depth) < 1:
            raise ValueError(f"U-Net depth must be >= 1, got {depth}")
        if upsample not in _UPSAMPLE_MODES:
            raise ValueError(f"unknown upsample {upsample!r}: expected one of {', '.join(_UPSAMPLE_MODES)}")
        self.depth = int(depth)
        self.packed_input = (in_chans == 4) if packed_input is None else bool(packed_input)
        widths = [base_width * 2**level for level in range(self.depth + 1)]

        self.encoder_blocks = nn.ModuleList(
            [DoubleConv(in_chans, widths[0])]
            + [DoubleConv(widths[level - 1], widths[level]) for level in range(1, self.depth + 1)]
        )
        self.downsample = nn.MaxPool2d(2)
        decoder_levels = list(reversed(range(self.depth)))
        self.upsamplers = nn.ModuleList(
            [_make_upsampler(widths[level + 1], widths[level], upsample) for level in decoder_levels]
        )
        self.decoder_blocks = nn.ModuleList([DoubleConv(2 * widths[level], widths[level]) for level in decoder_levels])
        if self.packed_input:
            self.head: nn.Module = nn.Sequential(
                nn.Conv2d(widths[0], num_classes * 4, kernel_size=1), nn.PixelShuffle(2)
            )
        else:
            self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)
        self.final_activation = make_activation(final_activation)

    @property
    def output_scale(self) -> int:
        """Output size / input size: 2 for packed raw input, else 1."""
        return 2 if self.packed_input else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        multiple = 2**self.depth
        pad_bottom, pad_right = (-height) % multiple, (-width) % multiple
        if pad_bottom or pad_right:
            # Replicate rather than reflect: reflection fails when the pad exceeds the size.
            x = F.pad(x, (0, pad_right, 0, pad_bottom), mode="replicate")

        skips: List[torch.Tensor] = []
        for level, block in enumerate(self.encoder_blocks):
            if level > 0:
                x = self.downsample(x)
            x = block(x)
            skips.append(x)
        x = skips.pop()  # the bottleneck is not a skip connection
        for upsampler, block in zip(self.upsamplers, self.decoder_blocks):
            x = block(torch.cat([skips.pop(), upsampler(x)], dim=1))

        x = self.head(x)
        scale = self.output_scale
        x = x[..., : height * scale, : width * scale]
        return self.final_activation(x)


@register_model("unet_small", task="segment")
def unet_small(in_chans: int = 4, num_classes: int = 10, depth: int = 3, base_width: int = 16,
               upsample: str = "transpose", packed_input: Optional[bool] = None,
               final_activation: Optional[str] = None) -> UNet:
    """:class:`UNet` three levels deep, 16 channels wide at the top (arguments as for :class:`UNet`)."""
    return UNet(in_chans, num_classes, depth=depth, base_width=base_width, upsample=upsample,
                packed_input=packed_input, final_activation=final_activation)


@register_model("unet", task="segment")
def unet(in_chans: int = 4, num_classes: int = 10, depth: int = 4, base_width: int = 32,
         upsample: str = "transpose", packed_input: Optional[bool] = None,
         final_activation: Optional[str] = None) -> UNet:
    """:class:`UNet` four levels deep, 32 channels wide at the top (arguments as for :class:`UNet`)."""
    return UNet(in_chans, num_classes, depth=depth, base_width=base_width, upsample=upsample,
                packed_input=packed_input, final_activation=final_activation)
