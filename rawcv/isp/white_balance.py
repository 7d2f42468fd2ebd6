"""White balance: gain application and the gray-world / white-world estimators.

Estimators work on the mosaic (or an RGB image) and return gains ``(R, G, B)`` normalised so
that G = 1, so they can be inspected, logged and reused on other frames.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..errors import PipelineError
from ..meta import cfa_code, validate_cfa
from ._validate import as_float_image, as_gains
from .frame import MOSAIC, RGB
from .highlights import WHITE_POINT, Highlights, _clip_scalar
from .stage import FusedOp, Fusion, Param, Stage, register_stage

_NO_CEILING = np.float32(np.inf)


@njit(cache=True, nogil=True)
def _wb_mosaic_row(src_row, g0, g1, ceiling, out_row):
    """One mosaic row: gain ``g0`` on even columns, ``g1`` on odd ones, each product capped at
    ``ceiling`` (inf: not at all; the white point: the ``highlights`` stage in the same loop).
    ``out_row`` may be ``src_row``. Shared by the stand-alone kernel and the fused pipeline path."""
    w = src_row.size
    for k in range(w // 2):
        v0 = src_row[2 * k]
        v1 = src_row[2 * k + 1]
        out_row[2 * k] = _clip_scalar(v0 * g0, ceiling)
        out_row[2 * k + 1] = _clip_scalar(v1 * g1, ceiling)
    if w & 1:
        out_row[w - 1] = _clip_scalar(src_row[w - 1] * g0, ceiling)


@njit(parallel=True, cache=True, nogil=True)
def _wb_mosaic_kernel(src, code, gains, out):
    h = src.shape[0]
    for y in prange(h):
        row = 2 * (y & 1)
        _wb_mosaic_row(src[y], gains[code[row]], gains[code[row + 1]], _NO_CEILING, out[y])


@njit(cache=True, nogil=True)
def _wb_rgb_row(src_row, gains, ceiling, out_row):
    """One flat RGB row (R, G, B interleaved) times the gains, capped at ``ceiling``."""
    for x in range(src_row.size // 3):
        for c in range(3):
            out_row[3 * x + c] = _clip_scalar(src_row[3 * x + c] * gains[c], ceiling)


@njit(parallel=True, cache=True, nogil=True)
def _wb_rgb_kernel(src, gains, out):
    h, w, _ = src.shape
    flat_in = src.reshape(h, 3 * w)
    flat_out = out.reshape(h, 3 * w)
    for y in prange(h):
        _wb_rgb_row(flat_in[y], gains, _NO_CEILING, flat_out[y])


@njit(cache=True, nogil=True)
def _wb_mosaic_fused_row(src_row, y, args, scratch, out_row):
    """Fused-pass row function of :class:`WhiteBalance` on mosaic row ``y``; ``args`` are the
    gain of each 2 x 2 CFA position and the ceiling."""
    gains4, ceiling = args
    p = 2 * (y & 1)
    _wb_mosaic_row(src_row, gains4[p], gains4[p + 1], ceiling, out_row)


@njit(cache=True, nogil=True)
def _wb_rgb_fused_row(src_row, y, args, scratch, out_row):
    """Fused-pass row function of :class:`WhiteBalance` on a flat RGB row."""
    gains, ceiling = args
    _wb_rgb_row(src_row, gains, ceiling, out_row)


@njit(parallel=True, cache=True, nogil=True)
def _channel_sums_kernel(src, code, upper):
    # per-row partial sums so the parallel loop has no shared accumulator
    h, w = src.shape
    partial = np.zeros((h, 3), dtype=np.float64)
    counts = np.zeros((h, 3), dtype=np.float64)
    for y in prange(h):
        row = 2 * (y & 1)
        for x in range(w):
            v = src[y, x]
            if v < upper:
                c = code[row + (x & 1)]
                partial[y, c] += v
                counts[y, c] += 1.0
    return partial.sum(axis=0), counts.sum(axis=0)


def _channel_values(image, cfa):
    """Yield (channel id, 1-D float32 values) per colour, from a mosaic or an RGB image."""
    if image.ndim == 3:
        return [image[..., c].ravel() for c in range(3)]
    m = cfa_code(cfa).reshape(2, 2)
    planes = [[], [], []]
    for dy in range(2):
        for dx in range(2):
            planes[m[dy, dx]].append(image[dy::2, dx::2].ravel())
    return [np.concatenate(p) for p in planes]


def _gains_from_stats(stats, what):
    stats = np.asarray(stats, dtype=np.float64)
    if np.any(~np.isfinite(stats)) or np.any(stats <= 0):
        raise ValueError(f"cannot estimate white balance: channel {what} {stats.tolist()} must be positive")
    return np.array([stats[1] / stats[0], 1.0, stats[1] / stats[2]], dtype=np.float32)


def _prepare(image, cfa):
    arr = as_float_image(image)
    if arr.ndim == 2:
        if cfa is None:
            raise ValueError("a mosaic needs its cfa= pattern to be white balanced")
        cfa = validate_cfa(cfa)
    return arr, cfa


def gains_gray_world(image, *, cfa=None, saturation: float = 1.0) -> np.ndarray:
    """Gray-world gains: scale R and B so their means equal G's mean.

    Pixels at or above ``saturation`` (clipped highlights) are left out of the means.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.tile(np.array([[0.2, 0.4], [0.4, 0.1]], np.float32), (4, 4))
    >>> gains_gray_world(m, cfa="RGGB").tolist()
    [2.0, 1.0, 4.0]
    """
    arr, cfa = _prepare(image, cfa)
    if arr.ndim == 2:
        sums, counts = _channel_sums_kernel(arr, cfa_code(cfa), np.float32(saturation))
    else:
        keep = np.all(arr < saturation, axis=2)
        sums = arr[keep].sum(axis=0, dtype=np.float64)
        counts = np.full(3, keep.sum(), dtype=np.float64)
    for name, count in zip("RGB", counts):
        _require_unclipped(count, name, saturation)
    return _gains_from_stats(sums / counts, "means")


def gains_white_world(image, *, cfa=None, percentile: float = 99.5, saturation: float = 1.0) -> np.ndarray:
    """White-world (max-RGB) gains from a high percentile of each channel, not its single max.

    Using the 99.5th percentile means one hot pixel cannot decide the white point. Values at or
    above ``saturation`` (clipped highlights, whose colour is the sensor's, not the light's) are
    left out (on RGB, pixels with any channel at or above it); a channel with nothing else left
    is an error that says so.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.tile(np.array([[0.2, 0.4], [0.4, 0.1]], np.float32), (4, 4))
    >>> gains_white_world(m, cfa="RGGB").tolist()
    [2.0, 1.0, 4.0]
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    arr, cfa = _prepare(image, cfa)
    if arr.ndim == 3:
        keep = np.all(arr < saturation, axis=2)
        channels = [arr[..., c][keep] for c in range(3)]
    else:
        channels = [v[v < saturation] for v in _channel_values(arr, cfa)]
    highs = []
    for name, values in zip("RGB", channels):
        _require_unclipped(values.size, name, saturation)
        highs.append(np.percentile(values, percentile))
    return _gains_from_stats(highs, f"{percentile:g}th percentiles")


