"""Tone curves: the transfer curves of the output colour spaces (sRGB, Adobe RGB, ProPhoto's
ROMM, linear) and power-law gamma, and quantisation.

The per-pixel maths lives in the ``_*_scalar`` functions; the array kernels here and the fused
pipeline path both call them, so the two can never drift apart. The curves' definitions (and
their float64 references) are :data:`rawcv.colorspaces.TRANSFER_CURVES`.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
from numba import njit, prange

from ..colorspaces import CURVE_NAMES, TRANSFER_CURVES, transfer_curve
from ._validate import as_float_image
from .frame import DISPLAY, MOSAIC, QUANTIZED, RGB
from .stage import FusedOp, Fusion, Param, Stage, register_stage

CURVES = CURVE_NAMES
# the kernels' curve ids: Adobe RGB's curve is a power law, so it shares the power kernel
_KERNEL_OF_CURVE = {"srgb": 0, "power": 1, "adobe": 1, "prophoto": 2, "linear": 3}
_ROMM = TRANSFER_CURVES["prophoto"]
_ROMM_KNEE = np.float32(_ROMM.linear_knee)           # 1/512
_ROMM_SLOPE = np.float32(1.0 / _ROMM.c)              # 16
_ROMM_EXPONENT = np.float32(1.0 / _ROMM.gamma)       # 1/1.8


@njit(cache=True, nogil=True)
def _srgb_encode_scalar(x):
    if x <= np.float32(0.0031308):
        return np.float32(x * np.float32(12.92))
    return np.float32(np.float32(1.055) * x ** np.float32(1.0 / 2.4) - np.float32(0.055))


@njit(cache=True, nogil=True)
def _srgb_decode_scalar(v):
    if v <= np.float32(0.04045):
        return np.float32(v / np.float32(12.92))
    return np.float32(((v + np.float32(0.055)) / np.float32(1.055)) ** np.float32(2.4))


@njit(cache=True, nogil=True)
def _power_scalar(x, exponent):
    # negative values (noise below black) keep their sign so the curve is invertible
    if x < 0:
        return np.float32(-((-x) ** exponent))
    return np.float32(x ** exponent)


@njit(cache=True, nogil=True)
def _romm_encode_scalar(x):
    # ROMM RGB (ProPhoto): a linear segment below the knee, where the power law's slope would be
    # infinite; both pieces give 1/32 there
    if x < _ROMM_KNEE:
        return np.float32(x * _ROMM_SLOPE)
    return np.float32(x ** _ROMM_EXPONENT)


@njit(cache=True, nogil=True)
def _encode_scalar(x, curve, inv_gamma):
    """curve 0 = sRGB, 1 = power law with exponent ``inv_gamma``, 2 = ROMM, 3 = linear."""
    if curve == 0:
        return _srgb_encode_scalar(x)
    if curve == 2:
        return _romm_encode_scalar(x)
    if curve == 3:
        return np.float32(x)
    return _power_scalar(x, inv_gamma)


@njit(cache=True, nogil=True)
def _quantize_scalar(v, maxval):
    if not (v > 0):  # NaN too: a defined level rather than an undefined integer cast
        return np.float32(0.0)
    if v >= 1:
        return np.float32(maxval)
    return np.float32(np.floor(v * np.float32(maxval) + np.float32(0.5)))


@njit(parallel=True, cache=True, nogil=True)
def _encode_kernel(src, out, curve, exponent):
    flat_in = src.reshape(-1)
    flat_out = out.reshape(-1)
    for i in prange(flat_in.size):
        flat_out[i] = _encode_scalar(flat_in[i], curve, exponent)


@njit(parallel=True, cache=True, nogil=True)
def _srgb_decode_kernel(src, out):
    flat_in = src.reshape(-1)
    flat_out = out.reshape(-1)
    for i in prange(flat_in.size):
        flat_out[i] = _srgb_decode_scalar(flat_in[i])


@njit(parallel=True, cache=True, nogil=True)
def _quantize_kernel(src, out, maxval):
    flat_in = src.reshape(-1)
    flat_out = out.reshape(-1)
    for i in prange(flat_in.size):
        flat_out[i] = _quantize_scalar(flat_in[i], maxval)


def _check_gamma(gamma: float) -> float:
    gamma = float(gamma)
    if not np.isfinite(gamma) or gamma <= 0:
        raise ValueError(f"gamma must be a positive number, got {gamma!r}")
    return gamma


def gamma_encode(image, *, gamma: float = 2.2) -> np.ndarray:
    """Power-law encoding ``out = image ** (1 / gamma)`` (sign kept for negative values).

    Examples
    --------
    >>> import numpy as np
    >>> float(gamma_encode(np.full((2, 2), 0.25, np.float32), gamma=2.0)[0, 0])
    0.5
    """
    src = as_float_image(image)
    out = np.empty_like(src)
    _encode_kernel(src, out, 1, np.float32(1.0 / _check_gamma(gamma)))
    return out


def gamma_decode(image, *, gamma: float = 2.2) -> np.ndarray:
    """Inverse of :func:`gamma_encode`: ``out = image ** gamma``.

    Examples
    --------
    >>> import numpy as np
    >>> float(gamma_decode(np.full((2, 2), 0.5, np.float32), gamma=2.0)[0, 0])
    0.25
    """
    src = as_float_image(image)
    out = np.empty_like(src)
    _encode_kernel(src, out, 1, np.float32(_check_gamma(gamma)))
    return out


def srgb_encode(image) -> np.ndarray:
    """The sRGB transfer curve (IEC 61966-2-1): linear [0, 1] -> display-encoded [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> round(float(srgb_encode(np.full((2, 2), 0.18, np.float32))[0, 0]), 4)
    0.4614
    """
    src = as_float_image(image)
    out = np.empty_like(src)
    _encode_kernel(src, out, 0, np.float32(1.0))
    return out


def srgb_decode(image) -> np.ndarray:
    """Inverse of :func:`srgb_encode`; accepts uint8 (scaled by 1/255) or float in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> round(float(srgb_decode(np.full((2, 2), 0.5, np.float32))[0, 0]), 4)
    0.214
    """
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / np.float32(255.0)
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / np.float32(65535.0)
    src = as_float_image(arr)
    out = np.empty_like(src)
    _srgb_decode_kernel(src, out)
    return out


def encode(image, *, curve: str = "srgb", gamma: float = 2.2) -> np.ndarray:
    """Apply the named tone curve: one of :data:`CURVES` (``"power"`` with exponent ``1 / gamma``).

    Examples
    --------
    >>> import numpy as np
    >>> out = encode(np.array([[0.001, 0.5], [1.0, 0.0]], np.float32), curve="prophoto")
    >>> np.round(out.astype(np.float64), 4).tolist()
    [[0.016, 0.6804], [1.0, 0.0]]
    """
    src = as_float_image(image)
    out = np.empty_like(src)
    _encode_kernel(src, out, *_curve_args(curve, gamma))
    return out


def _curve_args(curve: str, gamma: float) -> tuple:
    """``(kernel curve id, exponent)`` of a curve: the arguments of ``_encode_scalar``."""
    if curve not in _KERNEL_OF_CURVE:
        raise ValueError(f"unknown tone curve {curve!r}: expected one of {', '.join(CURVES)}")
    if curve == "power":
        exponent = 1.0 / _check_gamma(gamma)
    elif curve == "adobe":
        exponent = 1.0 / TRANSFER_CURVES["adobe"].gamma
    else:
        exponent = 1.0     # not used by the other curves
    return _KERNEL_OF_CURVE[curve], np.float32(exponent)


def quantize(image, *, bits: int = 8) -> np.ndarray:
    """Clip to [0, 1] and round to ``bits`` (8 -> uint8, 16 -> uint16).

    Examples
    --------
    >>> import numpy as np
    >>> quantize(np.array([[0.0, 0.5], [1.0, 2.0]], np.float32)).tolist()
    [[0, 128], [255, 255]]
    """
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits!r}")
    src = as_float_image(image)
    dtype = np.uint8 if bits == 8 else np.uint16
    tmp = np.empty_like(src)
    _quantize_kernel(src, tmp, (1 << bits) - 1)
    return tmp.astype(dtype)


# --- exact table for encode+quantise, used by the fused path -----------------------------------

@njit(cache=True)
def _encode_quantize_scalar(x, curve, exponent, maxval):
    return _quantize_scalar(_encode_scalar(x, curve, exponent), maxval)


@njit(cache=True)
def _f32_from_bits(bits):
    return np.array([bits], dtype=np.int32).view(np.float32)[0]


@njit(cache=True)
def _build_thresholds(curve, exponent, maxval):
    # thresholds[k] = smallest float32 x >= 0 with quantize(encode(x)) >= k, found by bisection
    # over the (monotonic) bit patterns of non-negative float32, so the table reproduces the
    # scalar chain exactly rather than approximately.
    thr = np.zeros(maxval + 2, dtype=np.float32)
    one_bits = np.int32(0x3F800000)
    for k in range(1, maxval + 1):
        lo = np.int32(0)
        hi = one_bits
        while lo < hi:
            mid = np.int32(lo + (hi - lo) // 2)
            if _encode_quantize_scalar(_f32_from_bits(mid), curve, exponent, maxval) >= k:
                hi = mid
            else:
                lo = np.int32(mid + 1)
        thr[k] = _f32_from_bits(lo)
    thr[maxval + 1] = np.inf
    return thr


COARSE_BINS = 16384


def encode_quantize_table(curve: str, gamma: float, bits: int):
    """Tables that turn a linear float32 value into its encoded, quantised level exactly.

    Returns ``(thresholds, coarse)``: ``coarse[i]`` is the level at ``i / COARSE_BINS``; the level of
    ``x`` is found by stepping up from ``coarse[int(x * COARSE_BINS)]`` while ``x >= thresholds[q+1]``.
    """
    curve_id, exponent = _curve_args(curve, gamma)
    maxval = (1 << bits) - 1
    thr = _build_thresholds(curve_id, exponent, maxval)
    edges = (np.arange(COARSE_BINS, dtype=np.float64) / COARSE_BINS).astype(np.float32)
    coarse = (np.searchsorted(thr[1:maxval + 1], edges, side="right")).astype(np.int32)
    return thr, coarse


@njit(cache=True, nogil=True)
def _lookup_level(x, thresholds, coarse, maxval):
    if not (x > 0):  # also catches NaN, which the scalar chain maps to 0
        return 0
    if x >= 1:
        return maxval
    q = coarse[int(x * coarse.size)]
    while q < maxval and x >= thresholds[q + 1]:
        q += 1
    return q


# --- encode + quantise as one table lookup: the fused pass's tone tail -----------------------

@njit(cache=True, nogil=True)
def _float_of_bits(bits):
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


@njit(cache=True, nogil=True)
def _level_of_bits(bits, thresholds, coarse, maxval):
    return _lookup_level(_float_of_bits(bits), thresholds, coarse, maxval)


@njit(cache=True)
def _build_level_bins(shift, thresholds, coarse, maxval):
    """Memoise ``_lookup_level`` over bins of float32 bit patterns (``bits >> shift``).

    Per bin: ``split``, ``low``, ``high`` such that every value in the bin has the level
    ``high if bits >= split else low``. This holds whenever the bin holds at most one step of the
    level function, given two properties ``_lookup_level`` has by construction: it is
    non-decreasing in x (so in bit order on positive floats, and in reverse bit order on
    negative ones), and all NaNs share one level. Every entry is a value of ``_lookup_level``
    itself, so the table repeats it exactly. Returns ok=False if some bin holds more than one step
    (the bins are too coarse for this curve and bit depth).
    """
    nbins = 1 << (32 - shift)
    split = np.zeros(nbins, dtype=np.uint32)
    low = np.zeros(nbins, dtype=np.uint16)
    high = np.zeros(nbins, dtype=np.uint16)
    width = 1 << shift
    for b in range(nbins):
        lo = b * width
        hi = lo + width - 1
        a = _level_of_bits(lo, thresholds, coarse, maxval)
        z = _level_of_bits(hi, thresholds, coarse, maxval)
        if lo == 0x7F800000 or lo == 0xFF800000:
            # +-inf, then NaNs only: two pieces whatever their levels
            s = lo + 1
            z = _level_of_bits(s, thresholds, coarse, maxval)
            if _level_of_bits(hi, thresholds, coarse, maxval) != z:
                return split, low, high, False
        elif a == z:
            s = hi  # constant: high == low, the split does not matter
        elif abs(z - a) == 1:
            # the first bit pattern with the level of the bin's end, by bisection
            l, r = lo + 1, hi
            while l < r:
                mid = (l + r) // 2
                if _level_of_bits(mid, thresholds, coarse, maxval) == z:
                    r = mid
                else:
                    l = mid + 1
            s = l
        else:
            return split, low, high, False
        split[b] = s
        low[b] = a
        high[b] = z
    return split, low, high, True


LEVEL_BIN_SHIFTS = (16, 15, 14)   # 64 Ki .. 256 Ki bins; the first whose bins hold one step each
_NO_BINS = (np.uint32(0), np.zeros(1, np.uint32), np.zeros(1, np.uint16), np.zeros(1, np.int32))


@lru_cache(maxsize=8)
def level_tables(curve: str, gamma: float, bits: int):
    """``(thresholds, coarse, bins)`` of :func:`encode_quantize_table` plus its memo table
    ``bins = (shift, split, low, step)`` (shift 0: none fits; look each value up instead)."""
    thr, coarse = encode_quantize_table(curve, gamma, bits)
    maxval = (1 << bits) - 1
    for shift in LEVEL_BIN_SHIFTS:
        split, low, high, ok = _build_level_bins(shift, thr, coarse, maxval)
        if ok:
            small = maxval <= 255
            step = high.astype(np.int32) - low.astype(np.int32)
            return thr, coarse, (np.uint32(shift), split, low.astype(np.uint8 if small else np.uint16),
                                 step.astype(np.int16 if small else np.int32))
    return thr, coarse, _NO_BINS


@njit(cache=True, nogil=True)
def _levels_row(src_row, shift, split, low, step, out_row):
    # _lookup_level through its memo table (see _build_level_bins): a few loads and integer
    # operations per value, no branch (a select here compiles to a branch that real images
    # mispredict)
    bits = src_row.view(np.uint32)
    for j in range(bits.size):
        v = bits[j]
        k = v >> shift
        out_row[j] = low[k] + step[k] * (v >= split[k])


@njit(cache=True, nogil=True)
def _encode_fused_row(src_row, y, args, scratch, out_row):
    """Fused-pass row function of :class:`Gamma`: ``args`` are (curve id, exponent)."""
    curve, exponent = args
    for j in range(src_row.size):
        out_row[j] = _encode_scalar(src_row[j], curve, exponent)


@njit(cache=True, nogil=True)
def _quantize_fused_row(src_row, y, args, scratch, out_row):
    """Fused-pass row function of :class:`Quantize`: ``args[0]`` is the largest level."""
    maxval = args[0]
    for j in range(src_row.size):
        out_row[j] = _quantize_scalar(src_row[j], maxval)


@njit(cache=True, nogil=True)
def _encode_quantize_fused_row(src_row, y, args, scratch, out_row):
    """Fused-pass row function of :class:`EncodeQuantize`: the levels of the encoded values,
    through the memo table where one fits, else through the threshold table."""
    shift, split, low, step, thresholds, coarse, maxval = args
    if shift > 0:
        _levels_row(src_row, shift, split, low, step, out_row)
    else:
        for j in range(src_row.size):
            out_row[j] = _lookup_level(src_row[j], thresholds, coarse, maxval)


@njit(parallel=True, cache=True, nogil=True)
def _encode_quantize_kernel(src, args, out):
    # src, out: (h, n) rows
    for y in prange(src.shape[0]):
        _encode_quantize_fused_row(src[y], y, args, src[y, :0], out[y])


def encode_quantize(image, *, curve: str = "srgb", gamma: float = 2.2, bits: int = 8) -> np.ndarray:
    """``quantize(encode(image, curve=curve, gamma=gamma), bits=bits)`` in one pass of table
    lookups, with the same levels bit for bit (:func:`encode_quantize_table`).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0, 0.18], [0.5, 2.0]], np.float32)
    >>> bool(np.array_equal(encode_quantize(x), quantize(encode(x))))
    True
    """
    if curve not in CURVES:
        raise ValueError(f"unknown tone curve {curve!r}: expected one of {', '.join(CURVES)}")
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits!r}")
    src = as_float_image(image)
    out = np.empty(src.shape, dtype=_level_dtype(bits))
    h = src.shape[0]
    _encode_quantize_kernel(src.reshape(h, -1), _level_args(curve, gamma, bits), out.reshape(h, -1))
    return out


def _level_args(curve: str, gamma: float, bits: int) -> tuple:
    """The row function's arguments: memo table, threshold tables, largest level."""
    thr, coarse, bins = level_tables(curve, float(_check_gamma(gamma)), bits)
    return (*bins, thr, coarse, (1 << bits) - 1)


