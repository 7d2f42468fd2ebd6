"""Tone curves: power-law gamma and the sRGB transfer curve (each with its inverse), and quantisation.

The per-pixel maths lives in the ``_*_scalar`` functions; the array kernels here and the fused
pipeline path both call them, so the two can never drift apart.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._validate import as_float_image

CURVES = ("srgb", "power")


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
def _encode_scalar(x, curve, inv_gamma):
    """curve 0 = sRGB, 1 = power law with exponent ``inv_gamma``."""
    if curve == 0:
        return _srgb_encode_scalar(x)
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
    """Apply the named tone curve (``"srgb"`` or ``"power"`` with ``gamma``)."""
    if curve == "srgb":
        return srgb_encode(image)
    if curve == "power":
        return gamma_encode(image, gamma=gamma)
    raise ValueError(f"unknown tone curve {curve!r}: expected one of {', '.join(CURVES)}")


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
    curve_id = 0 if curve == "srgb" else 1
    exponent = np.float32(1.0 / _check_gamma(gamma))
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