def _require_unclipped(count: int, channel: str, saturation: float) -> None:
    if count == 0:
        raise ValueError(f"cannot estimate white balance: every {channel} value is clipped (at or above "
                         f"{saturation:g}), so the image holds no colour of the light")


def white_balance(image, gains, *, cfa=None) -> np.ndarray:
    """Multiply each colour by its gain, on a mosaic (``cfa`` given) or an RGB image.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.full((2, 2), 0.5, np.float32)
    >>> white_balance(m, (2.0, 1.0, 1.5), cfa="RGGB").tolist()
    [[1.0, 0.5], [0.5, 0.75]]
    """
    arr, cfa = _prepare(image, cfa)
    g = as_gains(gains)
    out = np.empty_like(arr)
    if arr.ndim == 2:
        _wb_mosaic_kernel(arr, cfa_code(cfa), g, out)
    else:
        _wb_rgb_kernel(arr, g, out)
    return out


def white_balance_gray_world(image, *, cfa=None):
    """Gray-world white balance; returns ``(balanced image, gains)``."""
    gains = gains_gray_world(image, cfa=cfa)
    return white_balance(image, gains, cfa=cfa), gains


def white_balance_white_world(image, *, cfa=None, percentile: float = 99.5):
    """White-world white balance; returns ``(balanced image, gains)``."""
    gains = gains_white_world(image, cfa=cfa, percentile=percentile)
    return white_balance(image, gains, cfa=cfa), gains


def normalize_gains(gains, *, green_is_one: bool = True) -> np.ndarray:
    """Validated float32 gains ``(R, G, B)``, scaled so that G = 1 unless ``green_is_one=False``.

    Camera multipliers come in arbitrary scale (and some formats give a fourth, second-green
    value, ignored here). Raises ``ValueError`` unless all three are positive and finite.

    Examples
    --------
    >>> normalize_gains([2.0, 1.0, 1.5, 0.0]).tolist()
    [2.0, 1.0, 1.5]
    >>> normalize_gains([float("nan"), 1.0, 1.0])
    Traceback (most recent call last):
    ...
    ValueError: white-balance gains must be 3 positive finite numbers (R, G, B), got [nan, 1.0, 1.0]
    """
    g = np.asarray(gains, dtype=np.float64).reshape(-1)[:3]
    valid = as_gains(g)
    return as_gains(g / g[1]) if green_is_one else valid



