"""Building blocks shared by the rawcv networks.

Each block is defined once here and assembled by :mod:`.classifiers`, :mod:`.unet` and
:mod:`.gan`. Convolutions followed by BatchNorm carry no bias: BatchNorm subtracts the
per-channel mean, so such a bias would receive exactly zero gradient and never train.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn

_ACTIVATION_NAMES = ("relu", "leaky_relu", "sigmoid", "tanh", "identity", "none")


def make_activation(name: Optional[str]) -> nn.Module:
    """An activation module from its name.

    Parameters
    ----------
    name : {"relu", "leaky_relu", "sigmoid", "tanh", "identity", "none"} or None
        ``"leaky_relu"`` uses slope 0.2 (the pix2pix / DCGAN value). ``None``, ``"none"`` and
        ``"identity"`` give :class:`torch.nn.Identity`.

    Returns
    -------
    torch.nn.Module
    """
    key = "identity" if name is None else str(name).lower()
    if key == "relu":
        return nn.ReLU(inplace=True)
    if key == "leaky_relu":
        return nn.LeakyReLU(0.2, inplace=True)
    if key == "sigmoid":
        return nn.Sigmoid()
    if key == "tanh":
        return nn.Tanh()
    if key in ("identity", "none"):
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}: expected one of {', '.join(_ACTIVATION_NAMES)}")


class ConvNormAct(nn.Sequential):
    """Convolution, optional BatchNorm, optional activation (post-activation order).

    Parameters
    ----------
    in_chans, out_chans : int
        Channels in and out.
    kernel_size : int, default 3
    stride : int, default 1
    padding : int, optional
        Defaults to ``kernel_size // 2`` ("same" size for odd kernels at stride 1).
    norm : bool, default True
        Add ``BatchNorm2d``; the convolution then has no bias.
    act : str or None, default "relu"
        Activation name for :func:`make_activation`; ``None`` adds none.
    """

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: Optional[int] = None,
        norm: bool = True,
        act: Optional[str] = "relu",
    ) -> None:
        if padding is None:
            padding = kernel_size // 2
        layers: "OrderedDict[str, nn.Module]" = OrderedDict()
        layers["conv"] = nn.Conv2d(in_chans, out_chans, kernel_size, stride, padding, bias=not norm)
        if norm:
            layers["norm"] = nn.BatchNorm2d(out_chans)
        if act is not None:
            layers["act"] = make_activation(act)
        super().__init__(layers)
        self.out_chans = out_chans


class NormActConv(nn.Sequential):
    """BatchNorm, ReLU, then convolution: the pre-activation order DenseNet is built on.

    Parameters
    ----------
    in_chans, out_chans : int
    kernel_size : int, default 3
        Padding is ``kernel_size // 2``.
    """

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int = 3) -> None:
        super().__init__(
            OrderedDict(
                norm=nn.BatchNorm2d(in_chans),
                act=make_activation("relu"),
                # No bias: the next layer normalises again (or global pooling follows).
                conv=nn.Conv2d(in_chans, out_chans, kernel_size, padding=kernel_size // 2, bias=False),
            )
        )
        self.out_chans = out_chans


class DoubleConv(nn.Sequential):
    """Two 3x3 conv-BN-ReLU layers: the U-Net stage block.

    Parameters
    ----------
    in_chans, out_chans : int
    """

    def __init__(self, in_chans: int, out_chans: int) -> None:
        super().__init__(
            OrderedDict(
                first=ConvNormAct(in_chans, out_chans, 3),
                second=ConvNormAct(out_chans, out_chans, 3),
            )
        )
        self.out_chans = out_chans


class BasicBlock(nn.Module):
    """ResNet basic residual block: two 3x3 conv-BN, identity or 1x1 projection shortcut.

    Parameters
    ----------
    in_chans, out_chans : int
    stride : int, default 1
        Stride of the first convolution; a projection shortcut is used whenever the
        stride or the channel count changes, so the two paths can be added.
    """

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            OrderedDict(
                first=ConvNormAct(in_chans, out_chans, 3, stride),
                second=ConvNormAct(out_chans, out_chans, 3, act=None),
            )
        )
        if stride != 1 or in_chans != out_chans:
            self.shortcut: nn.Module = ConvNormAct(in_chans, out_chans, 1, stride, padding=0, act=None)
        else:
            self.shortcut = nn.Identity()
        self.act = make_activation("relu")
        self.out_chans = out_chans

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.residual(x) + self.shortcut(x))


class DenseLayer(nn.Module):
    """DenseNet-BC layer: BN-ReLU-1x1 bottleneck, BN-ReLU-3x3, output concatenated to input.

    Parameters
    ----------
    in_chans : int
    growth_rate : int
        Channels this layer adds.
    bottleneck_factor : int, default 4
        The 1x1 bottleneck has ``bottleneck_factor * growth_rate`` channels.
    """

    def __init__(self, in_chans: int, growth_rate: int, bottleneck_factor: int = 4) -> None:
        super().__init__()
        bottleneck = bottleneck_factor * growth_rate
        self.new_features = nn.Sequential(
            OrderedDict(
                bottleneck=NormActConv(in_chans, bottleneck, 1),
                conv=NormActConv(bottleneck, growth_rate, 3),
            )
        )
        self.out_chans = in_chans + growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.new_features(x)], dim=1)


class DenseBlock(nn.Sequential):
    """``num_layers`` :class:`DenseLayer` s; every layer sees all earlier feature maps.

    Parameters
    ----------
    in_chans : int
    num_layers : int
    growth_rate : int
    bottleneck_factor : int, default 4
    """

    def __init__(self, in_chans: int, num_layers: int, growth_rate: int, bottleneck_factor: int = 4) -> None:
        layers = []
        chans = in_chans
        for _ in range(num_layers):
            layer = DenseLayer(chans, growth_rate, bottleneck_factor)
            layers.append(layer)
            chans = layer.out_chans
        super().__init__(*layers)
        self.out_chans = chans


class DenseTransition(nn.Sequential):
    """DenseNet transition: BN-ReLU-1x1 conv (channel compression), 2x2 average pooling.

    Parameters
    ----------
    in_chans, out_chans : int
    """

    def __init__(self, in_chans: int, out_chans: int) -> None:
        super().__init__(
            OrderedDict(
                compress=NormActConv(in_chans, out_chans, 1),
                pool=nn.AvgPool2d(2),
            )
        )
        self.out_chans = out_chans


class InceptionBlock(nn.Module):
    """GoogLeNet Inception module: parallel 1x1, 1x1->3x3, 1x1->5x5 and pool->1x1 branches.

    The 1x1 reductions in front of the 3x3/5x5 convolutions are what keep the module cheap.
    Outputs of the four branches are concatenated along channels.

    Parameters
    ----------
    in_chans : int
    out_1x1 : int
    reduce_3x3, out_3x3 : int
    reduce_5x5, out_5x5 : int
    pool_proj : int
        Channels of the 1x1 projection after the 3x3 stride-1 max pooling.
    """

    def __init__(
        self,
        in_chans: int,
        out_1x1: int,
        reduce_3x3: int,
        out_3x3: int,
        reduce_5x5: int,
        out_5x5: int,
        pool_proj: int,
    ) -> None:
        super().__init__()
        self.branch_1x1 = ConvNormAct(in_chans, out_1x1, 1)
        self.branch_3x3 = nn.Sequential(ConvNormAct(in_chans, reduce_3x3, 1), ConvNormAct(reduce_3x3, out_3x3, 3))
        self.branch_5x5 = nn.Sequential(ConvNormAct(in_chans, reduce_5x5, 1), ConvNormAct(reduce_5x5, out_5x5, 5))
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), ConvNormAct(in_chans, pool_proj, 1)
        )
        self.out_chans = out_1x1 + out_3x3 + out_5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch_1x1, self.branch_3x3, self.branch_5x5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


def global_avg_pool() -> nn.Sequential:
    """Global average pooling to an ``N x C`` vector; makes classifiers input-size agnostic."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))


