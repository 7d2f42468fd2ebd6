"""Mean and median denoising, 3x3 and 5x5, on RGB images (per channel) or on a Bayer mosaic
(same-colour neighbours only, i.e. each of the four CFA planes filtered on its own).

Borders mirror (reflect-101, SciPy's ``mode="mirror"``, OpenCV's ``BORDER_REFLECT_101``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..meta import validate_cfa
from ._validate import as_float_image

SIZES = (3, 5)


def _neighbour_table(n: int, radius: int, step: int) -> np.ndarray:
    """Index of the neighbour at offset d (in same-colour steps) of every index, mirrored per plane."""
    table = np.empty((n, 2 * radius + 1), dtype=np.int64)
    for phase in range(step):
        count = len(range(phase, n, step))
        if count < radius + 1:
            raise ValueError(f"image too small for a {2 * radius + 1}x{2 * radius + 1} filter")
        for p in range(count):
            for j, d in enumerate(range(-radius, radius + 1)):
                q = p + d
                q = -q if q < 0 else (2 * count - 2 - q if q >= count else q)
                table[phase + p * step, j] = phase + q * step
    return table


@njit(cache=True, nogil=True)
def _sort3(a, b, c):
    lo = min(a, b)
    hi = max(a, b)
    return min(lo, c), max(lo, min(hi, c)), max(hi, c)


@njit(parallel=True, cache=True, nogil=True)
def _median3_kernel(src, rows, cols, out):
    # Sort each 3-pixel column once per row; the median of 9 is then
    # med3(max of the column minima, med3 of the column medians, min of the column maxima).
    h, w, nc = src.shape
    for y in prange(h):
        ym, yp = rows[y, 0], rows[y, 2]
        lo = np.empty(w, dtype=np.float32)
        mid = np.empty(w, dtype=np.float32)
        hi = np.empty(w, dtype=np.float32)
        for c in range(nc):
            for x in range(w):
                lo[x], mid[x], hi[x] = _sort3(src[ym, x, c], src[y, x, c], src[yp, x, c])
            for x in range(w):
                xm, xp = cols[x, 0], cols[x, 2]
                a = max(max(lo[xm], lo[x]), lo[xp])
                b = _sort3(mid[xm], mid[x], mid[xp])[1]
                z = min(min(hi[xm], hi[x]), hi[xp])
                out[y, x, c] = _sort3(a, b, z)[1]


@njit(parallel=True, cache=True, nogil=True)
def _median_window_kernel(src, rows, cols, out):
    h, w, nc = src.shape
    k = rows.shape[1]
    n = k * k
    for y in prange(h):
        buf = np.empty(n, dtype=np.float32)
        for x in range(w):
            for c in range(nc):
                i = 0
                for a in range(k):
                    for b in range(k):
                        buf[i] = src[rows[y, a], cols[x, b], c]
                        i += 1
                # insertion sort of 25 values: small, branch-predictable, allocation-free
                for i in range(1, n):
                    v = buf[i]
                    j = i - 1
                    while j >= 0 and buf[j] > v:
                        buf[j + 1] = buf[j]
                        j -= 1
                    buf[j + 1] = v
                out[y, x, c] = buf[n // 2]


@njit(parallel=True, cache=True, nogil=True)
def _mean_kernel(src, rows, cols, out):
    # separable: vertical window sums into a row buffer, then horizontal sums of that buffer
    h, w, nc = src.shape
    k = rows.shape[1]
    scale = 1.0 / (k * k)
    for y in prange(h):
        colsum = np.empty(w, dtype=np.float64)
        for c in range(nc):
            for x in range(w):
                s = 0.0
                for a in range(k):
                    s += src[rows[y, a], x, c]
                colsum[x] = s
            for x in range(w):
                s = 0.0
                for b in range(k):
                    s += colsum[cols[x, b]]
                out[y, x, c] = s * scale


def _prepare(image, size, cfa):
    if size not in SIZES:
        raise ValueError(f"denoise size must be 3 or 5, got {size!r}")
    arr = as_float_image(image)
    radius = size // 2
    step = 1
    if arr.ndim == 2:
        if cfa is None:
            raise ValueError("denoising a mosaic needs its cfa= pattern (same-colour neighbours only)")
        validate_cfa(cfa)
        step = 2
    view = arr if arr.ndim == 3 else arr[:, :, None]
    rows = _neighbour_table(arr.shape[0], radius, step)
    cols = _neighbour_table(arr.shape[1], radius, step)
    out = np.empty_like(arr)
    return view, rows, cols, out, (out if out.ndim == 3 else out[:, :, None])


def denoise_median(image, *, size: int = 3, cfa=None) -> np.ndarray:
    """Median filter, ``size`` x ``size``, per RGB channel or per CFA plane of a mosaic.

    Parameters
    ----------
    image : ndarray
        H x W x 3 RGB, or H x W mosaic together with ``cfa``.
    size : {3, 5}
        Window size, in same-colour pixels.
    cfa : str, optional
        Bayer pattern; required for a mosaic (any of the four gives the same result, since each
        2x2 phase is filtered on its own, but naming it guards against passing RGB by mistake).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((5, 5, 3), np.float32); img[2, 2] = 1.0   # a hot pixel
    >>> float(denoise_median(img).max())
    0.0
    """
    view, rows, cols, out, out_view = _prepare(image, size, cfa)
    if size == 3:
        _median3_kernel(view, rows, cols, out_view)
    else:
        _median_window_kernel(view, rows, cols, out_view)
    return out


def denoise_mean(image, *, size: int = 3, cfa=None) -> np.ndarray:
    """Box (mean) filter, ``size`` x ``size``, per RGB channel or per CFA plane of a mosaic.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((5, 5, 3), np.float32); img[2, 2] = 9.0
    >>> float(denoise_mean(img)[2, 2, 0])
    1.0
    """
    view, rows, cols, out, out_view = _prepare(image, size, cfa)
    _mean_kernel(view, rows, cols, out_view)
    return out


def denoise(image, *, method: str = "median", size: int = 3, cfa=None) -> np.ndarray:
    """Dispatch to :func:`denoise_median` or :func:`denoise_mean` by name."""
    if method == "median":
        return denoise_median(image, size=size, cfa=cfa)
    if method == "mean":
        return denoise_mean(image, size=size, cfa=cfa)
    raise ValueError(f"unknown denoise method {method!r}: expected 'median' or 'mean'")