# --- the stage --------------------------------------------------------------------------------

@register_stage
class WhiteBalance(Stage):
    name = "white_balance"
    doc = "Scale R and B: camera (as shot), gray_world, white_world (percentile) or manual gains."
    params = (
        Param("method", "str", "camera", "where the gains come from", choices=("camera", "gray_world", "white_world", "manual")),
        Param("gains", "floats", None, "R, G, B gains for method=manual", length=3),
        Param("percentile", "float", 99.5, "white_world: the percentile taken as white"),
    )
    accepts = (MOSAIC, RGB)
    linear_only = True

    def check(self):
        if self.method == "manual" and self.gains is None:
            raise PipelineError("stage 'white_balance': method 'manual' needs gains: [R, G, B]")
        if self.gains is not None and self.method != "manual":
            raise PipelineError("stage 'white_balance': gains are only used with method 'manual'")
        if self.gains is not None and min(self.gains) <= 0:
            raise PipelineError("stage 'white_balance': gains must be positive")
        if not 0 < self.percentile <= 100:
            raise PipelineError("stage 'white_balance': percentile must be in (0, 100]")

    @property
    def estimates(self) -> bool:
        """Whether the gains come from the image itself rather than from metadata or parameters."""
        return self.method in ("gray_world", "white_world")

    def gains_from_metadata(self, meta) -> np.ndarray:
        """The gains of the ``camera`` and ``manual`` methods, validated: a file's NaN, infinite or
        zero as-shot gains are refused the same way whichever backend runs."""
        try:
            if self.method == "camera":
                return normalize_gains(meta.as_shot_wb)
            return normalize_gains(self.gains, green_is_one=False)
        except ValueError as exc:
            source = "the file's as-shot white balance" if self.method == "camera" else f"method '{self.method}'"
            raise PipelineError(f"stage 'white_balance': {source}: {exc}") from None

    def resolve_gains(self, data, kind, meta) -> np.ndarray:
        """The gains this stage applies to ``data`` (a ``kind`` frame), estimated where the method says so."""
        if not self.estimates:
            return self.gains_from_metadata(meta)
        cfa = meta.cfa if kind == MOSAIC else None
        try:
            if self.method == "gray_world":
                return gains_gray_world(data, cfa=cfa)
            return gains_white_world(data, cfa=cfa, percentile=self.percentile)
        except ValueError as exc:
            raise PipelineError(f"stage 'white_balance': method '{self.method}': {exc}") from None

    def apply(self, frame):
        gains = self.resolve_gains(frame.data, frame.kind, frame.meta)
        self.note(frame.notes, gains=[float(g) for g in gains])
        cfa = frame.cfa if frame.kind == MOSAIC else None
        return frame.with_data(white_balance(frame.data, gains, cfa=cfa))

    def fusion(self, kind):
        # an estimate on a mosaic reads the stage's input once before the pass; on RGB that input
        # would be a demosaiced frame, which the pass exists not to materialise
        if kind == MOSAIC or (kind == RGB and not self.estimates):
            return Fusion.POINTWISE
        return None

    def fused_op(self, ctx, *, ceiling=_NO_CEILING):
        data = ctx.data() if self.estimates else None
        gains = self.resolve_gains(data, ctx.kind, ctx.meta)
        self.note(ctx.notes, gains=[float(g) for g in gains])
        if ctx.kind == MOSAIC:
            return FusedOp(_wb_mosaic_fused_row, (as_gains(gains)[cfa_code(ctx.meta.cfa)], ceiling))
        return FusedOp(_wb_rgb_fused_row, (as_gains(gains), ceiling))

    def fuse_with(self, following):
        # the ceiling in the gain loop is ``clip``; ``reconstruct`` reads neighbours, so it stays a step
        if isinstance(following, Highlights) and following.method == "clip":
            return ClippedWhiteBalance(self, following)
        return None


class ClippedWhiteBalance(Stage):
    """A :class:`WhiteBalance` directly followed by the ``highlights`` stage, as one step: each
    product capped at the white point in the same loop (the same numbers as the two stages one
    after the other). Schedules build it through :meth:`WhiteBalance.fuse_with`."""

    name = "white_balance+highlights"

    def __init__(self, white_balance: WhiteBalance, highlights: Highlights):
        self.white_balance, self.highlights = white_balance, highlights
        self.values = dict(white_balance.values)

    def apply(self, frame):
        return self.highlights.apply(self.white_balance.apply(frame))

    def fusion(self, kind):
        return self.white_balance.fusion(kind)

    def fused_op(self, ctx):
        return self.white_balance.fused_op(ctx, ceiling=WHITE_POINT)
