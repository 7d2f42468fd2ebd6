"""Highlights: what happens to values at and above the white level after white balance.

A clipped sensor value says only "at least this bright". White balance multiplies red and blue
by gains above 1, so a pixel clipped in every channel turns into (gain_R, 1, gain_B): magenta.
Two methods:

* ``clip`` (dcraw's default highlight mode) caps every channel at the white point, 1.0 after
  normalisation, once the gains are applied: a blown area comes out white, and a colour running
  into it desaturates towards white instead of flipping hue.
* ``reconstruct`` (:func:`reconstruct_highlights`, after darktable's "inpaint opposed") rebuilds
  each clipped photosite of the mosaic from the unclipped photosites of the other two colours
  around it, so a highlight where only some channels clipped keeps its structure and its hue.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._validate import as_float_image, as_mosaic
from .demosaic import _mirror
from .frame import MOSAIC, RGB
from .stage import FusedOp, Fusion, Param, Stage, register_stage

WHITE_POINT = np.float32(1.0)       # normalised white level, the same after white balance
# A photosite at the white level normalises to 1.0 give or take one float32 rounding of the
# black-level scaling (1 - 2^-24 for one level in five); no sensor has levels 2^-20 apart.
_CLIP_FRACTION = np.float32(1.0 - 2.0 ** -20)
RING = 2        # the chroma offsets are measured within this many photosites of a clipped one


@njit(cache=True, nogil=True, inline="always")
def _clip_scalar(v, white):
    # a select, not min(): NaN (a value that never existed) stays NaN
    return white if v > white else v


@njit(cache=True, nogil=True)
def _clip_row(src_row, white, out_row):
    for j in range(src_row.size):
        out_row[j] = _clip_scalar(src_row[j], white)


@njit(cache=True, nogil=True)
def _clip_fused_row(src_row, y, args, scratch, out_row):
    """Fused-pass row function of :class:`Highlights` (``clip``): ``args[0]`` is the white point."""
    _clip_row(src_row, args[0], out_row)


@njit(parallel=True, cache=True, nogil=True)
def _clip_kernel(src, white, out):
    # src, out: (h, n) rows
    for y in prange(src.shape[0]):
        _clip_row(src[y], white, out[y])


def clip_highlights(image, *, white: float = WHITE_POINT) -> np.ndarray:
    """Cap every value of a white-balanced mosaic or RGB image at ``white``.

    Examples
    --------
    >>> import numpy as np
    >>> clip_highlights(np.array([[2.1, 1.0], [0.5, 1.6]], np.float32)).tolist()
    [[1.0, 1.0], [0.5, 1.0]]
    """
    arr = as_float_image(image)
    out = np.empty_like(arr)
    h = arr.shape[0]
    _clip_kernel(arr.reshape(h, -1), np.float32(white), out.reshape(h, -1))
    return out


# --- reconstruct --------------------------------------------------------------------------------

def clipped_level(white: float = WHITE_POINT) -> np.float32:
    """The value from which :func:`reconstruct_highlights` counts a photosite as clipped."""
    return np.float32(np.float32(white) * _CLIP_FRACTION)


@njit(cache=True, nogil=True)
def _opposed(src, clipped, code, y, x):
    """Sum (float32, in raster order) and number of the unclipped photosites of the other two
    colours in the 3 x 3 window around ``(y, x)``; reflect-101 keeps the CFA phase at borders."""
    h, w = src.shape
    c = code[2 * (y & 1) + (x & 1)]
    s = np.float32(0.0)
    n = 0
    for dy in range(-1, 2):
        yy = _mirror(y + dy, h)
        for dx in range(-1, 2):
            xx = _mirror(x + dx, w)
            if code[2 * (yy & 1) + (xx & 1)] != c and not clipped[yy, xx]:
                s += src[yy, xx]
                n += 1
    return s, n


@njit(parallel=True, cache=True, nogil=True)
def _reconstruct_kernel(src, clipped, code, white, out):
    h, w = src.shape
    # rows with a clipped photosite, and (a separable dilation's row pass) which photosites have
    # one within RING columns: most rows of a frame have none and are skipped below
    hits = np.zeros(h, dtype=np.bool_)
    across = np.zeros((h, w), dtype=np.bool_)
    for y in prange(h):
        for x in range(w):
            if clipped[y, x]:
                hits[y] = True
                for xx in range(max(x - RING, 0), min(x + RING + 1, w)):
                    across[y, xx] = True
    # per-row partial sums: no shared accumulator in the parallel loop, and a fixed order
    sums = np.zeros((h, 3), dtype=np.float64)
    counts = np.zeros((h, 3), dtype=np.float64)
    for y in prange(h):
        if not hits[max(y - RING, 0):y + RING + 1].any():
            continue
        for x in range(w):
            if clipped[y, x]:
                continue
            near = False
            for yy in range(max(y - RING, 0), min(y + RING + 1, h)):
                near |= across[yy, x]
            if not near:
                continue
            s, n = _opposed(src, clipped, code, y, x)
            if n == 0:
                continue
            d = src[y, x] - s / np.float32(n)
            if np.isfinite(d):
                c = code[2 * (y & 1) + (x & 1)]
                sums[y, c] += d
                counts[y, c] += 1.0
    total, number = sums.sum(axis=0), counts.sum(axis=0)
    offsets = np.zeros(3, dtype=np.float32)
    for c in range(3):
        if number[c] > 0:
            offsets[c] = np.float32(total[c] / number[c])
    for y in prange(h):
        for x in range(w):
            v = src[y, x]
            if hits[y] and clipped[y, x]:
                v = white
                s, n = _opposed(src, clipped, code, y, x)
                if n > 0:
                    estimate = s / np.float32(n) + offsets[code[2 * (y & 1) + (x & 1)]]
                    v = estimate if estimate > white else white
            out[y, x] = v


def reconstruct_highlights(mosaic, *, cfa: str, saturation=None, white: float = WHITE_POINT) -> np.ndarray:
    """Rebuild the clipped photosites of a white-balanced Bayer mosaic from the other colours.

    darktable's "inpaint opposed" idea, in four steps:

    1. a photosite is clipped where ``saturation`` says so, by default where it is at or above
       ``white`` (to one float32 rounding of the normalisation; see below);
    2. at every photosite of colour ``c``, the *opposed* estimate is the mean of the unclipped
       photosites of the other two colours in its 3 x 3 window (reflect-101 borders keep the
       CFA phase): what the colours that still carry information say the brightness is;
    3. a chroma offset per colour, ``mean(value - opposed)`` over the unclipped photosites of
       that colour within two photosites of a clipped one (0 where there are none): how far
       that colour sits from the others around the highlights;
    4. a clipped photosite becomes ``max(white, opposed + offset)``: never less than ``clip``
       gives, more where the other colours say the light went on rising. One with no
       unclipped photosite of another colour around it (blown in every channel) becomes
       ``white``, neutral, as with ``clip``.

    Clipped photosites count as neither evidence nor floor, on purpose: after white balance
    their values are the clip levels ``(gain_R, 1, gain_B)``, the magenta a blown area must not
    turn, and kept at the fringe of a blown area or averaged into the opposed means they tint
    it (the D3200 rose of the tests shows magenta pixels either way). The default mask reads
    the white-balanced data alone, so every backend finds the same photosites without the raw
    values or the gains: those at or above the white point (a photosite at the white level
    normalises to it give or take one float32 rounding, which the threshold allows for). That
    includes red and blue photosites that did not clip on the sensor but which their gain
    carried past the white point: like ``clip``, step 4 caps them unless the other colours
    say otherwise.

    Parameters
    ----------
    mosaic : ndarray
        2-D white-balanced Bayer mosaic, normalised so that the white point is ``white``.
    cfa : {"RGGB", "BGGR", "GRBG", "GBRG"}
        The layout of the mosaic's top-left 2x2 tile.
    saturation : ndarray of bool, optional
        Which photosites clipped (e.g. :func:`rawcv.isp.saturation_mask` of the raw values);
        by default those at or above ``white``.
    white : float
        The white point (1.0 after rawcv's normalisation).

    Returns
    -------
    ndarray
        float32 mosaic of the same shape. Values may exceed ``white``: linear headroom that a
        later tone curve or quantisation clips for display.

    Examples
    --------
    >>> import numpy as np
    >>> from rawcv.isp import mosaic_rgb
    >>> light = np.linspace(0.2, 1.0, 9, dtype=np.float32)           # a ramp of orange light
    >>> truth = mosaic_rgb(np.stack([1.5 * light, light, 0.7 * light], -1)[None].repeat(4, 0), cfa="RGGB")
    >>> out = reconstruct_highlights(np.minimum(truth, 1.0), cfa="RGGB")   # as the sensor clips it
    >>> [round(float(v), 2) for v in truth[0, 4::2]], [round(float(v), 2) for v in out[0, 4::2]]
    ([0.9, 1.2, 1.5], [0.9, 1.07, 1.11])
    >>> reconstruct_highlights(np.full((4, 4), 1.9, np.float32), cfa="RGGB").max().item()   # all blown: white
    1.0
    """
    arr, code, _ = as_mosaic(mosaic, cfa)
    if saturation is None:
        clipped = arr >= clipped_level(white)
    else:
        clipped = np.ascontiguousarray(saturation, dtype=np.bool_)
        if clipped.shape != arr.shape:
            raise ValueError(f"saturation must be a mask of the mosaic's shape {arr.shape}, got {clipped.shape}")
    if not clipped.any():
        return arr.copy()
    out = np.empty_like(arr)
    _reconstruct_kernel(arr, clipped, code, np.float32(white), out)
    return out


# --- the stage --------------------------------------------------------------------------------

@register_stage
class Highlights(Stage):
    """The ``highlights`` stage. ``reconstruct`` needs a mosaic: on RGB input (a linear raw,
    already demosaiced) it clips instead and says so in the frame's notes."""

    name = "highlights"
    doc = ("Clipped highlights after white balance: clip (cap every channel at the white point, so blown "
           "areas stay white) or reconstruct (rebuild clipped photosites from the unclipped colours).")
    params = (Param("method", "str", "clip", "what to do with values at and above the white point",
                    choices=("clip", "reconstruct")),)
    accepts = (MOSAIC, RGB)
    linear_only = True

    def apply(self, frame):
        if self.method == "reconstruct":
            if frame.kind == MOSAIC:
                return frame.with_data(reconstruct_highlights(frame.data, cfa=frame.cfa, white=WHITE_POINT))
            self.note(frame.notes, fallback="clip: reconstruct reads the other colours' photosites of a mosaic, "
                                            "and the input is already RGB (linear raw)")
        return frame.with_data(clip_highlights(frame.data, white=WHITE_POINT))

    def fusion(self, kind):
        # reconstruct reads a global chroma offset before it writes a row: it runs on its own
        return Fusion.POINTWISE if self.method == "clip" else None

    def fused_op(self, ctx):
        return FusedOp(_clip_fused_row, (WHITE_POINT,))


__all__ = ["clip_highlights", "reconstruct_highlights", "clipped_level", "Highlights", "WHITE_POINT"]
