"""A capture (or an array) as the tensor a network takes: packed Bayer planes or linear RGB
(the layouts of :mod:`rawcv.torch.tensors`)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..meta import RawImage
from .device import resolve_device
from .isp import demosaic_bilinear, subtract_black_level
from .tensors import LAYOUTS, pack, sensor_tensor


def _even_crop_raw(raw: RawImage) -> RawImage:
    h, w = raw.height & ~1, raw.width & ~1
    if (h, w) == (raw.height, raw.width):
        return raw
    return RawImage(raw.data[:h, :w], raw.meta, raw.path)


def to_tensor(raw_or_image, layout: Optional[str] = None, *, cfa: Optional[str] = None, device=None) -> torch.Tensor:
    """A float32 tensor in the ``"packed"`` or ``"rgb"`` layout (see the module docstring).

    Parameters
    ----------
    raw_or_image : RawImage, ndarray or Tensor
        * a Bayer :class:`~rawcv.meta.RawImage`: cropped to even height and width (origin kept,
          so the CFA is unchanged) then ``"packed"``: black level removed per CFA position and
          normalised by ``white - black`` (no clipping), ``4 x H/2 x W/2`` in the order R, G1,
          G2, B; or ``"rgb"``: ``3 x H x W`` from rawcv's ``linear`` pipeline (NumPy backend).
        * a linear (demosaiced) ``RawImage``: ``"rgb"`` only, through the ``linear`` pipeline.
        * an ``H x W x 3`` float array: ``3 x H x W`` (``"rgb"``), values as they are.
        * an ``H x W`` normalised float mosaic with ``cfa``: ``"packed"`` (even size required),
          or ``"rgb"`` by the torch bilinear demosaic.
    layout : {"packed", "rgb"}, optional
        Default: ``"packed"`` for mosaics, ``"rgb"`` for RGB input.
    cfa : str, optional
        The pattern of a bare mosaic array (ignored for a ``RawImage``, which carries its own).
    device : str or torch.device, optional
        Where the tensor goes (``"auto"``: CUDA when available).

    Examples
    --------
    >>> import numpy as np
    >>> to_tensor(np.zeros((4, 6, 3), np.float32)).shape
    torch.Size([3, 4, 6])
    >>> to_tensor(np.arange(16, dtype=np.float32).reshape(4, 4), cfa="RGGB")[:, 0, 0].tolist()
    [0.0, 1.0, 4.0, 5.0]
    """
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    dev = None if device is None else resolve_device(device)
    if isinstance(raw_or_image, RawImage):
        out = _raw_image_tensor(raw_or_image, layout)
    else:
        arr = raw_or_image
        t = arr if isinstance(arr, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        if not t.is_floating_point():
            t = t.float()
        if t.dim() == 3 and t.shape[-1] == 3:
            if layout == "packed":
                raise ValueError("an RGB image cannot be packed: packing takes a Bayer mosaic")
            out = t.permute(2, 0, 1).contiguous()
        elif t.dim() == 2:
            if cfa is None:
                raise ValueError("a bare mosaic needs its cfa= pattern")
            if layout == "rgb":
                out = demosaic_bilinear(t[None, None], cfa=cfa)[0]
            else:
                out = pack(t, cfa)
        else:
            raise ValueError(f"expected an H x W mosaic or an H x W x 3 image, got shape {tuple(t.shape)}")
    return out if dev is None else out.to(dev)


def _raw_image_tensor(raw: RawImage, layout: Optional[str]) -> torch.Tensor:
    if raw.is_linear:
        if layout == "packed":
            raise ValueError("a linear (demosaiced) raw image cannot be packed")
        layout = "rgb"
    layout = layout or "packed"
    raw = _even_crop_raw(raw)
    if layout == "packed":
        m = raw.meta
        x = subtract_black_level(sensor_tensor(raw, crop_even=False), black=m.black_level, white=m.white_level)
        return pack(x, m.cfa)
    from ..pipeline import load_pipeline

    rgb = load_pipeline("linear")(raw)
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1).contiguous()




__all__ = ["to_tensor"]
