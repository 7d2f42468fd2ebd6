"""The adversarial half of restoration: what the discriminator sees of a (raw, image) pair, the
GAN losses, and a discriminator's record in a checkpoint.

The discriminator sees one view, :data:`DISCRIMINATOR_VIEW`, recorded in its checkpoint config
(``config["discriminator"]["view"]``) so that it travels with its weights. Runs of older rawcv
versions saw other views (the pair alone, values clipped to [0, 1], the detail band at gain 4):
their generators predict and evaluate as any other, a GAN started from one with ``--init`` gets a
fresh discriminator, and resuming one is refused (:func:`require_trained_view`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...options import DEFAULT_DISCRIMINATOR, GAN_LOSSES
from ..checkpoint import CheckpointError
from ..engine import TrainingError

DEFAULT_DISCRIMINATOR_KWARGS = {"base_width": 32}
D_VIEW = "display+detail"
#: The name of the one view, as ``rawcv models`` shows it.
DEFAULT_D_VIEW = D_VIEW
D_DETAIL_SIGMA = 1.5
# What the discriminator is shown, and why (docs/DENSE_RESULTS.md 2.5, "Options tried and removed"):
# * the sRGB encoding continued outside [0, 1] ("extended"): clipped first, every value below 0
#   looked like the truth's black and had no gradient, so the generator pushed shadows below 0
#   and left the input's noise there (-1.80 dB against the L1 twin; -0.68 dB extended);
# * the image's fine-detail band beside the pair ("display+detail"): fine detail is a few percent
#   of the signal, and a fresh PatchGAN shown the pair alone needs thousands of steps to notice
#   what a smoothing generator loses (D(real) / D(fake) 0.498 / 0.497 after 300 steps, 0.517 /
#   0.478 with the band);
# * the band at gain 1: gains 2 and 4 bought a little more detail for much more PSNR (-0.33,
#   -0.54 and -0.68 dB against the L1 twin for +13, +18 and +18 % of the truth's fine detail).
DISCRIMINATOR_VIEW = {"name": D_VIEW, "value_range": "extended", "detail_gain": 1.0, "detail_sigma": D_DETAIL_SIGMA}
#: Input channels of the discriminator: the raw condition (4), the image (3) and its detail band (3).
DISCRIMINATOR_CHANNELS = 10


def display_view(x: torch.Tensor) -> torch.Tensor:
    """What the discriminator sees of a linear image: its sRGB encoding, continued outside [0, 1]
    (``12.92 x`` below 0, the power law above 1) so that values there look wrong and keep a gradient.

    Examples
    --------
    >>> x = torch.tensor([-0.01, 0.0, 0.18, 1.0, 1.2])
    >>> [round(v, 4) for v in display_view(x).tolist()]
    [-0.1292, 0.0, 0.4614, 1.0, 1.0833]
    """
    from ...torch.isp import srgb_encode

    return srgb_encode(x.float())


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of each channel of ``N x C x H x W`` (radius ``3 sigma``, reflected
    borders: the torch twin of ``scipy.ndimage.gaussian_filter(..., truncate=3, mode="mirror")``).

    Examples
    --------
    >>> x = torch.zeros(1, 1, 9, 9); x[0, 0, 4, 4] = 1.0
    >>> y = gaussian_blur(x, 1.0)
    >>> round(float(y.sum()), 5), bool(y[0, 0, 4, 4] > y[0, 0, 4, 5] > y[0, 0, 4, 6])
    (1.0, True)
    """
    radius = max(1, int(3.0 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def discriminator_channels(view: str = D_VIEW) -> int:
    """Input channels of a discriminator that sees ``view`` (:data:`DISCRIMINATOR_CHANNELS`; the
    one view rawcv trains with is the only one it knows)."""
    if view != D_VIEW:
        raise TrainingError(f"unknown discriminator view {view!r}: rawcv trains discriminators on {D_VIEW!r}")
    return DISCRIMINATOR_CHANNELS


def discriminator_pair(packed: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``concat(condition, image, detail)`` for the PatchGAN (:data:`DISCRIMINATOR_CHANNELS`): the
    packed raw (4) upsampled (nearest) to the image's resolution and the RGB image (3), both as
    :func:`display_view`, and the image's fine-detail band (3), ``v - gaussian_blur(v, D_DETAIL_SIGMA)``
    of its display values ``v``."""
    cond = F.interpolate(packed.float(), size=image.shape[-2:], mode="nearest")
    shown = display_view(image)
    return torch.cat([display_view(cond), shown, shown - gaussian_blur(shown, D_DETAIL_SIGMA)], dim=1)


def gan_criterion(kind: str):
    """``(prediction logits, is_real) -> loss``: BCE-with-logits or least squares (LSGAN)."""
    if kind == "bce":
        return lambda pred, real: F.binary_cross_entropy_with_logits(pred.float(), torch.full_like(
            pred.float(), 1.0 if real else 0.0))
    if kind == "lsgan":
        return lambda pred, real: F.mse_loss(pred.float(), torch.full_like(pred.float(), 1.0 if real else 0.0))
    raise TrainingError(f"unknown GAN loss {kind!r}: expected one of {', '.join(GAN_LOSSES)}")


# --------------------------------------------------------------------------------------------
# The discriminator in a checkpoint
# --------------------------------------------------------------------------------------------

def discriminator_config(discriminator: nn.Module) -> dict:
    """The discriminator's record in a checkpoint config: its ``rawcv_config`` (what rebuilds it)
    and the ``view`` it sees its pairs in (:data:`DISCRIMINATOR_VIEW`)."""
    return {**getattr(discriminator, "rawcv_config", {}), "view": dict(DISCRIMINATOR_VIEW)}


def describe_view(view: dict) -> str:
    """A view record in words, e.g. ``display+detail (extended range, detail gain 1)``.

    Examples
    --------
    >>> describe_view({"name": "display", "value_range": "clipped", "detail_gain": None})
    'display (clipped range)'
    """
    gain = view.get("detail_gain")
    return f"{view.get('name')} ({view.get('value_range')} range" + (f", detail gain {gain:g})" if gain else ")")


def require_trained_view(ckpt: dict) -> None:
    """Refuse to go on training a GAN whose discriminator saw its pairs in another view than
    :data:`DISCRIMINATOR_VIEW` (a run of an older rawcv): its weights learnt to judge inputs it
    would no longer be given. Its generator still predicts, evaluates and starts new runs."""
    disc = ckpt["config"].get("discriminator")
    if disc and disc.get("view") != DISCRIMINATOR_VIEW:
        raise CheckpointError(f"{ckpt.get('path', '<checkpoint>')}: its discriminator saw the pairs as "
                              f"{describe_view(disc.get('view') or {})}, a view rawcv no longer trains; start a new "
                              "run from it with --init (the generator carries over, the discriminator starts "
                              "afresh)")


def load_discriminator_state(discriminator: nn.Module, ckpt: dict) -> None:
    """Load ``ckpt["discriminator"]`` into ``discriminator`` (a clear error if it does not fit)."""
    try:
        discriminator.load_state_dict(ckpt["discriminator"])
    except RuntimeError as exc:
        raise CheckpointError(f"{ckpt.get('path', '<checkpoint>')}: its discriminator does not fit "
                              f"({str(exc).splitlines()[0]})") from None


def build_discriminator(ckpt: dict, device="cpu") -> nn.Module:
    """The discriminator of a GAN ``last.pt`` (rebuilt from its config, weights loaded)."""
    from ...models import create_model

    cfg = ckpt["config"].get("discriminator")
    if "discriminator" not in ckpt or not cfg:
        raise CheckpointError(f"{ckpt.get('path', '<checkpoint>')}: holds no discriminator")
    d = create_model(cfg["name"], in_chans=cfg.get("in_chans"), num_classes=cfg.get("num_classes"),
                     kwargs=cfg.get("kwargs") or {})
    load_discriminator_state(d, ckpt)
    return d.to(device)


__all__ = ["display_view", "gaussian_blur", "discriminator_channels", "discriminator_pair", "gan_criterion",
           "discriminator_config", "describe_view", "require_trained_view", "load_discriminator_state",
           "build_discriminator", "DEFAULT_DISCRIMINATOR", "DEFAULT_DISCRIMINATOR_KWARGS", "D_VIEW", "DEFAULT_D_VIEW",
           "D_DETAIL_SIGMA", "DISCRIMINATOR_VIEW", "DISCRIMINATOR_CHANNELS", "GAN_LOSSES"]
