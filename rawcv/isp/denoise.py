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
        p = np.arange(count, dtype=np.int64)
        for j, d in enumerate(range(-radius, radius + 1)):
            q = p + d
            q = np.where(q < 0, -q, np.where(q >= count, 2 * count - 2 - q, q))
            table[phase + p * step, j] = phase + q * step
    return table


@njit(cache=True, nogil=True)
def _sort3(a, b, c):
    lo = min(a, b)
    hi = max(a, b)
    return min(lo, c), max(lo, min(hi, c)), max(hi, c)


@njit(cache=True, nogil=True)
def _median9(l0, l1, l2, m0, m1, m2, h0, h1, h2):
    """Median of a 3x3 window from its three sorted columns (lows ``l*``, medians ``m*``, highs
    ``h*``): the median of (max of the lows, median of the medians, min of the highs)."""
    a = max(max(l0, l1), l2)
    b = _sort3(m0, m1, m2)[1]
    z = min(min(h0, h1), h2)
    return _sort3(a, b, z)[1]


#: Samples per chunk of :func:`_median3_row`: its three sorted-column rows stay in L1.
MEDIAN_CHUNK = 2048


@njit(cache=True, nogil=True)
def median3_scratch(d):
    """Scratch rows for :func:`_median3_row` with neighbours ``d`` samples apart."""
    return np.empty((3, MEDIAN_CHUNK + 2 * d), dtype=np.float32)


@njit(cache=True, nogil=True)
def _median3_row(above, row, below, d, cols, out):
    """One output row of the 3x3 median, on flat rows of interleaved samples.

    ``above``, ``row``, ``below`` (1-D, length n >= 2d) are the rows y-1, y, y+1 (already mirrored
    at the image's top and bottom); horizontal neighbours are ``d`` samples apart (3 in an RGB
    row, 2 within one CFA plane of a mosaic row). Each column of three is sorted once, into the
    scratch rows ``cols`` (from :func:`median3_scratch`), chunk by chunk, and serves the three
    windows it belongs to; an output is :func:`_median9` of its three sorted columns. The ``d``
    samples at each end mirror (reflect-101). Loops read shifted views with non-negative indices
    only, so Numba adds no wrap-around arithmetic and LLVM vectorises them. Shared by the
    stand-alone kernel and the fused pipeline path.
    """
    n = row.size
    m = n - 2 * d
    chunk = cols.shape[1] - 2 * d
    for start in range(0, m, chunk):
        c = min(chunk, m - start)
        span = c + 2 * d
        a, r, b = above[start:start + span], row[start:start + span], below[start:start + span]
        lo, mid, hi = cols[0, :span], cols[1, :span], cols[2, :span]
        for j in range(span):
            lo[j], mid[j], hi[j] = _sort3(a[j], r[j], b[j])
        l0, l1, l2 = lo[:c], lo[d:d + c], lo[2 * d:2 * d + c]
        m0, m1, m2 = mid[:c], mid[d:d + c], mid[2 * d:2 * d + c]
        h0, h1, h2 = hi[:c], hi[d:d + c], hi[2 * d:2 * d + c]
        inner = out[d + start:d + start + c]
        for k in range(c):
            inner[k] = _median9(l0[k], l1[k], l2[k], m0[k], m1[k], m2[k], h0[k], h1[k], h2[k])
    for j in range(d):
        for q, p in ((j, j + d), (n - d + j, n - 2 * d + j)):
            # an end sample: its mirrored neighbour p stands on both sides
            lq, mq, hq = _sort3(above[q], row[q], below[q])
            lp, mp, hp = _sort3(above[p], row[p], below[p])
            out[q] = _median9(lp, lq, lp, mp, mq, mp, hp, hq, hp)


@njit(cache=True, nogil=True)
def _mean3_row(above, row, below, d, colsum, out):
    """One output row of the 3x3 mean, laid out like :func:`_median3_row`; float64 sums."""
    n = row.size
    scale = 1.0 / 9
    for j in range(n):
        s = 0.0
        s += above[j]
        s += row[j]
        s += below[j]
        colsum[j] = s
    m = n - 2 * d
    c0, c1, c2 = colsum[:m], colsum[d:d + m], colsum[2 * d:2 * d + m]
    inner = out[d:d + m]
    for k in range(m):
        inner[k] = (0.0 + c0[k] + c1[k] + c2[k]) * scale
    for j in range(d):
        p = j + d
        out[j] = (0.0 + colsum[p] + colsum[j] + colsum[p]) * scale
        q = n - d + j
        p = q - d
        out[q] = (0.0 + colsum[p] + colsum[q] + colsum[p]) * scale


BAND_ROWS = 16


@njit(parallel=True, cache=True, nogil=True)
def _median3_kernel(src, rows, d, out):
    # src, out: (h, n) flat rows
    h = src.shape[0]
    for band in prange((h + BAND_ROWS - 1) // BAND_ROWS):
        cols = median3_scratch(d)
        for y in range(band * BAND_ROWS, min(h, (band + 1) * BAND_ROWS)):
            _median3_row(src[rows[y, 0]], src[y], src[rows[y, 2]], d, cols, out[y])


@njit(parallel=True, cache=True, nogil=True)
def _mean3_kernel(src, rows, d, out):
    h, n = src.shape
    for band in prange((h + BAND_ROWS - 1) // BAND_ROWS):
        colsum = np.empty(n, dtype=np.float64)
        for y in range(band * BAND_ROWS, min(h, (band + 1) * BAND_ROWS)):
            _mean3_row(src[rows[y, 0]], src[y], src[rows[y, 2]], d, colsum, out[y])


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


def _flat_rows(view, out_view):
    """(h, w * channels) views of the input and output, and the step between horizontal
    neighbours in them: 3 in an RGB row, 2 (the next pixel of the same colour) in a mosaic row."""
    h, w, nc = view.shape
    return view.reshape(h, w * nc), out_view.reshape(h, w * nc), (3 if nc == 3 else 2)


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
        src, dst, d = _flat_rows(view, out_view)
        _median3_kernel(src, rows, d, dst)
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
    if size == 3:
        src, dst, d = _flat_rows(view, out_view)
        _mean3_kernel(src, rows, d, dst)
    else:
        _mean_kernel(view, rows, cols, out_view)
    return out


def denoise(image, *, method: str = "median", size: int = 3, cfa=None) -> np.ndarray:
    """Dispatch to :func:`denoise_median` or :func:`denoise_mean` by name."""
    if method == "median":
        return denoise_median(image, size=size, cfa=cfa)
    if method == "mean":
        return denoise_mean(image, size=size, cfa=cfa)
    raise ValueError(f"unknown denoise method {method!r}: expected 'median' or 'mean'")


