"""pix2pix (Isola et al. 2017) parts for raw-to-RGB restoration.

* ``unet_generator`` (task ``"restore_generator"``): the :class:`~rawcv.models.unet.UNet`
  mapping packed raw plus noise-variance maps to linear RGB at full resolution.
* ``patchgan70`` (task ``"restore_discriminator"``): the 70x70 PatchGAN, classifying each
  70x70 patch of ``concat(condition, image)`` as real or fake.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import nn

from ._registry import register_model
from .layers import ConvNormAct, init_normal_, receptive_field, sliding_window_geometry
from .unet import UNet


@register_model("unet_generator", task="restore_generator")
def unet_generator(
    in_chans: int = 8,
    num_classes: int = 3,
    depth: int = 4,
    base_width: int = 32,
    upsample: str = "transpose",
    packed_input: bool = True,
    final_activation: Optional[str] = None,
) -> UNet:
    """pix2pix generator: a :class:`~rawcv.models.unet.UNet` with pix2pix initialisation.

    Parameters
    ----------
    in_chans : int, default 8
        4 packed raw channels + 4 per-CFA-site noise-variance maps.
    num_classes : int, default 3
        Output channels: linear RGB.
    packed_input : bool, default True
        The input is at half resolution (packed raw), so the output is at ``2H x 2W``.
        Unlike :class:`UNet` this does not depend on ``in_chans`` (8 here, not 4).
    final_activation : str or None, default None
        No squashing by default: linear radiance may exceed 1 (highlights, white balance
        gains), which a sigmoid/tanh could not represent.
    depth, base_width, upsample
        As for :class:`~rawcv.models.unet.UNet`.
    """
    generator = UNet(
        in_chans,
        num_classes,
        depth=depth,
        base_width=base_width,
        upsample=upsample,
        packed_input=packed_input,
        final_activation=final_activation,
    )
    return init_normal_(generator)


class PatchGANDiscriminator(nn.Module):
    """pix2pix "NLayer" PatchGAN: ``C64 - C128 - ... (stride 2) - C(s1) - conv to 1``.

    4x4 convolutions, LeakyReLU 0.2, BatchNorm on every layer but the first. With
    ``num_layers=3`` this is the 70x70 PatchGAN (C64-C128-C256-C512).

    Parameters
    ----------
    in_chans : int
        Channels of ``concat(condition, image)``.
    num_classes : int, default 1
        Channels of the patch logit map.
    base_width : int, default 64
        Channels of the first layer; each later layer doubles them, up to 8x.
    num_layers : int, default 3
        Stride-2 layers; the receptive field is 70 for 3 (and 16, 34, 142, 286 for 1, 2, 4, 5).
    """

    def __init__(self, in_chans: int, num_classes: int = 1, base_width: int = 64, num_layers: int = 3) -> None:
        super().__init__()
        layers: List[nn.Module] = [
            ConvNormAct(in_chans, base_width, 4, stride=2, padding=1, norm=False, act="leaky_relu")
        ]
        chans = base_width
        for index in range(1, num_layers + 1):
            out_chans = base_width * min(2**index, 8)
            # The last hidden layer keeps stride 1: more context without shrinking the patch grid.
            stride = 2 if index < num_layers else 1
            layers.append(ConvNormAct(chans, out_chans, 4, stride=stride, padding=1, act="leaky_relu"))
            chans = out_chans
        layers.append(nn.Conv2d(chans, num_classes, 4, stride=1, padding=1))
        self.layers = nn.Sequential(*layers)

    def kernel_strides(self) -> List[Tuple[int, int]]:
        """``(kernel_size, stride)`` of every conv, input to output."""
        return sliding_window_geometry(self.layers)

    @property
    def receptive_field(self) -> int:
        """Side, in input pixels, of the square patch one output logit sees."""
        return receptive_field(self.kernel_strides())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@register_model("patchgan70", task="restore_discriminator")
def patchgan70(in_chans: int = 7, num_classes: int = 1, base_width: int = 64) -> PatchGANDiscriminator:
    """70x70 PatchGAN discriminator with pix2pix initialisation.

    Parameters
    ----------
    in_chans : int, default 7
        Channels of ``concat(condition, image)``: by default a 4-channel raw condition
        (brought to the image's resolution by the caller) plus 3 RGB channels.
    num_classes : int, default 1
        One real/fake logit per patch.
    base_width : int, default 64
        Width of the first layer (the receptive field does not depend on it). With
        ``in_chans=6`` the parameter count equals pix2pix's (2,768,705).

    Returns
    -------
    PatchGANDiscriminator
        Maps ``N x in_chans x H x W`` to ``N x num_classes x (H/8 - 2) x (W/8 - 2)`` logits
        (``H, W`` multiples of 8).
    """
    return init_normal_(PatchGANDiscriminator(in_chans, num_classes, base_width, num_layers=3))
