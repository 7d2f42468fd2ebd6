"""Image classifiers (task ``"classify"``): LeNet-5, VGG-11, ResNet-18, DenseNet, GoogLeNet.

All take ``N x in_chans x H x W`` (packed Bayer raw ``4 x H/2 x W/2`` or RGB ``3 x H x W``)
with ``H, W >= 32`` and return ``N x num_classes`` logits. They share one structure,
:class:`ImageClassifier`: a ``backbone`` ending in pooling that yields a feature vector, and
a single ``Linear`` ``head``, so :func:`~rawcv.models.freeze_backbone` works on all of them.

The architectures keep their papers' layer patterns but are sized for small raw inputs
(``width`` / ``growth_rate`` kwargs) and use BatchNorm throughout except LeNet-5.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from ._registry import register_model
from .layers import (
    BasicBlock,
    ConvNormAct,
    DenseBlock,
    DenseTransition,
    InceptionBlock,
    global_avg_pool,
    make_activation,
)

# Published channel counts below are for a base width of 64; ``width`` rescales them.
_REFERENCE_WIDTH = 64


def _scaled(channels: int, width: int) -> int:
    return max(1, round(channels * width / _REFERENCE_WIDTH))


class ImageClassifier(nn.Module):
    """``backbone -> dropout -> head``: the common shape of every rawcv classifier.

    Parameters
    ----------
    backbone : torch.nn.Module
        Maps ``N x C x H x W`` images to ``N x num_features`` vectors.
    num_features : int
        Length of the backbone's feature vector.
    num_classes : int
    drop_rate : float, default 0.0
        Dropout before the head; it has no parameters, so freezing the backbone is unaffected.
    """

    def __init__(self, backbone: nn.Module, num_features: int, num_classes: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.head = nn.Linear(num_features, num_classes)
        self.num_features = num_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The ``N x num_features`` vectors the head classifies (for embeddings / probing)."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.backbone(x)))


@register_model("lenet5", task="classify")
def lenet5(in_chans: int = 4, num_classes: int = 10, drop_rate: float = 0.0) -> ImageClassifier:
    """LeNet-5 (LeCun et al. 1998): conv5-pool-conv5-pool-fc120-fc84-fc.

    Adapted: ReLU and max pooling instead of tanh and trainable subsampling, and an adaptive
    average pooling to 5x5 before the first fully connected layer, so inputs larger than the
    original 32x32 still give LeNet's 16x5x5 = 400 features. With ``in_chans=1`` the parameter
    count equals the original's 61,706.
    """
    backbone = nn.Sequential(
        ConvNormAct(in_chans, 6, 5, padding=0, norm=False),
        nn.MaxPool2d(2),
        ConvNormAct(6, 16, 5, padding=0, norm=False),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(5),
        nn.Flatten(1),
        nn.Linear(16 * 5 * 5, 120),
        make_activation("relu"),
        nn.Linear(120, 84),
        make_activation("relu"),
    )
    return ImageClassifier(backbone, 84, num_classes, drop_rate)


# VGG-11 ("configuration A", Simonyan & Zisserman 2015): convs per stage, each stage ends in
# a 2x2 max pool; channels are multiples of the base width.
_VGG11_STAGE_MULTIPLIERS = ((1,), (2,), (4, 4), (8, 8), (8, 8))


@register_model("vgg11", task="classify")
def vgg11(in_chans: int = 4, num_classes: int = 10, width: int = 32, drop_rate: float = 0.0) -> ImageClassifier:
    """VGG-11 with BatchNorm: 8 3x3 convs in 5 max-pooled stages, then global average pooling.

    The three 4096-wide fully connected layers of the original are replaced by global average
    pooling and one linear head; they held most of its parameters and are pointless on
    small inputs.

    Parameters
    ----------
    width : int, default 32
        Channels of the first stage (the original uses 64); later stages use 2x, 4x, 8x, 8x.
    """
    layers: List[nn.Module] = []
    chans = in_chans
    for stage in _VGG11_STAGE_MULTIPLIERS:
        for multiplier in stage:
            layers.append(ConvNormAct(chans, multiplier * width, 3))
            chans = multiplier * width
        layers.append(nn.MaxPool2d(2))
    layers.append(global_avg_pool())
    return ImageClassifier(nn.Sequential(*layers), chans, num_classes, drop_rate)


@register_model("resnet18", task="classify")
def resnet18(
    in_chans: int = 4,
    num_classes: int = 10,
    width: int = 64,
    small_input: bool = True,
    stem_stride: int = 2,
    drop_rate: float = 0.0,
) -> ImageClassifier:
    """ResNet-18 (He et al. 2016): stem, 4 stages of 2 :class:`BasicBlock` s, global pooling.

    Parameters
    ----------
    width : int, default 64
        Channels of the first stage; stages use 1x, 2x, 4x, 8x (stride 1, 2, 2, 2).
    small_input : bool, default True
        Use a 3x3 stride-1 stem without max pooling (the CIFAR variant), so a 64x64 packed
        raw is not shrunk 4x before the first block. ``False`` gives the ImageNet stem
        (7x7 stride-2 conv + 3x3 stride-2 max pool); with ``in_chans=3, num_classes=1000``
        the parameter count then equals torchvision's resnet18 (11,689,512).
    stem_stride : {1, 2}, default 2
        Stride of the ImageNet stem's 7x7 convolution (ignored with ``small_input``). A packed
        raw is already half the resolution of its RGB image, so ``stem_stride=1`` on packed input
        gives every stage the same feature-map size, and nearly the same cost, as the default
        stem on the demosaicked RGB image: the fair raw-versus-RGB comparison.
    """
    if stem_stride not in (1, 2):
        raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
    if small_input:
        stem = nn.Sequential(ConvNormAct(in_chans, width, 3))
    else:
        stem = nn.Sequential(ConvNormAct(in_chans, width, 7, stride=stem_stride), nn.MaxPool2d(3, stride=2, padding=1))
    stages: List[nn.Module] = []
    chans = width
    for stage_index, multiplier in enumerate((1, 2, 4, 8)):
        out_chans = multiplier * width
        stride = 1 if stage_index == 0 else 2
        stages.append(nn.Sequential(BasicBlock(chans, out_chans, stride), BasicBlock(out_chans, out_chans)))
        chans = out_chans
    backbone = nn.Sequential(stem, *stages, global_avg_pool())
    return ImageClassifier(backbone, chans, num_classes, drop_rate)


@register_model("densenet_small", task="classify")
def densenet_small(
    in_chans: int = 4,
    num_classes: int = 10,
    growth_rate: int = 12,
    block_layers: Sequence[int] = (6, 6, 6),
    compression: float = 0.5,
    bottleneck_factor: int = 4,
    drop_rate: float = 0.0,
) -> ImageClassifier:
    """DenseNet-BC (Huang et al. 2017) in its small-image form: 3x3 stem, dense blocks
    separated by compressing transitions, final BN-ReLU and global pooling.

    Parameters
    ----------
    growth_rate : int, default 12
        Channels each dense layer adds.
    block_layers : sequence of int, default (6, 6, 6)
        Dense layers per block; a transition (``compression`` x channels, 2x2 average
        pooling) follows every block but the last.
    compression : float, default 0.5
    bottleneck_factor : int, default 4
    """
    if not block_layers:
        raise ValueError("block_layers must name at least one dense block")
    chans = 2 * growth_rate
    layers: List[nn.Module] = [ConvNormAct(in_chans, chans, 3)]
    for block_index, num_layers in enumerate(block_layers):
        block = DenseBlock(chans, int(num_layers), growth_rate, bottleneck_factor)
        layers.append(block)
        chans = block.out_chans
        if block_index < len(block_layers) - 1:
            transition = DenseTransition(chans, max(1, int(chans * compression)))
            layers.append(transition)
            chans = transition.out_chans
    # Pre-activation layers leave the last block's output un-normalised; normalise before pooling.
    layers += [nn.BatchNorm2d(chans), make_activation("relu"), global_avg_pool()]
    return ImageClassifier(nn.Sequential(*layers), chans, num_classes, drop_rate)


# GoogLeNet (Szegedy et al. 2015) Inception configurations for base width 64:
# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection).
_INCEPTION_3A = (64, 96, 128, 16, 32, 32)
_INCEPTION_3B = (128, 128, 192, 32, 96, 64)
_INCEPTION_4A = (192, 96, 208, 16, 48, 64)
_INCEPTION_5A = (256, 160, 320, 32, 128, 128)


@register_model("googlenet_small", task="classify")
def googlenet_small(in_chans: int = 4, num_classes: int = 10, width: int = 32, drop_rate: float = 0.0) -> ImageClassifier:
    """A reduced GoogLeNet: 3x3 stem, Inception 3a-3b, 4a, 5a separated by max pools.

    The 7x7 stride-2 stem and 4b-4e of the original are dropped: small raw inputs cannot
    afford the 32x downsampling, and four modules suffice at this scale. The auxiliary
    classifiers are dropped as well (BatchNorm makes them unnecessary).

    Parameters
    ----------
    width : int, default 32
        Stem width; every Inception branch is scaled by ``width / 64`` from the paper's
        numbers.
    """
    stem_chans = _scaled(64, width)
    stem_out = _scaled(192, width)
    layers: List[nn.Module] = [
        ConvNormAct(in_chans, stem_chans, 3),
        ConvNormAct(stem_chans, stem_out, 3),
        nn.MaxPool2d(2),
    ]
    chans = stem_out
    for config in (_INCEPTION_3A, _INCEPTION_3B, None, _INCEPTION_4A, None, _INCEPTION_5A):
        if config is None:
            layers.append(nn.MaxPool2d(2))
            continue
        block = InceptionBlock(chans, *(_scaled(c, width) for c in config))
        layers.append(block)
        chans = block.out_chans
    layers.append(global_avg_pool())
    return ImageClassifier(nn.Sequential(*layers), chans, num_classes, drop_rate)
