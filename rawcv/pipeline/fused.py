"""The fused fast path: a schedule over the same stage definitions, with no full-size intermediates.

A run of stages ``black_level -> white_balance -> demosaic -> [3x3 median or mean] -> vignetting ->
color_matrix -> gamma -> quantize`` (any but demosaic may be absent) becomes one Numba pass over the
mosaic: each thread takes a band of rows and keeps the last three normalised mosaic rows and the
last three demosaiced rows in small ring buffers; each output row is demosaiced, filtered and sent
through the pointwise tail, every step by the same row function as the stand-alone stage's kernel
(which in turn calls the same per-pixel functions). The result is therefore bit-for-bit the
stage-by-stage result; ``tests/test_fused.py`` checks it for every Bayer layout. Encoding +
quantisation use an exact table (:func:`rawcv.isp.tone.encode_quantize_table`, memoised per bin of
float32 bit patterns by :func:`_build_level_bins`) instead of a ``pow`` per value.

Stages that cannot run on rows in this order (a 5x5 filter, a denoise on the mosaic, a gray-world
white balance after demosaicing ...) split the schedule: the part before runs fused, that stage
runs alone, and a pointwise tail after it runs as one fused pass again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
from numba import njit, prange

from ..isp import tone
from ..isp.black_level import _normalize_mosaic_row, _saturation_row, level_tables
from ..isp.color import _matrix_row
from ..isp.demosaic import _demosaic_row, _mirror, _ring_slot, pixel_kinds
from ..isp.denoise import _mean3_row, _median3_row
from ..isp.vignetting import _vignetting_row, geometry
from ..isp.white_balance import _wb_mosaic_row
from ..meta import cfa_code
from .frame import DISPLAY, MOSAIC, QUANTIZED, RAW, RGB

BAND_ROWS = 64
TAIL_ORDER = ("vignetting", "color_matrix", "gamma", "quantize")


@dataclass
class TailParams:
    """Resolved parameters of the pointwise tail, packed for the kernels."""

    vig_on: bool
    geom: np.ndarray
    ks: np.ndarray
    mat_on: bool
    matrix: np.ndarray
    curve: int          # -1: no tone curve; 0: sRGB; 1: power law
    exponent: np.float32
    maxval: int         # 0: float output
    thresholds: np.ndarray
    coarse: np.ndarray
    bins: tuple         # (shift, split, low, step) from _build_level_bins; shift 0: no table


@njit(cache=True, nogil=True)
def _float_of_bits(bits):
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


@njit(cache=True, nogil=True)
def _level_of_bits(bits, thresholds, coarse, maxval):
    return tone._lookup_level(_float_of_bits(bits), thresholds, coarse, maxval)


@njit(cache=True)
def _build_level_bins(shift, thresholds, coarse, maxval):
    """Memoise ``tone._lookup_level`` over bins of float32 bit patterns (``bits >> shift``).

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


@lru_cache(maxsize=8)
def _tables(curve: str, gamma: float, bits: int):
    thr, coarse = tone.encode_quantize_table(curve, gamma, bits)
    maxval = (1 << bits) - 1
    for shift in LEVEL_BIN_SHIFTS:
        split, low, high, ok = _build_level_bins(shift, thr, coarse, maxval)
        if ok:
            small = maxval <= 255
            step = high.astype(np.int32) - low.astype(np.int32)
            return thr, coarse, (np.uint32(shift), split, low.astype(np.uint8 if small else np.uint16),
                                 step.astype(np.int16 if small else np.int32))
    return thr, coarse, _NO_BINS


_NO_BINS = (np.uint32(0), np.zeros(1, np.uint32), np.zeros(1, np.uint16), np.zeros(1, np.int32))


def resolve_tail(stages, frame_meta, shape) -> TailParams:
    by_name = {s.name: s for s in stages}
    vig = by_name.get("vignetting")
    if vig is not None:
        geom = np.array(geometry(shape, tuple(vig.center)), dtype=np.float32)
        ks = np.array([vig.k1, vig.k2, vig.k3], dtype=np.float32)
    else:
        geom = np.zeros(3, np.float32)
        ks = np.zeros(3, np.float32)
    cm = by_name.get("color_matrix")
    m = cm.resolve_matrix(frame_meta) if cm is not None else None
    gamma = by_name.get("gamma")
    quant = by_name.get("quantize")
    curve = -1 if gamma is None else (0 if gamma.curve == "srgb" else 1)
    exponent = np.float32(1.0 / gamma.gamma) if gamma is not None and gamma.curve == "power" else np.float32(1.0)
    maxval = 0 if quant is None else (1 << quant.bits) - 1
    if gamma is not None and quant is not None:
        thr, coarse, bins = _tables(gamma.curve, float(gamma.gamma), quant.bits)
    else:
        thr, coarse, bins = np.zeros(2, np.float32), np.zeros(1, np.int32), _NO_BINS
    return TailParams(vig is not None, geom, ks, m is not None,
                      np.ascontiguousarray((m if m is not None else np.eye(3)).astype(np.float32)),
                      curve, exponent, maxval, thr, coarse, bins)


