"""The value that flows between stages: an array plus what is known about it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from ..meta import CameraMeta

# What an array holds, in the order a pipeline moves through them.
RAW = "raw"            # sensor values, uint16 (mosaic, or H x W x 3 for linear raw)
MOSAIC = "mosaic"      # float32 mosaic, black removed and normalised
RGB = "rgb"            # float32 linear RGB
DISPLAY = "display"    # float32 tone-encoded RGB (after gamma)
QUANTIZED = "quantized"  # uint8 / uint16 RGB


@dataclass
class Frame:
    data: np.ndarray
    kind: str
    meta: CameraMeta
    saturation: Optional[np.ndarray] = None
    color_space: str = "camera"
    notes: list = field(default_factory=list)

    @property
    def cfa(self):
        return self.meta.cfa

    def with_data(self, data, kind=None, **changes) -> "Frame":
        return replace(self, data=data, kind=kind or self.kind, **changes)

    @classmethod
    def from_raw(cls, raw) -> "Frame":
        return cls(data=raw.data, kind=RAW, meta=raw.meta)