# --- the stages -------------------------------------------------------------------------------

def _level_dtype(bits: int):
    return np.uint8 if bits == 8 else np.uint16


@register_stage
class Gamma(Stage):
    name = "gamma"
    doc = ("Tone curve: the sRGB, Adobe RGB (563/256), ProPhoto (ROMM) or linear transfer curve, or a power "
           "law 1/gamma.")
    params = (
        Param("curve", "str", "srgb", "transfer curve (each output colour space's own: sRGB for srgb, display-p3, "
                                      "xyz and camera)", choices=CURVES),
        Param("gamma", "float", 2.2, "exponent of the power law", minimum=0.1),
    )
    accepts = (RGB, MOSAIC)
    encodes = True

    def produces(self, kind):
        return DISPLAY

    def color_space(self, space, meta):
        return replace(space, curve=transfer_curve(self.curve, self.gamma))

    @property
    def exponent(self) -> np.float32:
        """The exponent the curve's kernels take (1 for the curves that have their own kernel)."""
        return _curve_args(self.curve, self.gamma)[1]

    def apply(self, frame):
        return frame.with_data(encode(frame.data, curve=self.curve, gamma=self.gamma), DISPLAY)

    def fusion(self, kind):
        return Fusion.POINTWISE

    def fused_op(self, ctx):
        return FusedOp(_encode_fused_row, _curve_args(self.curve, self.gamma))

    def fuse_with(self, following):
        if isinstance(following, Quantize):
            return EncodeQuantize(self, following)
        return None