@njit(cache=True, nogil=True)
def _levels_row(src_row, shift, split, low, step, out_row):
    # tone._lookup_level through its memo table (see _build_level_bins): a few loads and integer
    # operations per value, no branch (a select here compiles to a branch that real images
    # mispredict)
    bits = src_row.view(np.uint32)
    for j in range(bits.size):
        v = bits[j]
        k = v >> shift
        out_row[j] = low[k] + step[k] * (v >= split[k])


@njit(cache=True, nogil=True)
def _tail_row(src_row, y, tmp, out_row, vig_on, geom, ks, mat_on, m, curve, exponent, maxval, thr, coarse,
              bins):
    """The pointwise tail on one flat RGB row ``y``, each stage a pass over the row with the same
    row function as its stand-alone kernel. ``tmp`` holds two scratch rows, used in turn: a pass
    never writes the row it reads (in place, LLVM's overlap check fails and the loop runs scalar)."""
    cur = src_row
    if vig_on:
        _vignetting_row(cur, y, 3, geom, ks, tmp[0])
        cur = tmp[0]
    if mat_on:
        _matrix_row(cur, m, tmp[1])
        cur = tmp[1]
    n = cur.size
    if maxval > 0 and curve >= 0:
        shift, split, low, step = bins
        if shift > 0:
            _levels_row(cur, shift, split, low, step, out_row)
        else:
            for j in range(n):
                out_row[j] = tone._lookup_level(cur[j], thr, coarse, maxval)
    elif curve >= 0:
        for j in range(n):
            out_row[j] = tone._encode_scalar(cur[j], curve, exponent)
    elif maxval > 0:
        for j in range(n):
            out_row[j] = tone._quantize_scalar(cur[j], maxval)
    else:
        for j in range(n):
            out_row[j] = cur[j]


@njit(cache=True, nogil=True)
def _mosaic_row(src, r, ring, tags, scratch, black4, inv4, gains4, wb_on, white, sat_on, sat, y0, y1):
    """The normalised (and white-balanced) mosaic row ``r``, from the ring or computed into it; the
    band that owns row ``r`` (``y0 <= r < y1``) also writes its saturation mask."""
    buf, fresh = _ring_slot(ring, tags, r)
    if not fresh:
        p = 2 * (r & 1)
        if wb_on:
            _normalize_mosaic_row(src[r], black4[p:p + 2], inv4[p:p + 2], scratch)
            _wb_mosaic_row(scratch, gains4[p], gains4[p + 1], buf)
        else:
            _normalize_mosaic_row(src[r], black4[p:p + 2], inv4[p:p + 2], buf)
        if sat_on and y0 <= r < y1:
            _saturation_row(src[r], white, sat[r])
    return buf


@njit(cache=True, nogil=True)
def _rgb_row(src, r, rgb, rgb_tags, ring, tags, scratch, black4, inv4, gains4, wb_on, white, sat_on, sat,
             kinds, y0, y1):
    """The demosaiced row ``r`` (flat RGB), from the ring of RGB rows or computed into it."""
    buf, fresh = _ring_slot(rgb, rgb_tags, r)
    if not fresh:
        h = src.shape[0]
        above = _mosaic_row(src, _mirror(r - 1, h), ring, tags, scratch, black4, inv4, gains4, wb_on, white,
                            sat_on, sat, y0, y1)
        row = _mosaic_row(src, r, ring, tags, scratch, black4, inv4, gains4, wb_on, white, sat_on, sat, y0, y1)
        below = _mosaic_row(src, _mirror(r + 1, h), ring, tags, scratch, black4, inv4, gains4, wb_on, white,
                            sat_on, sat, y0, y1)
        p = 2 * (r & 1)
        _demosaic_row(above, row, below, kinds[p:p + 2], buf)
    return buf


