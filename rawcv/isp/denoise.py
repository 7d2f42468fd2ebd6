"""Mean and median denoising, 3x3 and 5x5, on RGB images (per channel) or on a Bayer mosaic
(same-colour neighbours only, i.e. each of the four CFA planes filtered on its own).

Borders mirror (reflect-101, SciPy's ``mode="mirror"``, OpenCV's ``BORDER_REFLECT_101``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..meta import validate_cfa
from ._validate import as_float_image
from .frame import MOSAIC, RGB
from .stage import FusedOp, Fusion, Param, Stage, register_stage

SIZES = (3, 5)


def denoise_min_side(size: int, *, mosaic: bool) -> int:
    """The smallest side a ``size`` x ``size`` filter takes: mirroring needs ``radius + 1`` samples
    of every colour plane (a mosaic holds every second one).

    Examples
    --------
    >>> denoise_min_side(3, mosaic=False), denoise_min_side(5, mosaic=True)
    (2, 6)
    """
    step = 2 if mosaic else 1
    return (size // 2 + 1) * step


def _neighbour_table(n: int, radius: int, step: int) -> np.ndarray:
    """Index of the neighbour at offset d (in same-colour steps) of every index, mirrored per plane."""
    table = np.empty((n, 2 * radius + 1), dtype=np.int64)
    if n < denoise_min_side(2 * radius + 1, mosaic=step == 2):
        raise ValueError(f"image too small for a {2 * radius + 1}x{2 * radius + 1} filter")
    for phase in range(step):
        count = len(range(phase, n, step))
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


@njit(cache=True, nogil=True)
def _median3_row(above, row, below, d, out):
    """One output row of the 3x3 median, on flat rows of interleaved samples.

    ``above``, ``row``, ``below`` (1-D, length n >= 2d) are the rows y-1, y, y+1 (already mirrored
    at the image's top and bottom); horizontal neighbours are ``d`` samples apart (3 in an RGB
    row, 2 within one CFA plane of a mosaic row). Each output sorts its three columns of three and
    takes :func:`_median9` of them; the ``d`` samples at each end mirror (reflect-101). The interior
    reads shifted views with non-negative indices only, so the loop has no index arithmetic that
    Numba must wrap around, and LLVM vectorises it. Shared by the stand-alone kernel and the fused
    pipeline path.
    """
    n = row.size
    m = n - 2 * d
    a0, a1, a2 = above[:m], above[d:d + m], above[2 * d:2 * d + m]
    r0, r1, r2 = row[:m], row[d:d + m], row[2 * d:2 * d + m]
    b0, b1, b2 = below[:m], below[d:d + m], below[2 * d:2 * d + m]
    inner = out[d:d + m]
    for k in range(m):
        l0, m0, h0 = _sort3(a0[k], r0[k], b0[k])
        l1, m1, h1 = _sort3(a1[k], r1[k], b1[k])
        l2, m2, h2 = _sort3(a2[k], r2[k], b2[k])
        inner[k] = _median9(l0, l1, l2, m0, m1, m2, h0, h1, h2)
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


@njit(cache=True, nogil=True)
def _median3_fused_row(above, row, below, y, args, scratch, out):
    """Fused-pass row function (``WINDOW``) of the 3 x 3 median on flat RGB rows."""
    _median3_row(above, row, below, 3, out)


@njit(cache=True, nogil=True)
def _mean3_fused_row(above, row, below, y, args, scratch, out):
    """Fused-pass row function (``WINDOW``) of the 3 x 3 mean on flat RGB rows; ``scratch``
    is a float64 row for the column sums."""
    _mean3_row(above, row, below, 3, scratch, out)


BAND_ROWS = 16


@njit(parallel=True, cache=True, nogil=True)
def _median3_kernel(src, rows, d, out):
    # src, out: (h, n) flat rows
    h = src.shape[0]
    for y in prange(h):
        _median3_row(src[rows[y, 0]], src[y], src[rows[y, 2]], d, out[y])


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


def _prepare(image, size, cfa, out=None):
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
    if out is None:
        out = np.empty_like(arr)
    else:
        _check_out(out, arr, image)
    return view, rows, cols, out, (out if out.ndim == 3 else out[:, :, None])


def _check_out(out, arr, image):
    """``out`` must be a separate C-contiguous float32 array of the image's shape: the filters
    read neighbours of every pixel, so writing into the input (or a view of it) would corrupt them."""
    if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != arr.shape:
        got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"out must be a float32 array of shape {arr.shape}, got {got}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable")
    if np.shares_memory(out, arr) or (isinstance(image, np.ndarray) and np.shares_memory(out, image)):
        raise ValueError("out must not overlap the input image (the filter reads neighbours of every pixel)")


def _flat_rows(view, out_view):
    """(h, w * channels) views of the input and output, and the step between horizontal
    neighbours in them: 3 in an RGB row, 2 (the next pixel of the same colour) in a mosaic row."""
    h, w, nc = view.shape
    return view.reshape(h, w * nc), out_view.reshape(h, w * nc), (3 if nc == 3 else 2)


def denoise_median(image, *, size: int = 3, cfa=None, out=None) -> np.ndarray:
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
    out : ndarray, optional
        A float32 array of the image's shape to write into (e.g. reused across a batch, which
        saves the kernel zeroing fresh pages for every image); must not overlap ``image``.

    Returns
    -------
    ndarray
        The filtered image (``out`` where given).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((5, 5, 3), np.float32); img[2, 2] = 1.0   # a hot pixel
    >>> float(denoise_median(img).max())
    0.0
    """
    view, rows, cols, out, out_view = _prepare(image, size, cfa, out)
    if size == 3:
        src, dst, d = _flat_rows(view, out_view)
        _median3_kernel(src, rows, d, dst)
    else:
        _median_window_kernel(view, rows, cols, out_view)
    return out


