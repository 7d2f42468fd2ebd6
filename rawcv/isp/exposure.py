"""Exposure: scale linear values by ``2 ** stops`` (a digital gain, as a camera's exposure
compensation or DNG's ``BaselineExposure`` does), with the stops given (``manual``) or chosen
from the image (``auto``, dcraw's and LibRaw's auto-brightness rule).

The automatic rule
------------------
dcraw (and LibRaw, and rawpy's ``postprocess`` unless ``no_auto_bright=True``) brightens its
output so that the value below which ``1 - auto_bright_thr`` of the pixels lie (0.99 with the
default ``auto_bright_thr = 0.01``), taken per colour channel and the largest over the channels,
maps to white. The ``auto`` method is that rule with named knobs:

* the ``percentile`` (default 99) of each colour channel: NumPy's default ("linear")
  percentile, computed here from the two order statistics around the virtual index
  ``(m - 1) * percentile / 100`` and interpolated in float64, so the NumPy and torch twins get
  the same number bit for bit;
* the largest of the three (a mosaic's channels are read through its CFA: each colour's
  samples, both greens together, so the rule is the RGB rule before demosaicing);
* the stops that take it to ``level`` (default 1.0, white): ``log2(level / high)``, rounded to
  :data:`EV_STEP` (1/1000 EV) and limited to ``[-max_stops, max_stops]`` (default 8: dcraw
  never lets the white point fall below histogram bin 32 of 8192, a gain of 256);
* a frame whose high value is not positive (all black, or black up to the percentile) gets
  0 EV: no gain is estimated from nothing.

Every value counts, clipped highlights too, as in dcraw's histogram: a frame with more than
1 % of its values at the white point gets (almost) no gain. Every backend records the stops it
applied in the run's record (the sidecar): ``{"stage": "exposure", "method": "auto", "stops": ...}``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..errors import PipelineError
from ..meta import bayer_positions_of, validate_cfa
from ._validate import as_float_image
from .frame import MOSAIC, RGB
from .stage import FusedOp, Fusion, Param, Stage, register_stage

EV_STEP = 0.001          # auto stops are rounded to this (as decimals: ``round(ev, 3)``)
_EV_DECIMALS = 3
PERCENTILE = 99.0        # dcraw's default: auto_bright_thr = 0.01
LEVEL = 1.0
MAX_STOPS = 8.0          # dcraw's floor of the white point: histogram bin 32 of 8192 (x 256)


def exposure_gain(stops: float) -> np.float32:
    """The float32 gain of ``stops`` (every backend multiplies by this very number).

    Examples
    --------
    >>> float(exposure_gain(-2.0))
    0.25
    """
    stops = float(stops)
    if not np.isfinite(stops):
        raise ValueError(f"exposure stops must be finite, got {stops!r}")
    return np.float32(2.0 ** stops)


@njit(cache=True, nogil=True)
def _exposure_row(src_row, gain, out_row):
    for j in range(src_row.size):
        out_row[j] = src_row[j] * gain


@njit(cache=True, nogil=True)
def _exposure_fused_row(src_row, y, args, scratch, out_row):
    """Fused-pass row function of :class:`Exposure`: ``args[0]`` is the gain."""
    _exposure_row(src_row, args[0], out_row)


@njit(parallel=True, cache=True, nogil=True)
def _exposure_kernel(src, gain, out):
    # src, out: (h, n) rows
    for y in prange(src.shape[0]):
        _exposure_row(src[y], gain, out[y])


def apply_exposure(image, *, stops: float) -> np.ndarray:
    """Multiply a linear mosaic or RGB image by ``2 ** stops``.

    Examples
    --------
    >>> import numpy as np
    >>> apply_exposure(np.full((2, 2), 0.25, np.float32), stops=1.0).tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    """
    arr = as_float_image(image)
    out = np.empty_like(arr)
    h = arr.shape[0]
    _exposure_kernel(arr.reshape(h, -1), exposure_gain(stops), out.reshape(h, -1))
    return out


# --- the automatic rule ---------------------------------------------------------------------------

def check_auto_params(percentile: float, level: float, max_stops: float) -> None:
    """Raise ``ValueError`` unless ``0 < percentile <= 100``, ``level > 0`` and ``max_stops >= 0``
    (all finite)."""
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    if not (0 < level < math.inf):
        raise ValueError(f"level must be a positive finite number, got {level!r}")
    if not (0 <= max_stops < math.inf):
        raise ValueError(f"max_stops must be a finite number >= 0, got {max_stops!r}")


def percentile_index(m: int, percentile: float) -> tuple:
    """Where NumPy's default ("linear") ``percentile`` of ``m`` sorted values lies: the 0-based
    index ``lo`` of the lower order statistic and the weight ``t`` of the next one (``lo`` is
    ``m - 1`` and ``t`` 0 at the top). Shared by the NumPy and torch twins.

    Examples
    --------
    >>> percentile_index(101, 99.0), percentile_index(5, 100.0)
    ((99, 0.0), (4, 0.0))
    """
    virtual = (m - 1) * (float(percentile) / 100.0)
    lo = int(math.floor(virtual))
    if lo >= m - 1:
        return m - 1, 0.0
    return lo, virtual - lo


def interpolate(a: float, b: float, t: float) -> float:
    """NumPy's linear interpolation between neighbouring order statistics ``a <= b`` (its
    ``_lerp``: from the nearer end), in float64. Shared by the NumPy and torch twins."""
    diff = b - a
    return b - diff * (1.0 - t) if t >= 0.5 else a + diff * t


def _percentile(values: np.ndarray, percentile: float) -> float:
    lo, t = percentile_index(values.size, percentile)
    if t == 0.0:
        return float(np.partition(values, lo)[lo])
    part = np.partition(values, (lo, lo + 1))
    return interpolate(float(part[lo]), float(part[lo + 1]), t)


def stops_for(high: float, *, level: float = LEVEL, max_stops: float = MAX_STOPS) -> float:
    """The auto stops that take ``high`` to ``level``: ``log2(level / high)`` rounded to
    :data:`EV_STEP` and limited to ``[-max_stops, max_stops]``; 0 when ``high`` is not a positive
    finite number (an all-black frame gets no gain). Shared by the NumPy and torch twins.

    Examples
    --------
    >>> stops_for(0.25), stops_for(0.3), stops_for(0.0), stops_for(1e-9), stops_for(0.5, level=0.125)
    (2.0, 1.737, 0.0, 8.0, -2.0)
    """
    high = float(high)
    if not (0 < high < math.inf):
        return 0.0
    ev = round(math.log2(float(level) / high), _EV_DECIMALS)
    return min(max(ev, -float(max_stops)), float(max_stops)) + 0.0      # + 0.0: never -0.0


def channel_highs(image, *, cfa=None, percentile: float = PERCENTILE) -> list:
    """The ``percentile`` of each colour channel (R, G, B) as Python floats.

    On an RGB image each channel's values; on a mosaic each colour's CFA samples (``cfa``
    required; both greens together). The percentile is NumPy's default linear one (see
    :func:`percentile_index`).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.tile(np.array([[0.2, 0.4], [0.4, 0.1]], np.float32), (4, 4))
    >>> [round(v, 6) for v in channel_highs(m, cfa="RGGB")]
    [0.2, 0.4, 0.1]
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    arr = as_float_image(image)
    if arr.ndim == 3:
        planes = [arr[..., c].ravel() for c in range(3)]
    else:
        if cfa is None:
            raise ValueError("a mosaic needs its cfa= pattern for automatic exposure")
        cfa = validate_cfa(cfa)
        planes = [np.concatenate([arr[dy::2, dx::2].ravel() for dy, dx in bayer_positions_of(cfa, c)])
                  for c in range(3)]
    return [_percentile(p, percentile) for p in planes]