@register_stage
class Quantize(Stage):
    name = "quantize"
    doc = "Clip to [0, 1] and round to 8 or 16 bits."
    params = (Param("bits", "int", 8, "output bit depth", choices=(8, 16)),)
    accepts = (RGB, DISPLAY, MOSAIC)

    def produces(self, kind):
        return QUANTIZED

    def apply(self, frame):
        return frame.with_data(quantize(frame.data, bits=self.bits), QUANTIZED)

    def fusion(self, kind):
        return Fusion.POINTWISE

    def fused_op(self, ctx):
        return FusedOp(_quantize_fused_row, ((1 << self.bits) - 1,), dtype=_level_dtype(self.bits))


class EncodeQuantize(Stage):
    """A :class:`Gamma` directly followed by a :class:`Quantize`, as one step: each value's level
    from rawcv's exact threshold table (:func:`encode_quantize_table`) instead of a power and a
    rounding, with the same levels bit for bit. Schedules build it through
    :meth:`Gamma.fuse_with`; it is not a pipeline stage of its own."""

    name = "gamma+quantize"

    def __init__(self, gamma: Gamma, quantize_stage: Quantize):
        self.gamma_stage, self.quantize_stage = gamma, quantize_stage
        self.values = {**gamma.values, **quantize_stage.values}

    def produces(self, kind):
        return QUANTIZED

    def apply(self, frame):
        return frame.with_data(encode_quantize(frame.data, curve=self.curve, gamma=self.gamma, bits=self.bits),
                               QUANTIZED)

    def fusion(self, kind):
        return Fusion.POINTWISE

    def fused_op(self, ctx):
        return FusedOp(_encode_quantize_fused_row, _level_args(self.curve, self.gamma, self.bits),
                       dtype=_level_dtype(self.bits))
