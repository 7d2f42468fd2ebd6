"""The value that flows between stages: an array plus what is known about it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

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

    ``primaries`` is ``"sRGB"``, ``"camera RGB"`` (the sensor's own, no colour matrix applied) or
    ``"custom RGB"`` (a matrix the user gave); ``transfer`` is ``"linear"``, ``"sRGB"`` (the sRGB
    curve) or ``"gamma G"`` (a power law). :attr:`label` is what sidecars show.

    Examples
    --------
    >>> ColorSpace("sRGB", "sRGB").label, ColorSpace("sRGB").label, ColorSpace("camera RGB", "gamma 2.2").label
    ('sRGB', 'linear sRGB', 'camera RGB with gamma 2.2')
    """

    primaries: str = "camera RGB"
    transfer: str = "linear"

    @property
    def label(self) -> str:
        if self.transfer == "linear":
            return f"linear {self.primaries}"
        if self.primaries == "sRGB" and self.transfer == "sRGB":
            return "sRGB"
        curve = "the sRGB curve" if self.transfer == "sRGB" else self.transfer
        primaries = "sRGB primaries" if self.primaries == "sRGB" else self.primaries
        return f"{primaries} with {curve}"


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