def denoise_mean(image, *, size: int = 3, cfa=None, out=None) -> np.ndarray:
    """Box (mean) filter, ``size`` x ``size``, per RGB channel or per CFA plane of a mosaic.

    Parameters are those of :func:`denoise_median`.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((5, 5, 3), np.float32); img[2, 2] = 9.0
    >>> float(denoise_mean(img)[2, 2, 0])
    1.0
    """
    view, rows, cols, out, out_view = _prepare(image, size, cfa, out)
    if size == 3:
        src, dst, d = _flat_rows(view, out_view)
        _mean3_kernel(src, rows, d, dst)
    else:
        _mean_kernel(view, rows, cols, out_view)
    return out


def denoise(image, *, method: str = "median", size: int = 3, cfa=None, out=None) -> np.ndarray:
    """Dispatch to :func:`denoise_median` or :func:`denoise_mean` by name."""
    if method == "median":
        return denoise_median(image, size=size, cfa=cfa, out=out)
    if method == "mean":
        return denoise_mean(image, size=size, cfa=cfa, out=out)
    raise ValueError(f"unknown denoise method {method!r}: expected 'median' or 'mean'")




# --- the stage --------------------------------------------------------------------------------

@register_stage
class Denoise(Stage):
    name = "denoise"
    doc = "Mean or median filter, 3x3 or 5x5; on a mosaic, same-colour neighbours only."
    params = (
        Param("method", "str", "median", "filter", choices=("median", "mean")),
        Param("size", "int", 3, "window size", choices=SIZES),
    )
    accepts = (MOSAIC, RGB)

    def min_side(self, kind):
        return denoise_min_side(self.size, mosaic=kind == MOSAIC)

    def apply(self, frame):
        cfa = frame.cfa if frame.kind == MOSAIC else None
        return frame.with_data(denoise(frame.data, method=self.method, size=self.size, cfa=cfa))

    def fusion(self, kind):
        # a 5 x 5 window, or same-colour neighbours two rows away on a mosaic, needs more rows
        # than the fused pass keeps
        return Fusion.WINDOW if kind == RGB and self.size == 3 else None

    def fused_op(self, ctx):
        if self.method == "median":
            return FusedOp(_median3_fused_row)
        return FusedOp(_mean3_fused_row, scratch=np.float64)
