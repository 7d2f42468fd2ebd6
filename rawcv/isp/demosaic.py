"""Demosaicing of the four Bayer layouts, and its inverse (mosaicking an RGB image).

Three methods: bilinear (each missing colour is the mean of its 2 or 4 nearest same-colour
neighbours, a 3 x 3 window), Malvar-He-Cutler (bilinear corrected by the Laplacian of the
colour the pixel sampled, a 5 x 5 window) and GBTF (edge-directed, in
:mod:`rawcv.isp.gbtf`). Borders are handled by mirroring (reflect-101: index -1 reads
index 1), which keeps the CFA phase.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import numpy as np
from numba import njit, prange

from ..meta import cfa_code, validate_cfa
from ._cfa import pixel_kinds, rgb_of_kind
from .gbtf import GBTF_MIN_SIDE, gbtf_kernel
from ._validate import MIN_SIDE, as_mosaic, as_rgb
from .frame import MOSAIC, RGB
from .stage import FusedOp, Fusion, Param, Stage, register_stage

# the 3 x 3 window needs three rows and columns (mirroring a 2-pixel side would read outside it)
DEMOSAIC_MIN_SIDE = 3
# the 5 x 5 window reaches 2 pixels out: reflect-101 maps -2 to 2, so 3 pixels suffice here too
MALVAR_MIN_SIDE = 3
HALF_MIN_SIDE = 2       # one whole 2 x 2 tile

@njit(cache=True, nogil=True)
def _mirror(i, n):
    if i < 0:
        return -i
    if i >= n:
        return 2 * n - 2 - i
    return i


@njit(cache=True, nogil=True, inline="always")
def _bilinear_pixel(above, row, below, xm, x, xp, kind):
    """(R, G, B) at column ``x`` of ``row``, from its columns ``xm, x, xp`` and the rows ``above``
    and ``below`` it (1-D rows, already mirrored at the image's edges).

    Every candidate mean is computed and the pixel's kind picks among them, so that a loop over
    a row has no branches and vectorises. Shared by the stand-alone kernel and the fused pipeline
    path, which feeds it rows computed on the fly.
    """
    c = row[x]
    cross = (above[x] + below[x] + row[xm] + row[xp]) * np.float32(0.25)
    diag = (above[xm] + above[xp] + below[xm] + below[xp]) * np.float32(0.25)
    h = (row[xm] + row[xp]) * np.float32(0.5)
    v = (above[x] + below[x]) * np.float32(0.5)
    return rgb_of_kind(kind, c, cross, diag, h, v)


@njit(cache=True, nogil=True)
def _demosaic_row(above, row, below, kinds_row, out_row):
    """Demosaic one row from the 1-D rows ``above``, ``row``, ``below`` into the flat
    ``out_row`` (R, G, B interleaved, 3 W); ``kinds_row`` holds the kinds of its even and odd
    columns. The two edge columns mirror; the interior runs with plain offsets."""
    w = row.size
    k_even, k_odd = kinds_row[0], kinds_row[1]
    for x in (0, w - 1):
        r, g, b = _bilinear_pixel(above, row, below, _mirror(x - 1, w), x, _mirror(x + 1, w), kinds_row[x & 1])
        out_row[3 * x] = r
        out_row[3 * x + 1] = g
        out_row[3 * x + 2] = b
    for k in range(w - 2):
        # column x = k + 1, its neighbours k and k + 2: indices Numba need not wrap around
        r, g, b = _bilinear_pixel(above, row, below, k, k + 1, k + 2, k_even if k & 1 else k_odd)
        out_row[3 * k + 3] = r
        out_row[3 * k + 4] = g
        out_row[3 * k + 5] = b


@njit(cache=True, nogil=True)
def _demosaic_fused_row(above, row, below, y, args, scratch, out_row):
    """Fused-pass row function (:class:`~rawcv.isp.stage.Fusion` ``DEMOSAIC``) of
    :class:`Demosaic`: RGB row ``y`` from mosaic rows ``y - 1, y, y + 1``; ``args[0]`` holds
    the pixel kinds of the 2 x 2 tile."""
    kinds = args[0]
    p = 2 * (y & 1)
    _demosaic_row(above, row, below, kinds[p:p + 2], out_row)


@njit(parallel=True, cache=True, nogil=True)
def _demosaic_kernel(src, kinds, out):
    # out: (h, 3 w) flat RGB rows
    h = src.shape[0]
    for y in prange(h):
        row = 2 * (y & 1)
        _demosaic_row(src[_mirror(y - 1, h)], src[y], src[_mirror(y + 1, h)], kinds[row:row + 2], out[y])


BAND_ROWS = 32


@njit(cache=True, nogil=True)
def _ring_slot(ring, tags, r):
    """The slot of a ring buffer of ``k`` rows that holds source row ``r``, and whether it is
    already filled (the rows of a window of ``k`` consecutive rows are distinct mod ``k``, so
    they never evict each other; mirrored rows repeat rows of the window)."""
    slot = r % ring.shape[0]
    fresh = tags[slot] == r
    tags[slot] = r
    return ring[slot], fresh


@njit(cache=True, nogil=True)
def _float_row(src, ring, tags, r):
    """Row ``r`` of the integer mosaic ``src`` as float32 (exactly, as NumPy would convert it),
    converted into its ring slot on first use: no full-size float32 copy of the mosaic."""
    buf, fresh = _ring_slot(ring, tags, r)
    if not fresh:
        for x in range(buf.size):
            buf[x] = np.float32(src[r, x])
    return buf


@njit(parallel=True, cache=True, nogil=True)
def _demosaic_int_kernel(src, kinds, out):
    # out: (h, 3 w); a 3-row ring of converted rows per band of output rows
    h, w = src.shape
    for band in prange((h + BAND_ROWS - 1) // BAND_ROWS):
        ring = np.empty((3, w), dtype=np.float32)
        tags = np.full(3, -1, dtype=np.int64)
        for y in range(band * BAND_ROWS, min(h, (band + 1) * BAND_ROWS)):
            above = _float_row(src, ring, tags, _mirror(y - 1, h))
            row = _float_row(src, ring, tags, y)
            below = _float_row(src, ring, tags, _mirror(y + 1, h))
            tile_row = 2 * (y & 1)
            _demosaic_row(above, row, below, kinds[tile_row:tile_row + 2], out[y])


# --- Malvar-He-Cutler -------------------------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _malvar_pixel(r0, r1, r2, r3, r4, x0, x1, x2, x3, x4, kind):
    """(R, G, B) at column ``x2`` of ``r2`` by Malvar, He and Cutler's 5 x 5 filters, from the
    rows ``r0 .. r4`` (y - 2 .. y + 2) at the columns ``x0 .. x4`` (x - 2 .. x + 2), mirrored.

    The filters, in eighths (Malvar, He, Cutler, ICASSP 2004, fig. 2), share five sums of
    taps: ``n1`` (N + S), ``w1`` (W + E), ``n2`` (NN + SS), ``w2`` (WW + EE), ``d1`` (the four
    diagonal neighbours). Each is symmetric, its taps on the target colour sum to 8 and those
    on the sampled colour to 0, so it is exact on any locally affine colour planes.
    As in :func:`_bilinear_pixel`, every candidate is computed and the kind picks two.
    """
    c = r2[x2]
    n1 = r1[x2] + r3[x2]
    w1 = r2[x1] + r2[x3]
    n2 = r0[x2] + r4[x2]
    w2 = r2[x0] + r2[x4]
    d1 = r1[x1] + r1[x3] + r3[x1] + r3[x3]
    eighth = np.float32(0.125)
    # G at R or B: 4 c + 2 (N + S + W + E) - (NN + SS + WW + EE)
    cross = (c * np.float32(4) + (n1 + w1) * np.float32(2) - (n2 + w2)) * eighth
    # at G, the colour of its row neighbours: 5 c + 4 (W + E) - diagonals - (WW + EE) + (NN + SS) / 2
    along_row = (c * np.float32(5) + w1 * np.float32(4) - d1 - w2 + n2 * np.float32(0.5)) * eighth
    # at G, the colour of its column neighbours: the same filter transposed
    along_col = (c * np.float32(5) + n1 * np.float32(4) - d1 - n2 + w2 * np.float32(0.5)) * eighth
    # R at B, B at R: 6 c + 2 diagonals - 3/2 (NN + SS + WW + EE)
    diag = (c * np.float32(6) + d1 * np.float32(2) - (n2 + w2) * np.float32(1.5)) * eighth
    return rgb_of_kind(kind, c, cross, diag, along_row, along_col)


@njit(cache=True, nogil=True)
def _malvar_row(rows, kinds_row, out_row):
    """Demosaic one row by Malvar-He-Cutler from ``rows``, the five 1-D mosaic rows y - 2 .. y + 2
    (already mirrored at the image's top and bottom; any 1-D float32 arrays, e.g. the slots of a
    5-row ring), into the flat ``out_row`` (R, G, B interleaved, 3 W); ``kinds_row`` holds the
    kinds of its even and odd columns. The two columns at each edge mirror; the interior runs
    with plain offsets."""
    r0, r1, r2, r3, r4 = rows
    w = r2.size
    k_even, k_odd = kinds_row[0], kinds_row[1]
    for x in (0, 1, w - 2, w - 1):      # w == 3 visits column 1 twice, to the same values
        r, g, b = _malvar_pixel(r0, r1, r2, r3, r4, _mirror(x - 2, w), _mirror(x - 1, w), x,
                                _mirror(x + 1, w), _mirror(x + 2, w), kinds_row[x & 1])
        out_row[3 * x] = r
        out_row[3 * x + 1] = g
        out_row[3 * x + 2] = b
    for k in range(w - 4):
        # column x = k + 2 (same parity as k), its window k .. k + 4: no wrap-around to check
        r, g, b = _malvar_pixel(r0, r1, r2, r3, r4, k, k + 1, k + 2, k + 3, k + 4, k_odd if k & 1 else k_even)
        out_row[3 * k + 6] = r
        out_row[3 * k + 7] = g
        out_row[3 * k + 8] = b


@njit(cache=True, nogil=True)
def _malvar_fused_row(r0, r1, r2, r3, r4, y, args, scratch, out_row):
    """Fused-pass row function (``DEMOSAIC``, radius 2) of :class:`Demosaic` with Malvar: RGB
    row ``y`` from mosaic rows ``y - 2 .. y + 2``; ``args[0]`` holds the pixel kinds of the tile."""
    kinds = args[0]
    p = 2 * (y & 1)
    _malvar_row((r0, r1, r2, r3, r4), kinds[p:p + 2], out_row)


@njit(parallel=True, cache=True, nogil=True)
def _malvar_kernel(src, kinds, out):
    # out: (h, 3 w) flat RGB rows
    h = src.shape[0]
    for y in prange(h):
        rows = (src[_mirror(y - 2, h)], src[_mirror(y - 1, h)], src[y], src[_mirror(y + 1, h)],
                src[_mirror(y + 2, h)])
        tile_row = 2 * (y & 1)
        _malvar_row(rows, kinds[tile_row:tile_row + 2], out[y])


@njit(parallel=True, cache=True, nogil=True)
def _malvar_int_kernel(src, kinds, out):
    # as _demosaic_int_kernel, with a 5-row ring for the 5 x 5 window
    h, w = src.shape
    for band in prange((h + BAND_ROWS - 1) // BAND_ROWS):
        ring = np.empty((5, w), dtype=np.float32)
        tags = np.full(5, -1, dtype=np.int64)
        for y in range(band * BAND_ROWS, min(h, (band + 1) * BAND_ROWS)):
            rows = (_float_row(src, ring, tags, _mirror(y - 2, h)), _float_row(src, ring, tags, _mirror(y - 1, h)),
                    _float_row(src, ring, tags, y), _float_row(src, ring, tags, _mirror(y + 1, h)),
                    _float_row(src, ring, tags, _mirror(y + 2, h)))
            tile_row = 2 * (y & 1)
            _malvar_row(rows, kinds[tile_row:tile_row + 2], out[y])


@njit(parallel=True, cache=True, nogil=True)
def _mosaic_kernel(rgb, code, out):
    h, w, _ = rgb.shape
    for y in prange(h):
        row = 2 * (y & 1)
        for x in range(w):
            out[y, x] = rgb[y, x, code[row + (x & 1)]]


def _demosaic(mosaic, cfa, min_side: int, float_kernel, int_kernel, *, shrink: int = 1,
              layout=pixel_kinds) -> np.ndarray:
    """Validate ``mosaic`` and ``cfa``, allocate the H/shrink x W/shrink x 3 result and run a
    method's kernel with the tile's ``layout(code)``: ``int_kernel`` on 8- and 16-bit mosaics
    (converting as it goes), else ``float_kernel`` on a float32 copy."""
    raw = np.asarray(mosaic)
    if raw.ndim == 2 and raw.dtype in (np.uint8, np.uint16) and min(raw.shape) >= min_side:
        arr, code, kernel = np.ascontiguousarray(raw), cfa_code(validate_cfa(cfa)), int_kernel
    else:
        arr, code, _ = as_mosaic(mosaic, cfa)
        if min(arr.shape) < min_side:
            raise ValueError(f"mosaic must be at least {min_side} x {min_side} to demosaic, got shape {arr.shape}")
        kernel = float_kernel
    h, w = arr.shape[0] // shrink, arr.shape[1] // shrink
    out = np.empty((h, w, 3), dtype=np.float32)
    kernel(arr, layout(code), out.reshape(h, -1))
    return out


def demosaic_bilinear(mosaic, *, cfa: str) -> np.ndarray:
    """Bilinear demosaicing: H x W mosaic -> H x W x 3 float32 RGB.

    Parameters
    ----------
    mosaic : ndarray
        2-D Bayer mosaic (any real dtype; converted to float32 once). Height and width >= 3.
    cfa : {"RGGB", "BGGR", "GRBG", "GBRG"}
        The layout of the mosaic's top-left 2x2 tile.

    Examples
    --------
    >>> import numpy as np
    >>> flat = np.full((4, 6), 0.5, np.float32)
    >>> bool(np.all(demosaic_bilinear(flat, cfa="GBRG") == 0.5))
    True
    """
    return _demosaic(mosaic, cfa, DEMOSAIC_MIN_SIDE, _demosaic_kernel, _demosaic_int_kernel)


def demosaic_malvar(mosaic, *, cfa: str) -> np.ndarray:
    """Malvar-He-Cutler demosaicing: H x W mosaic -> H x W x 3 float32 RGB.

    Gradient-corrected bilinear interpolation (Malvar, He and Cutler, "High-quality linear
    interpolation for demosaicing of Bayer-patterned color images", ICASSP 2004): each missing
    colour is the bilinear estimate plus a fraction of the Laplacian of the colour the pixel
    sampled, one fixed 5 x 5 linear filter per case. Sharper than bilinear with fewer colour
    fringes, for little more time (both are bound by writing the result); in a fused pipeline
    it runs from a ring buffer of five rows. Linear, so values are not clipped (edges may overshoot the input's
    range slightly). Each pixel keeps its own sample exactly; borders mirror (reflect-101).

    Parameters
    ----------
    mosaic : ndarray
        2-D Bayer mosaic (any real dtype; 8- and 16-bit are converted row by row, others to
        float32 once). Height and width >= 3.
    cfa : {"RGGB", "BGGR", "GRBG", "GBRG"}
        The layout of the mosaic's top-left 2x2 tile.

    Returns
    -------
    ndarray
        H x W x 3 float32.

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.add.outer(np.arange(6.0), 2 * np.arange(8.0)).astype(np.float32)
    >>> rgb = demosaic_malvar(ramp, cfa="RGGB")       # a grey ramp: every channel is the ramp
    >>> bool(np.all(rgb[2:-2, 2:-2] == ramp[2:-2, 2:-2, None]))
    True
    """
    return _demosaic(mosaic, cfa, MALVAR_MIN_SIDE, _malvar_kernel, _malvar_int_kernel)


def demosaic_gbtf(mosaic, *, cfa: str) -> np.ndarray:
    """Gradient-based threshold-free (GBTF) demosaicing, edge-directed: H x W mosaic -> H x W x 3 float32 RGB.

    Green is interpolated as a colour difference blended from four directions, each weighted by
    how little the difference changes on that side (Pekkucuksen and Altunbasak, ICIP 2010, with
    a Gaussian directional filter); red and blue follow from the colour differences. Sharp on
    edges at any angle with few colour fringes, at several times the cost of Malvar; it runs on
    its own in a fused pipeline (its window is 25 x 25). Not clipped: values may overshoot the
    input's range slightly at edges. Each pixel keeps its own sample exactly; borders reflect
    (see :mod:`rawcv.isp.gbtf`).

    Parameters
    ----------
    mosaic : ndarray
        2-D Bayer mosaic (any real dtype, converted to float32). Height and width >= 3.
    cfa : {"RGGB", "BGGR", "GRBG", "GBRG"}
        The layout of the mosaic's top-left 2x2 tile.

    Returns
    -------
    ndarray
        H x W x 3 float32.

    Examples
    --------
    >>> import numpy as np
    >>> grey = np.add.outer(np.arange(32.0), np.arange(36.0)).astype(np.float32) / 64
    >>> rgb = demosaic_gbtf(grey, cfa="BGGR")   # a grey ramp stays grey where the window
    >>> bool(np.all(rgb[12:-12, 12:-12] == grey[12:-12, 12:-12, None]))    # ends inside the image
    True
    """
    return _demosaic(mosaic, cfa, GBTF_MIN_SIDE, gbtf_kernel, gbtf_kernel)


def half_positions(code) -> np.ndarray:
    """Raster positions in the 2 x 2 tile of red, the first green, the second green and blue."""
    code = np.asarray(code).reshape(-1)
    greens = [k for k in range(4) if code[k] == 1]
    return np.array([int(np.flatnonzero(code == 0)[0]), greens[0], greens[1], int(np.flatnonzero(code == 2)[0])],
                    dtype=np.int64)


@njit(cache=True, nogil=True)
def _half_row(top, bottom, where, out_row):
    """One output row from the two mosaic rows of its tiles; ``where``: the tile positions of R, G,
    G, B (raster order, dy * 2 + dx). Shared by the stand-alone kernel and the fused pass."""
    half = np.float32(0.5)
    for j in range(out_row.size // 3):
        x = 2 * j
        out_row[3 * j] = _tile_sample(top, bottom, where[0], x)
        out_row[3 * j + 1] = (_tile_sample(top, bottom, where[1], x) + _tile_sample(top, bottom, where[2], x)) * half
        out_row[3 * j + 2] = _tile_sample(top, bottom, where[3], x)


@njit(cache=True, nogil=True, inline="always")
def _tile_sample(top, bottom, position, x):
    """The sample at raster ``position`` (dy * 2 + dx) of the tile starting at column ``x``."""
    if position >> 1:
        return np.float32(bottom[x + (position & 1)])
    return np.float32(top[x + (position & 1)])


@njit(cache=True, nogil=True)
def _half_fused_row(top, bottom, y, args, scratch, out_row):
    """Fused-pass row function of the ``half`` method: a level that halves the rows."""
    _half_row(top, bottom, args[0], out_row)


@njit(parallel=True, cache=True, nogil=True)
def _half_kernel(src, where, out):
    # out: (h // 2, 3 (w // 2))
    for i in prange(out.shape[0]):
        _half_row(src[2 * i], src[2 * i + 1], where, out[i])


def demosaic_half(mosaic, *, cfa: str) -> np.ndarray:
    """Half-size "demosaicing": each 2 x 2 CFA tile becomes one RGB pixel, H x W -> H/2 x W/2 x 3.

    Red and blue are the tile's own samples and green the mean of its two, as dcraw ``-h`` and
    rawpy's ``half_size=True`` do: nothing is interpolated, so there are no demosaicing
    artefacts, and every later stage has a quarter of the pixels. An odd last row or column (half a
    tile) is left out.

    Parameters
    ----------
    mosaic : ndarray
        2-D Bayer mosaic (any real dtype; 8- and 16-bit are read as they are, others converted to
        float32 once). Height and width >= 2.
    cfa : {"RGGB", "BGGR", "GRBG", "GBRG"}
        The layout of the mosaic's top-left 2x2 tile.

    Returns
    -------
    ndarray
        ``H // 2 x W // 2 x 3`` float32.

    Examples
    --------
    >>> import numpy as np
    >>> demosaic_half(np.array([[1, 2], [4, 8]], np.uint16), cfa="RGGB").tolist()
    [[[1.0, 3.0, 8.0]]]
    """
    return _demosaic(mosaic, cfa, HALF_MIN_SIDE, _half_kernel, _half_kernel, shrink=2, layout=half_positions)


def mosaic_rgb(image, *, cfa: str) -> np.ndarray:
    """Sample an H x W x 3 image through a Bayer CFA: the inverse of demosaicing's sampling.

    Examples
    --------
    >>> import numpy as np
    >>> rgb = np.zeros((2, 2, 3), np.float32); rgb[..., 0] = 1; rgb[..., 2] = 3
    >>> mosaic_rgb(rgb, cfa="RGGB").tolist()
    [[1.0, 0.0], [0.0, 3.0]]
    """
    arr = as_rgb(image)
    out = np.empty(arr.shape[:2], dtype=np.float32)
    _mosaic_kernel(arr, cfa_code(cfa), out)
    return out


# --- the stage --------------------------------------------------------------------------------

class DemosaicMethod(NamedTuple):
    """One interpolation of the ``demosaic`` stage: its public function, the smallest side it
    takes, its fused-pass row function (None: it runs on its own), how many rows above and
    below that reads, and how many input pixels a side each output pixel covers."""

    function: Callable
    min_side: int
    fused_row: Optional[Callable] = None
    fused_radius: int = 1
    shrink: int = 1                 # output pixels are this many input pixels a side
    layout: Callable = pixel_kinds  # what its kernels take for the tile's layout


DEMOSAIC_METHODS = {
    "bilinear": DemosaicMethod(demosaic_bilinear, DEMOSAIC_MIN_SIDE, _demosaic_fused_row),
    "malvar": DemosaicMethod(demosaic_malvar, MALVAR_MIN_SIDE, _malvar_fused_row, 2),
    # its window reaches 23 rows out: no ring buffer of rows pays for that
    "gbtf": DemosaicMethod(demosaic_gbtf, GBTF_MIN_SIDE),
    # a quarter of the pixels, no interpolation: dcraw -h, rawpy half_size
    "half": DemosaicMethod(demosaic_half, HALF_MIN_SIDE, _half_fused_row, 0, shrink=2, layout=half_positions),
}


@register_stage
class Demosaic(Stage):
    name = "demosaic"
    doc = ("Bilinear, Malvar-He-Cutler (5x5 gradient-corrected), GBTF (edge-directed) or half-size (one RGB "
           "pixel per 2x2 tile) demosaicing; skipped for linear raw (already RGB).")
    params = (Param("method", "str", "bilinear", "interpolation", choices=tuple(DEMOSAIC_METHODS)),)
    accepts = (MOSAIC,)

    @property
    def _method(self) -> DemosaicMethod:
        return DEMOSAIC_METHODS[self.method]

    def produces(self, kind):
        return RGB

    def min_side(self, kind):
        return self._method.min_side if kind == MOSAIC else MIN_SIDE

    def output_shape(self, kind, shape):
        k = self._method.shrink if kind == MOSAIC else 1
        return (shape[0] // k, shape[1] // k)

    def apply(self, frame):
        if frame.kind == RGB:  # a linear DNG: nothing to interpolate
            self.note(frame.notes, skipped="input is already RGB (linear raw)")
            return frame
        return frame.with_data(self._method.function(frame.data, cfa=frame.cfa), RGB)

    def fusion(self, kind):
        return Fusion.DEMOSAIC if kind == MOSAIC and self._method.fused_row is not None else None

    def fused_op(self, ctx):
        method = self._method
        return FusedOp(method.fused_row, (method.layout(cfa_code(ctx.meta.cfa)),), radius=method.fused_radius,
                       shrink=method.shrink)
