"""The value that flows between stages: an array plus what is known about it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from ..colorspaces import LINEAR, TransferCurve
from ..meta import CameraMeta

# What an array holds, in the order a pipeline moves through them.
RAW = "raw"            # sensor values of a Bayer mosaic, uint16
RAW_RGB = "raw_rgb"    # sensor values of a linear raw (already RGB), uint16 H x W x 3
MOSAIC = "mosaic"      # float32 mosaic, black removed and normalised
RGB = "rgb"            # float32 linear RGB
DISPLAY = "display"    # float32 tone-encoded RGB (after gamma)
QUANTIZED = "quantized"  # uint8 / uint16 RGB


@dataclass(frozen=True)
class ColorSpace:
    """What an output's numbers mean: its primaries and its transfer curve.

    ``primaries`` names them: an output space's title (``"sRGB"``, ``"Display P3"``, ...,
    :data:`rawcv.colorspaces.OUTPUT_SPACES`), ``"camera RGB"`` (the sensor's own) or ``"custom
    RGB"`` (a matrix the user gave). ``curve`` is the transfer curve
    (:class:`~rawcv.colorspaces.TransferCurve`). ``standard_curve`` is the name of the curve
    that the primaries' own standard defines (None: none does), so that a label can say
    ``"sRGB"`` alone for sRGB primaries with the sRGB curve. ``to_xyz`` (3 x 3, RGB -> XYZ
    relative to ``white``, an XYZ triple) is what an ICC profile needs; None where it is not
    known (custom matrices, a file without a colour matrix). :attr:`label` is what sidecars show,
    :attr:`transfer` the curve's own label.

    Examples
    --------
    >>> from rawcv.colorspaces import transfer_curve
    >>> srgb = ColorSpace("sRGB", transfer_curve("srgb"), standard_curve="srgb")
    >>> srgb.label, ColorSpace("sRGB", standard_curve="srgb").label
    ('sRGB', 'linear sRGB')
    >>> ColorSpace("camera RGB", transfer_curve("power", 2.2)).label
    'camera RGB with gamma 2.2'
    >>> ColorSpace("ProPhoto RGB", transfer_curve("srgb"), standard_curve="prophoto").label
    'ProPhoto RGB primaries with the sRGB curve'
    """

    primaries: str = "camera RGB"
    curve: TransferCurve = LINEAR
    standard_curve: Optional[str] = None
    to_xyz: Optional[tuple] = None
    white: Optional[tuple] = None

    @property
    def transfer(self) -> str:
        """``"linear"``, ``"sRGB"``, ``"gamma G"``, ...: the curve alone (:attr:`TransferCurve.label`)."""
        return self.curve.label

    @property
    def label(self) -> str:
        if self.curve.is_linear:
            return f"linear {self.primaries}"
        if self.standard_curve is not None and self.curve.name == self.standard_curve:
            return self.primaries
        primaries = self.primaries if self.standard_curve is None else f"{self.primaries} primaries"
        return f"{primaries} with {self.curve.phrase}"


CAMERA_LINEAR = ColorSpace()


@dataclass
class Frame:
    data: np.ndarray
    kind: str
    meta: CameraMeta
    saturation: Optional[np.ndarray] = None
    notes: list = field(default_factory=list)

    @property
    def cfa(self):
        return self.meta.cfa

    def with_data(self, data, kind=None, **changes) -> "Frame":
        return replace(self, data=data, kind=kind or self.kind, **changes)

    @classmethod
    def from_raw(cls, raw) -> "Frame":
        return cls(data=raw.data, kind=RAW_RGB if raw.is_linear else RAW, meta=raw.meta)