def receptive_field(kernel_strides: Iterable[Tuple[int, int]]) -> int:
    """Receptive field (pixels, per axis) of one output of a chain of sliding windows.

    Walking the chain backwards from one output unit, a window of ``r`` units of a layer's
    output covers ``(r - 1) * stride + kernel`` units of its input.

    Parameters
    ----------
    kernel_strides : iterable of (int, int)
        ``(kernel_size, stride)`` of each layer, input to output.

    Returns
    -------
    int

    Examples
    --------
    >>> receptive_field([(3, 1), (3, 1)])
    5
    >>> receptive_field([(4, 2), (4, 2), (4, 2), (4, 1), (4, 1)])  # 70x70 PatchGAN
    70
    """
    field = 1
    for kernel, stride in reversed(list(kernel_strides)):
        field = (field - 1) * stride + kernel
    return field


def sliding_window_geometry(module: nn.Module) -> List[Tuple[int, int]]:
    """``(kernel_size, stride)`` of every conv / pooling layer of ``module``, in registration order.

    Only meaningful for a plain chain (no branches), where registration order is data order.
    Non-square kernels or strides are rejected because :func:`receptive_field` is per axis.
    """
    geometry: List[Tuple[int, int]] = []
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            kernel = _square(layer.kernel_size, "kernel_size", layer)
            stride = _square(layer.stride, "stride", layer)
            geometry.append((kernel, stride))
    return geometry


def _square(value: "int | Sequence[int]", what: str, layer: nn.Module) -> int:
    if isinstance(value, int):
        return value
    if len(set(value)) != 1:
        raise ValueError(f"{type(layer).__name__} has a non-square {what} {tuple(value)}")
    return int(value[0])


def init_normal_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """pix2pix / DCGAN initialisation, in place: conv weights ~ N(0, std), BN gamma ~ N(1, std), biases 0.

    Returns
    -------
    torch.nn.Module
        ``module``, for chaining.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, std)
            nn.init.zeros_(layer.bias)
    return module