@njit(parallel=True, cache=True, nogil=True)
def _fused_demosaic_kernel(src, black4, inv4, gains4, wb_on, white, sat_on, sat, kinds, denoise, out,
                           vig_on, geom, ks, mat_on, m, curve, exponent, maxval, thr, coarse, bins):
    # Each band of rows keeps the last three normalised mosaic rows and the last three demosaiced
    # rows in ring buffers; an output row is demosaiced (then, for ``denoise`` 1 / 2, median / mean
    # filtered 3 x 3 over three demosaiced rows) and goes through the tail: nothing full-size but
    # the output and the saturation mask.
    h, w = src.shape
    n = 3 * w
    flat_out = out.reshape(h, n)
    for band in prange((h + BAND_ROWS - 1) // BAND_ROWS):
        y0 = band * BAND_ROWS
        y1 = min(h, y0 + BAND_ROWS)
        ring = np.empty((3, w), dtype=np.float32)
        tags = np.full(3, -1, dtype=np.int64)
        scratch = np.empty(w, dtype=np.float32)
        rgb = np.empty((3, n), dtype=np.float32)
        rgb_tags = np.full(3, -1, dtype=np.int64)
        filtered = np.empty(n, dtype=np.float32)
        tmp = np.empty((2, n), dtype=np.float32)
        colsum = np.empty(n if denoise == 2 else 0, dtype=np.float64)
        for y in range(y0, y1):
            row = _rgb_row(src, y, rgb, rgb_tags, ring, tags, scratch, black4, inv4, gains4, wb_on, white,
                           sat_on, sat, kinds, y0, y1)
            if denoise > 0:
                above = _rgb_row(src, _mirror(y - 1, h), rgb, rgb_tags, ring, tags, scratch, black4, inv4, gains4,
                                 wb_on, white, sat_on, sat, kinds, y0, y1)
                below = _rgb_row(src, _mirror(y + 1, h), rgb, rgb_tags, ring, tags, scratch, black4, inv4, gains4,
                                 wb_on, white, sat_on, sat, kinds, y0, y1)
                if denoise == 1:
                    _median3_row(above, row, below, 3, filtered)
                else:
                    _mean3_row(above, row, below, 3, colsum, filtered)
                row = filtered
            _tail_row(row, y, tmp, flat_out[y], vig_on, geom, ks, mat_on, m, curve, exponent, maxval, thr, coarse,
                      bins)


@njit(parallel=True, cache=True, nogil=True)
def _fused_pointwise_kernel(src, out, vig_on, geom, ks, mat_on, m, curve, exponent, maxval, thr, coarse, bins):
    # src, out: (h, 3 w) flat RGB rows
    h, n = src.shape
    for band in prange((h + BAND_ROWS - 1) // BAND_ROWS):
        tmp = np.empty((2, n), dtype=np.float32)
        for y in range(band * BAND_ROWS, min(h, (band + 1) * BAND_ROWS)):
            _tail_row(src[y], y, tmp, out[y], vig_on, geom, ks, mat_on, m, curve, exponent, maxval, thr, coarse,
                      bins)


def _is_tail(names) -> bool:
    """Whether ``names`` is a non-empty ordered subsequence of the pointwise tail."""
    order = [TAIL_ORDER.index(n) for n in names if n in TAIL_ORDER]
    return len(order) == len(names) and len(names) > 0 and order == sorted(set(order))


@dataclass
class Segment:
    kind: str           # "head" (fused demosaic), "tail" (fused pointwise), "stage" (run alone)
    stages: list


def _fusable_denoise(stage) -> bool:
    """A 3 x 3 median or mean right after demosaicing runs inside the fused head, on rows."""
    return stage.name == "denoise" and stage.size == 3 and stage.method in ("median", "mean")


def plan(stages, input_kind: str = RAW, *, linear_input: bool = False) -> list:
    """Split a validated stage list into fused segments and single stages."""
    names = [s.name for s in stages]
    segments = []
    i = 0
    kind = input_kind
    while i < len(stages):
        # head: [black_level] [white_balance] demosaic [denoise 3x3] [tail...], on mosaic data
        if not linear_input and kind in (RAW, MOSAIC):
            j = i
            pre = []
            while j < len(stages) and names[j] in ("black_level", "white_balance") and len(pre) < 2:
                pre.append(names[j])
                j += 1
            if pre in ([], ["black_level"], ["white_balance"], ["black_level", "white_balance"]) \
                    and j < len(stages) and names[j] == "demosaic" and (kind == RAW) == ("black_level" in pre):
                k = j + 1
                if k < len(stages) and _fusable_denoise(stages[k]):
                    k += 1
                t = k
                while k < len(stages) and _is_tail(names[t:k + 1]):
                    k += 1
                segments.append(Segment("head", list(stages[i:k])))
                kind = stages[k - 1].produces(RGB) if k - 1 > j else RGB
                i = k
                continue
        if kind in (RGB,) and _is_tail(names[i:i + 1]):
            k = i + 1
            while k < len(stages) and _is_tail(names[i:k + 1]):
                k += 1
            if k - i >= 2 or names[i] in ("vignetting", "color_matrix"):
                segments.append(Segment("tail", list(stages[i:k])))
                kind = stages[k - 1].produces(RGB)
                for s in stages[i:k]:
                    kind = s.produces(kind)
                i = k
                continue
        segments.append(Segment("stage", [stages[i]]))
        kind = stages[i].produces(kind) if not (linear_input and names[i] in ("black_level", "demosaic")) else RGB
        i += 1
    return segments


def _output(shape, maxval, out: Optional[np.ndarray]):
    dtype = np.float32 if maxval == 0 else (np.uint8 if maxval == 255 else np.uint16)
    if out is not None and out.shape == shape and out.dtype == dtype:
        return out
    return np.empty(shape, dtype=dtype)


def run_head(segment, frame, out=None):
    """Run a fused demosaic segment on a RAW or MOSAIC frame; returns the new frame."""
    by_name = {s.name: s for s in segment.stages}
    src = np.ascontiguousarray(frame.data)
    if "black_level" in by_name:
        black, white = by_name["black_level"].levels(frame.meta)
        black4, inv4 = level_tables(black, white)
        saturation = np.empty(src.shape, dtype=np.bool_)   # filled by the kernel
        sat_args = (float(white), True, saturation)
    else:
        black4, inv4 = np.zeros(4, np.float32), np.ones(4, np.float32)
        saturation = frame.saturation
        sat_args = (0.0, False, np.zeros((1, 1), np.bool_))
    code = cfa_code(frame.cfa)
    wb = by_name.get("white_balance")
    gains4 = np.ones(4, np.float32)
    if wb is not None:
        if wb.method in ("gray_world", "white_world"):
            # data-dependent gains: estimate on the normalised mosaic exactly as the chain does
            from ..isp import subtract_black_level
            probe = frame.with_data(subtract_black_level(src, black=black, white=white) if "black_level" in by_name
                                    else src, MOSAIC)
            gains = wb.resolve_gains(probe)
        else:
            gains = wb.resolve_gains(frame)
        frame.notes.append({"stage": "white_balance", "gains": [float(g) for g in gains]})
        gains4 = np.asarray(gains, np.float32)[code]
    tail = resolve_tail(segment.stages, frame.meta, src.shape)
    _note_tail(segment.stages, frame, tail)
    result = _output(src.shape + (3,), tail.maxval, out)
    den = by_name.get("denoise")
    denoise = 0 if den is None else (1 if den.method == "median" else 2)
    _fused_demosaic_kernel(src, black4, inv4, gains4, wb is not None, *sat_args, pixel_kinds(code), denoise, result,
                           tail.vig_on, tail.geom, tail.ks, tail.mat_on, tail.matrix, tail.curve,
                           tail.exponent, tail.maxval, tail.thresholds, tail.coarse, tail.bins)
    return frame.with_data(result, _final_kind(segment.stages, RGB), saturation=saturation)


def run_tail(segment, frame, out=None):
    src = np.ascontiguousarray(frame.data, dtype=np.float32)
    tail = resolve_tail(segment.stages, frame.meta, src.shape)
    _note_tail(segment.stages, frame, tail)
    result = _output(src.shape, tail.maxval, out)
    h = src.shape[0]
    _fused_pointwise_kernel(src.reshape(h, -1), result.reshape(h, -1), tail.vig_on, tail.geom, tail.ks,
                            tail.mat_on, tail.matrix, tail.curve, tail.exponent, tail.maxval, tail.thresholds,
                            tail.coarse, tail.bins)
    return frame.with_data(result, _final_kind(segment.stages, frame.kind))


def _note_tail(stages, frame, tail):
    for s in stages:
        if s.name == "color_matrix":
            s.note(frame, s.resolve_matrix(frame.meta))


def _final_kind(stages, kind):
    for s in stages:
        if s.name != "demosaic":
            kind = s.produces(kind)
    return kind if kind not in (MOSAIC, RAW) else RGB


__all__ = ["plan", "run_head", "run_tail", "Segment", "DISPLAY", "QUANTIZED"]