def auto_exposure_stops(image, *, cfa=None, percentile: float = PERCENTILE, level: float = LEVEL,
                        max_stops: float = MAX_STOPS) -> float:
    """The stops of the ``auto`` method for a linear mosaic (``cfa`` given) or RGB image.

    Parameters
    ----------
    image : array_like
        ``H x W`` mosaic or ``H x W x 3`` RGB, linear (normalised: 1.0 is white).
    cfa : str, optional
        The mosaic's pattern (``"RGGB"`` ...); each colour's percentile is over its own samples.
    percentile : float
        Which percentile of each channel is brought to ``level`` (the largest over the channels).
    level : float
        Where that value goes (1.0: white).
    max_stops : float
        The largest change either way.

    Returns
    -------
    float
        ``log2(level / high)`` rounded to :data:`EV_STEP`, within ``[-max_stops, max_stops]``;
        0.0 for a frame whose ``high`` is not positive (all black).

    Examples
    --------
    >>> import numpy as np
    >>> rgb = np.zeros((10, 10, 3), np.float32)
    >>> rgb[..., 0] = np.linspace(0, 0.25, 100).reshape(10, 10)    # R tops out at 0.25
    >>> auto_exposure_stops(rgb, percentile=100)
    2.0
    >>> auto_exposure_stops(rgb, percentile=100, level=0.5), auto_exposure_stops(np.zeros((4, 4, 3)))
    (1.0, 0.0)
    """
    check_auto_params(percentile, level, max_stops)
    return stops_for(max(channel_highs(image, cfa=cfa, percentile=percentile)), level=level, max_stops=max_stops)


