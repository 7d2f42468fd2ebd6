"""Defective photosites of a Bayer mosaic: listed (dcraw's ``bad_pixels_path`` file), given as a
mask, or found in one frame (hot and dead pixels), and replaced from their neighbours.

Both the correction and the detector read only photosites at the same position of the 2 x 2 CFA
tile (the same *phase*): the neighbours ``(y + 2i, x + 2j)``. For red and blue that is "the same
colour"; for green it keeps the two greens apart, as dcraw and LibRaw do. Their ``bad_pixels()``
reads like "the same colour in the 3 x 3 box, else in the 5 x 5 box", which would give a green
its 4 diagonal greens, but by the time it runs the filter word counts the green of red rows and
the green of blue rows as two colours, so every defect gets the 8 photosites of its own tile
position at distance 2 (``tests/test_bad_pixels.py`` checks this against LibRaw). That is also
the better choice: on many sensors the two greens differ by a few percent (crosstalk), and
mixing them would leave that difference at every corrected photosite. A result that follows:
the correction and the detector need ``cfa`` only to make sure the array is a mosaic.
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit, prange

from ..errors import PipelineError
from ..meta import validate_cfa
from ._validate import MIN_SIDE
from .denoise import _neighbour_table
from .frame import MOSAIC, RAW
from .stage import Param, Stage, register_stage

DETECT_THRESHOLD = 6.0  # in robust standard deviations of the surroundings (1.4826 x their MAD)
DETECT_FLOOR = 0.02     # a fraction of the white level every defect must exceed besides
DETECT_MIN_SIDE = 6     # mirroring same-phase photosites 4 rows away needs 3 rows of each phase
SPREAD_SAMPLES = 24     # the same-phase photosites of the 9 x 9 box: the local spread is their MAD
MAD_TO_SIGMA = 1.4826   # the MAD of Gaussian samples times this is their standard deviation
_NOT_FOUND = -1


def _as_mosaic(mosaic, cfa, name: str = "mosaic") -> np.ndarray:
    """A C-contiguous 2-D uint16 (kept: sensor values) or float32 (converted once) mosaic."""
    validate_cfa(cfa)
    arr = np.asarray(mosaic)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D Bayer mosaic, got shape {arr.shape}")
    if arr.shape[0] < MIN_SIDE or arr.shape[1] < MIN_SIDE:
        raise ValueError(f"{name} must be at least {MIN_SIDE} x {MIN_SIDE}, got shape {arr.shape}")
    if arr.dtype == np.uint16:
        return np.ascontiguousarray(arr)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must hold uint16 sensor values or floats, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def bad_pixel_mask(pixels, shape) -> np.ndarray:
    """The boolean mask of ``shape`` (H, W) that is True at each ``(row, col)`` of ``pixels``.

    Examples
    --------
    >>> bad_pixel_mask([[0, 1], [2, 3]], (3, 4)).astype(int).tolist()
    [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    >>> bad_pixel_mask([[3, 0]], (3, 4))
    Traceback (most recent call last):
    ...
    ValueError: bad pixel (row 3, col 0) is outside the mosaic (3 rows, 4 columns)
    """
    pts = np.asarray(pixels)
    if pts.size == 0:
        pts = np.zeros((0, 2), dtype=np.int64)
    if pts.ndim != 2 or pts.shape[1] != 2 or not (pts.size == 0 or np.issubdtype(pts.dtype, np.integer)):
        raise ValueError(f"bad pixels must be an (N, 2) integer array of (row, col), got {pts.dtype} {pts.shape}")
    h, w = shape
    outside = (pts[:, 0] < 0) | (pts[:, 0] >= h) | (pts[:, 1] < 0) | (pts[:, 1] >= w)
    if outside.any():
        r, c = pts[np.argmax(outside)]
        raise ValueError(f"bad pixel (row {r}, col {c}) is outside the mosaic ({h} rows, {w} columns)")
    mask = np.zeros((h, w), dtype=np.bool_)
    mask[pts[:, 0], pts[:, 1]] = True
    return mask


def _as_mask(bad, shape) -> np.ndarray:
    arr = np.asarray(bad)
    if arr.dtype == np.bool_:
        if arr.shape != tuple(shape):
            raise ValueError(f"a bad-pixel mask must have the mosaic's shape {tuple(shape)}, got {arr.shape}")
        return np.ascontiguousarray(arr)
    return bad_pixel_mask(arr, shape)


# --- correction ---------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _ring_mean(src, bad, y, x, integer):
    """The mean of the good same-phase photosites on the nearest ring around ``(y, x)`` that has
    any: ring ``k`` is ``(y + 2i, x + 2j)`` with ``max(|i|, |j|) == k``, inside the image (no
    mirroring: dcraw skips what lies outside). Integer data is floor-divided, as dcraw's
    ``tot / n``. Returns ``(value, ring)``, ring -1 where the whole phase plane is bad."""
    h, w = src.shape
    for k in range(1, max(h, w) // 2 + 2):
        s = 0.0            # float64: exact for sums of uint16 values
        n = 0
        for i in range(-k, k + 1):
            yy = y + 2 * i
            if yy < 0 or yy >= h:
                continue
            step = 1 if (i == -k or i == k) else 2 * k   # the top and bottom rows whole, else two ends
            for j in range(-k, k + 1, step):
                xx = x + 2 * j
                if 0 <= xx < w and not bad[yy, xx]:
                    s += src[yy, xx]
                    n += 1
        if n > 0:
            if integer:
                return float(np.int64(s) // n), k
            return s / n, k
    return 0.0, _NOT_FOUND


@njit(parallel=True, cache=True, nogil=True)
def _fix_kernel(src, bad, ys, xs, integer, out, rings):
    # out starts as a copy of src; each bad photosite reads only src, so the order does not matter
    for i in prange(ys.size):
        v, ring = _ring_mean(src, bad, ys[i], xs[i], integer)
        rings[i] = ring
        if ring != _NOT_FOUND:
            out[ys[i], xs[i]] = v


def fix_bad_pixels(mosaic, bad, *, cfa):
    """Replace defective photosites by the mean of their nearest good same-colour neighbours.

    dcraw's ``bad_pixels()`` rule, which LibRaw runs for rawpy's ``bad_pixels_path``: the mean
    of the photosites at the same position of the 2 x 2 CFA tile in the 5 x 5 box around the
    defect (the 8 at ``(y + 2i, x + 2j)``, ``|i|, |j| <= 1``; for a green, the greens of its own
    tile position, see the module's notes). Unlike dcraw, other bad photosites are left out of the
    mean, and where a whole ring is bad the next one out is used (``max(|i|, |j|) = 2, 3 ...``),
    so clusters and bad columns are filled from good data. Neighbours outside the image are
    skipped, as in dcraw.

    Parameters
    ----------
    mosaic : ndarray, H x W
        uint16 sensor values, or a float (normalised) mosaic, converted to float32.
    bad : ndarray
        A boolean H x W mask, or an (N, 2) integer array of ``(row, col)``.
    cfa : {"RGGB", "BGGR", "GRBG", "GBRG"}
        The mosaic's layout (any of the four gives the same result, since only photosites of the
        same tile position are read; naming it guards against passing RGB by mistake).

    Returns
    -------
    ndarray
        A corrected copy, of the input's dtype (uint16) or float32. uint16: the integer mean,
        rounded down (dcraw's ``tot / n``), so an isolated defect gets exactly LibRaw's value;
        float: the float64 mean rounded once to float32.

    Raises
    ------
    ValueError
        A malformed mask or list, a listed pixel outside the mosaic (named), or a phase of the
        CFA tile with no good photosite at all.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.arange(64, dtype=np.uint16).reshape(8, 8) * 10    # m[y, x] = 80 y + 10 x
    >>> m[2, 2] = 4095                                       # stuck high
    >>> int(fix_bad_pixels(m, [[2, 2]], cfa="RGGB")[2, 2])   # the mean of the 8 at distance 2
    180
    >>> bad = np.zeros((8, 8), bool); bad[0:5:2, 0:5:2] = True   # its whole first ring too
    >>> round(float(fix_bad_pixels(m.astype(np.float32), bad, cfa="RGGB")[2, 2]), 2)   # 7 at distance 4
    385.71
    """
    arr = _as_mosaic(mosaic, cfa)
    mask = _as_mask(bad, arr.shape)
    out = arr.copy()
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return out
    rings = np.empty(ys.size, dtype=np.int64)
    _fix_kernel(arr, mask, ys.astype(np.int64), xs.astype(np.int64), arr.dtype == np.uint16, out, rings)
    lost = rings == _NOT_FOUND
    if lost.any():
        y, x = ys[np.argmax(lost)], xs[np.argmax(lost)]
        raise ValueError(f"every photosite at CFA position (row {y % 2}, col {x % 2}) is bad: "
                         f"nothing to replace pixel (row {y}, col {x}) with")
    return out


# --- the list file ------------------------------------------------------------------------------

def read_bad_pixels(path, *, taken=None) -> np.ndarray:
    """Read a dcraw / LibRaw / rawpy ``bad_pixels_path`` file.

    One defect per line, ``col row unixtime`` (three integers separated by blanks: the column and
    row in the visible sensor area, unrotated, and the Unix time at which the pixel went bad);
    ``#`` starts a comment, blank lines are allowed. dcraw skips a pixel whose time is after the
    photo's (the pixel was still good then); with ``taken`` (the photo's Unix time) this does the
    same, without it every listed pixel is kept. Unlike dcraw, which skips lines it cannot parse,
    a malformed line is an error.

    Parameters
    ----------
    path : str or path-like
    taken : int, optional
        When the photo was taken (Unix time); pixels listed as failing later are left out.

    Returns
    -------
    ndarray of int64, N x 2
        ``(row, col)`` of each listed pixel, in file order (the form :func:`fix_bad_pixels` takes).

    Raises
    ------
    OSError
        The file cannot be read (the message names it).
    ValueError
        A malformed line (the message names the file and the line number), or not UTF-8 text.

    Examples
    --------
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "bad.txt")
    >>> _ = open(p, "w").write("# col row time\\n 12 3 0\\n7 40 1600000000  # since 2020\\n")
    >>> read_bad_pixels(p).tolist(), read_bad_pixels(p, taken=1500000000).tolist()
    ([[3, 12], [40, 7]], [[3, 12]])
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise type(exc)(f"{os.fspath(path)}: cannot read bad-pixel list ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{os.fspath(path)}: bad-pixel list is not UTF-8 text "
                         f"(byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    pixels = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        try:
            col, row, when = (int(v, 10) for v in fields) if len(fields) == 3 else (None, None, None)
        except ValueError:
            col = None
        if col is None or col < 0 or row < 0:
            shown = line.strip()
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise ValueError(f"{os.fspath(path)}, line {number}: expected 'col row unixtime' "
                             f"(three non-negative integers), got {shown!r}")
        if taken is None or when <= taken:
            pixels.append((row, col))
    return np.array(pixels, dtype=np.int64).reshape(-1, 2)


# --- detection ----------------------------------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _sorted_middle(v):
    """Sort ``v`` in place (insertion sort: allocation-free, and ``v`` is short) and return its
    median, the mean of the middle two of an even count."""
    for i in range(1, v.size):
        a = v[i]
        j = i - 1
        while j >= 0 and v[j] > a:
            v[j + 1] = v[j]
            j -= 1
        v[j + 1] = a
    m = v.size // 2
    return (v[m - 1] + v[m]) * np.float32(0.5)


@njit(parallel=True, cache=True, nogil=True)
def _detect_kernel(src, rows, cols, gain, floor, out):
    # rows, cols: (n, 5) same-phase neighbour indices at -4, -2, 0, 2, 4 pixels, mirrored per phase
    h, w = src.shape
    for y in prange(h):
        near = np.empty(SPREAD_SAMPLES, dtype=np.float32)
        dev = np.empty(SPREAD_SAMPLES, dtype=np.float32)
        for x in range(w):
            p = src[y, x]
            out[y, x] = False
            lo = np.float32(np.inf)
            hi = np.float32(-np.inf)
            for a in range(1, 4):
                for b in range(1, 4):
                    if a != 2 or b != 2:
                        v = src[rows[y, a], cols[x, b]]
                        lo = min(lo, v)
                        hi = max(hi, v)
            # the limit is at least the floor: most photosites are decided here, without sorting
            if not (p - hi > floor or lo - p > floor):
                continue
            k = 0
            for a in range(5):
                for b in range(5):
                    if a != 2 or b != 2:
                        near[k] = src[rows[y, a], cols[x, b]]
                        k += 1
            med = _sorted_middle(near)
            for i in range(SPREAD_SAMPLES):
                dev[i] = abs(near[i] - med)
            limit = gain * _sorted_middle(dev) + floor
            out[y, x] = p - hi > limit or lo - p > limit


def detect_bad_pixels(mosaic, *, cfa, threshold: float = DETECT_THRESHOLD, floor: float = DETECT_FLOOR,
                      white=None) -> np.ndarray:
    """Find hot and dead photosites in one frame (no dark frame, no list).

    A photosite ``p`` is flagged when it lies beyond *every one* of its 8 nearest neighbours of
    the same CFA tile position (those at ``(y + 2i, x + 2j)``, ``|i|, |j| <= 1``, the ones openISP's
    dead pixel correction reads), on the same side, by more than a limit that scales with how much
    its surroundings vary::

        p - max(nearest 8) > limit   (hot)   or   min(nearest 8) - p > limit   (dead)
        limit = threshold * 1.4826 * MAD + floor * white

    MAD is the median absolute deviation from their median of the 24 same-position photosites of
    the 9 x 9 box around ``p`` (``|i|, |j| <= 2``; each median of this even count the mean of the
    middle two), so ``1.4826 * MAD`` is the noise, or texture, there in robust standard
    deviations, unmoved by a few defects among them. The 8 nearest alone give too unsteady an
    estimate: on flat noise one pixel in a thousand would have 8 neighbours that happen to agree
    closely. The floor stops what little is left of that, and integer steps. Borders mirror
    (reflect-101 within each tile position).

    Natural detail is not flagged: a photosite on an edge has neighbours on its own side of it,
    and one on a line (of any width, in any of the 8 directions) has the two neighbours along the
    line, so it is not beyond all eight; texture raises the MAD. What no one-frame detector can
    tell from a defect is light that falls on one photosite alone (a star, a distant point
    light), which is why the ``bad_pixels`` stage leaves detection off by default; and a defect
    is missed where its surroundings vary by as much as it deviates (a dead pixel in a pattern of
    fine lines, or in a corner between strong edges). Nor can it tell a defect from 1-pixel detail
    that no lens blur or anti-aliasing filter softened: a thin line at a shallow angle aliases
    into dots that one colour plane sees one at a time. Found: isolated defects, clusters of different tile positions (a 2 x 2 block, two
    diagonally adjacent greens) and same-position neighbours that deviate in opposite
    directions. Not found: two photosites of the same tile position next to each other (two
    pixels apart) that deviate the same way, since each is a neighbour the other does not exceed;
    list those (:func:`read_bad_pixels`).

    Parameters
    ----------
    mosaic : ndarray, H x W
        A float mosaic (normalised: white level 1), or uint16 sensor values together with
        ``white``; at least 6 x 6.
    cfa : {"RGGB", "BGGR", "GRBG", "GBRG"}
    threshold : float
        How many robust standard deviations of its surroundings a defect lies beyond them.
    floor : float
        The least deviation flagged, as a fraction of ``white``.
    white : float, optional
        The span from black to white in the mosaic's units, of which ``floor`` is a fraction: 1.0
        (the default) for a normalised mosaic; required for uint16 sensor values (white level
        minus black level).

    Returns
    -------
    ndarray of bool, H x W

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> m = (0.3 + 0.01 * rng.standard_normal((16, 16))).astype(np.float32)
    >>> m[:, 8:] += 0.5                              # an edge
    >>> m[5, 5], m[10, 11] = 0.9, 0.0                # a hot and a dead photosite
    >>> np.argwhere(detect_bad_pixels(m, cfa="RGGB")).tolist()
    [[5, 5], [10, 11]]
    """
    arr = _as_mosaic(mosaic, cfa)
    if min(arr.shape) < DETECT_MIN_SIDE:
        raise ValueError(f"detecting bad pixels needs a mosaic of at least {DETECT_MIN_SIDE} x {DETECT_MIN_SIDE} "
                         f"(three rows and columns of each CFA position), got shape {arr.shape}")
    if white is None:
        if arr.dtype == np.uint16:
            raise ValueError("detecting bad pixels in uint16 sensor values needs white= (the white level: "
                             "the floor is a fraction of it)")
        white = 1.0
    for name, value in (("threshold", threshold), ("floor", floor), ("white", white)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    src = arr.astype(np.float32, copy=False)
    rows = _neighbour_table(arr.shape[0], 2, 2)
    cols = _neighbour_table(arr.shape[1], 2, 2)
    out = np.empty(arr.shape, dtype=np.bool_)
    gain, limit = detect_constants(threshold, floor, white)
    _detect_kernel(src, rows, cols, gain, limit, out)
    return out


def detect_constants(threshold: float, floor: float, white: float):
    """The float32 ``(threshold x 1.4826, floor x white)`` both backends compare with."""
    return np.float32(threshold * MAD_TO_SIGMA), np.float32(floor * white)


# --- the stage --------------------------------------------------------------------------------

def level16(mosaic) -> np.ndarray:
    """A normalised mosaic as the DNG SDK's 16-bit levels (white 65535, rounded), the values a
    ``FixBadPixelsConstant`` opcode after black level (list 2) compares with its constant."""
    return np.floor(np.clip(mosaic, 0.0, 1.0) * np.float32(65535) + np.float32(0.5))


@register_stage
class BadPixels(Stage):
    """The ``bad_pixels`` stage: the pixels of a list file (``path``) and, with ``detect: on``, the
    hot and dead ones :func:`detect_bad_pixels` finds, replaced by :func:`fix_bad_pixels`.

    Detection is off by default: no one-frame detector can tell a defect from light that falls on
    one photosite (stars, glints, distant lamps), and a pipeline should not alter such data unless
    asked to; dcraw and LibRaw too correct only the pixels of a list. The stage runs on its own,
    outside the fused row passes: detection reads photosites four rows away and the correction
    reads its result up to two rows further (and, around a cluster, further still), which is more
    than a fused pass keeps; it is a cheap pass next to a demosaic.

    In a pipeline it follows ``black_level`` (it takes the normalised mosaic). A DNG's bad-pixel
    opcodes become this stage too (:meth:`from_opcode`), and those of OpcodeList1 run before
    black level, on the stored sensor values: there the mean is rounded down as dcraw's, and
    the detector's floor is a fraction of the white level minus the largest black level.
    ``pixels`` lists more pixels inline and ``constant`` marks those whose stored value (on a
    normalised mosaic: 16-bit level, white 65535) equals it: what the DNG ``FixBadPixelsList`` and
    ``FixBadPixelsConstant`` opcodes become (:meth:`from_opcode`). The run's record shows how many
    pixels were ``listed`` (file and ``pixels``), ``at_constant``, ``detected`` and, all
    together, ``corrected``.
    """

    name = "bad_pixels"
    doc = ("Replace defective photosites (a dcraw/LibRaw bad-pixel list file, and with detect: on, the hot and "
           "dead ones found in the frame) by the mean of their nearest good same-colour neighbours.")
    params = (
        Param("detect", "str", "off", "also find hot and dead photosites in the frame itself", choices=("off", "on")),
        Param("threshold", "float", DETECT_THRESHOLD,
              "how far beyond all 8 same-colour neighbours a defect lies, in their robust standard deviations",
              minimum=0.0),
        Param("path", "str", None, "a dcraw bad-pixel list file ('col row unixtime' lines), read when the stage runs"),
        Param("pixels", "floats", None, "more pixels to correct: [row, col] pairs (a DNG FixBadPixelsList)"),
        Param("constant", "int", None, "also correct the pixels whose stored value (16-bit level) is this "
                                       "(a DNG FixBadPixelsConstant)", minimum=0),
    )
    accepts = (MOSAIC,)

    def check(self):
        if self.pixels is not None:
            v = np.asarray(self.pixels)
            if v.size % 2 or np.any(v < 0) or np.any(v != np.round(v)):
                raise PipelineError(f"stage '{self.name}': parameter 'pixels' must be [row, col] pairs of "
                                    f"non-negative integers, got {len(self.pixels)} numbers")

    @classmethod
    def from_opcode(cls, record):
        """The stage doing a DNG ``FixBadPixelsList`` (its points and the pixels of its rectangles,
        bottom and right exclusive) or ``FixBadPixelsConstant`` opcode. Their ``bayer_phase`` does
        not matter: the correction reads the photosites of the same CFA tile position, whatever
        its colour.

        The stage returned also takes stored sensor values, since the DNG specification applies
        OpcodeList1 to them (:meth:`rawcv.pipeline.Pipeline.stages_for` puts it before the first
        stage); a stage of a pipeline file takes the normalised mosaic only, as the pipeline's
        order rules expect of a stage placed after ``black_level``."""
        if hasattr(record, "constant"):
            stage = cls(constant=int(record.constant))
        else:
            pixels = [list(p) for p in record.points]
            for top, left, bottom, right in record.rects:
                pixels += [[r, c] for r in range(top, bottom) for c in range(left, right)]
            stage = cls(pixels=[float(v) for p in pixels for v in p])
        stage.accepts = (RAW, MOSAIC)
        return stage

    def min_side(self, kind):
        return DETECT_MIN_SIDE if self.detect == "on" else MIN_SIDE

    @staticmethod
    def span(kind, meta) -> float:
        """What the detector's floor is a fraction of: 1 on a normalised mosaic, the white level
        minus the largest black level on sensor values."""
        return float(meta.white_level - max(meta.black_level)) if kind == RAW else 1.0

    def listed(self, shape):
        """The mask of the pixels of ``path`` (read on every call: an edited file counts from the
        next frame on) and ``pixels`` in a mosaic of ``shape``; None where neither is given."""
        if self.path is None and self.pixels is None:
            return None
        try:
            mask = np.zeros(shape, dtype=np.bool_)
            if self.path is not None:
                mask |= bad_pixel_mask(read_bad_pixels(self.path), shape)
            if self.pixels is not None:
                mask |= bad_pixel_mask(np.asarray(self.pixels, dtype=np.int64).reshape(-1, 2), shape)
            return mask
        except (OSError, ValueError) as exc:
            raise PipelineError(f"stage '{self.name}': {exc}") from None

    def mask(self, frame):
        """The pixels to correct in ``frame``, and the counts the run's record shows."""
        counts = {}
        mask = np.zeros(frame.data.shape[:2], dtype=np.bool_)
        listed = self.listed(mask.shape)
        if listed is not None:
            counts["listed"] = int(listed.sum())
            mask |= listed
        if self.constant is not None:
            at = (frame.data if frame.kind == RAW else level16(frame.data)) == self.constant
            counts["at_constant"] = int(at.sum())
            mask |= at
        if self.detect == "on":
            found = detect_bad_pixels(frame.data, cfa=frame.cfa, threshold=self.threshold,
                                      white=self.span(frame.kind, frame.meta))
            counts["detected"] = int(found.sum())
            mask |= found
        counts["corrected"] = int(mask.sum())
        return mask, counts

    def apply(self, frame):
        mask, counts = self.mask(frame)
        self.note(frame.notes, **counts)
        if not mask.any():
            return frame
        try:
            return frame.with_data(fix_bad_pixels(frame.data, mask, cfa=frame.cfa))
        except ValueError as exc:
            raise PipelineError(f"stage '{self.name}': {exc}") from None


__all__ = ["fix_bad_pixels", "read_bad_pixels", "detect_bad_pixels", "bad_pixel_mask", "level16", "BadPixels",
           "DETECT_THRESHOLD", "DETECT_FLOOR"]