# --- the stage ----------------------------------------------------------------------------------

@register_stage
class Exposure(Stage):
    """Exposure compensation by ``stops`` (``manual``) or chosen from the image (``auto``).

    ``auto`` brings each channel's ``percentile`` (the largest of the three; on a mosaic, over each
    colour's CFA samples) to ``level``, within ``max_stops`` either way, as dcraw's and LibRaw's
    auto-brightness does; see :mod:`rawcv.isp.exposure`. Every backend records the stops applied
    (``stops`` in the run's record). ``stops`` is the ``manual`` method's: with ``auto`` it must
    stay 0 (``level`` moves the result: 0.5 is one stop darker).

    Examples
    --------
    >>> import numpy as np
    >>> from rawcv.meta import CameraMeta, RawImage
    >>> from rawcv.pipeline import Pipeline
    >>> data = np.full((8, 8), 64 + 1000, np.uint16)            # a flat quarter of the range
    >>> raw = RawImage(data, CameraMeta("RGGB", black_level=64, white_level=4064))
    >>> p = Pipeline(["black_level", {"stage": "exposure", "method": "auto"}])
    >>> result = p.run(raw)
    >>> result.record[1]["stops"], float(result.image.max())
    (2.0, 1.0)
    """

    name = "exposure"
    doc = "Exposure: multiply linear values by 2^stops, given (manual) or from the image (auto: dcraw's auto-bright)."
    params = (
        Param("method", "str", "manual", "manual: the stops given; auto: chosen from the image (dcraw's auto-bright)",
              choices=("manual", "auto")),
        Param("stops", "float", 0.0, "manual: exposure change in stops (EV); +1 doubles every value"),
        Param("percentile", "float", PERCENTILE, "auto: the percentile of each channel (largest of the three) "
              "taken to level"),
        Param("level", "float", LEVEL, "auto: where that percentile goes (1.0: white)"),
        Param("max_stops", "float", MAX_STOPS, "auto: the largest change either way, in stops", minimum=0.0),
    )
    accepts = (MOSAIC, RGB)
    linear_only = True

    def check(self):
        try:
            check_auto_params(self.percentile, self.level, self.max_stops)
        except ValueError as exc:
            raise PipelineError(f"stage 'exposure': {exc}") from None
        if self.method == "auto" and self.stops != 0:
            raise PipelineError("stage 'exposure': method 'auto' chooses the stops itself (the record says "
                                "which); give stops with method 'manual', or move the result with level")

    def resolve_stops(self, data, kind, meta) -> float:
        """The stops this stage applies to ``data`` (a ``kind`` frame): its own, or the auto rule's."""
        if self.method == "manual":
            return self.stops
        return auto_exposure_stops(data, cfa=meta.cfa if kind == MOSAIC else None, percentile=self.percentile,
                                   level=self.level, max_stops=self.max_stops)

    def apply(self, frame):
        stops = self.resolve_stops(frame.data, frame.kind, frame.meta)
        self.note(frame.notes, stops=stops)
        return frame.with_data(apply_exposure(frame.data, stops=stops))

    def fusion(self, kind):
        # like white balance's estimators: the auto rule reads a mosaic input once before the pass;
        # on RGB that input would be a demosaiced frame, which the pass exists not to materialise
        if self.method == "manual" or kind == MOSAIC:
            return Fusion.POINTWISE
        return None

    def fused_op(self, ctx):
        data = ctx.data() if self.method == "auto" else None
        stops = self.resolve_stops(data, ctx.kind, ctx.meta)
        self.note(ctx.notes, stops=stops)
        return FusedOp(_exposure_fused_row, (exposure_gain(stops),))


__all__ = ["apply_exposure", "exposure_gain", "auto_exposure_stops", "channel_highs", "stops_for",
           "percentile_index", "interpolate", "check_auto_params", "EV_STEP", "Exposure"]
