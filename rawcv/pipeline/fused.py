"""The fused fast path: a schedule over the same stage definitions, with no full-size intermediates.

A run of stages ``black_level -> white_balance -> demosaic -> vignetting -> color_matrix -> gamma ->
quantize`` (any of the middle ones may be absent) becomes one Numba pass over the mosaic: each
thread normalises a band of rows into a small buffer, demosaics it with the same per-pixel function
as :func:`rawcv.isp.demosaic_bilinear`, then applies the pointwise tail with the same per-pixel
functions as the stand-alone stages. The result is therefore bit-for-bit the stage-by-stage result;
``tests/test_fused.py`` checks it for every Bayer layout. Encoding + quantisation use an exact table
(:func:`rawcv.isp.tone.encode_quantize_table`) instead of a ``pow`` per value.

Stages that are not pointwise (a median after demosaicing, say) split the schedule: the part before
runs fused, that stage runs alone, and a pointwise tail after it runs as one fused pass again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
from numba import njit, prange

from ..isp import tone
from ..isp.black_level import _normalize_scalar, level_tables
from ..isp.color import _matrix_scalar
from ..isp.demosaic import _bilinear_pixel, _mirror, pixel_kinds
from ..isp.vignetting import _gain_scalar, geometry
from ..meta import cfa_code
from .frame import DISPLAY, MOSAIC, QUANTIZED, RAW, RGB

BAND_ROWS = 32
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


@lru_cache(maxsize=8)
def _tables(curve: str, gamma: float, bits: int):
    return tone.encode_quantize_table(curve, gamma, bits)


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
        thr, coarse = _tables(gamma.curve, float(gamma.gamma), quant.bits)
    else:
        thr, coarse = np.zeros(2, np.float32), np.zeros(1, np.int32)
    return TailParams(vig is not None, geom, ks, m is not None,
                      np.ascontiguousarray((m if m is not None else np.eye(3)).astype(np.float32)),
                      curve, exponent, maxval, thr, coarse)


@njit(cache=True, nogil=True)
def _tail_store(r, g, b, y, x, out, vig_on, geom, ks, mat_on, m, curve, exponent, maxval, thr, coarse):
    if vig_on:
        gain = _gain_scalar(y, x, geom[0], geom[1], geom[2], ks[0], ks[1], ks[2])
        r = r * gain
        g = g * gain
        b = b * gain
    if mat_on:
        r, g, b = _matrix_scalar(r, g, b, m)
    if maxval > 0 and curve >= 0:
        out[y, x, 0] = _lookup_level(r, thr, coarse, maxval)
        out[y, x, 1] = _lookup_level(g, thr, coarse, maxval)
        out[y, x, 2] = _lookup_level(b, thr, coarse, maxval)
        return
    if curve >= 0:
        r = tone._encode_scalar(r, curve, exponent)
        g = tone._encode_scalar(g, curve, exponent)
        b = tone._encode_scalar(b, curve, exponent)
    if maxval > 0:
        r = tone._quantize_scalar(r, maxval)
        g = tone._quantize_scalar(g, maxval)
        b = tone._quantize_scalar(b, maxval)
    out[y, x, 0] = r
    out[y, x, 1] = g
    out[y, x, 2] = b


_lookup_level = tone._lookup_level


@njit(parallel=True, cache=True, nogil=True)
def _fused_demosaic_kernel(src, black4, inv4, gains4, wb_on, kinds, out,
                           vig_on, geom, ks, mat_on, m, curve, exponent, maxval, thr, coarse):
    h, w = src.shape
    nbands = (h + 31) // 32
    for band in prange(nbands):
        y0 = band * 32
        y1 = min(h, y0 + 32)
        rows = y1 - y0 + 2
        buf = np.empty((rows, w), dtype=np.float32)
        for i in range(rows):
            ys = _mirror(y0 - 1 + i, h)
            base = 2 * (ys & 1)
            for x in range(w):
                pos = base + (x & 1)
                v = _normalize_scalar(src[ys, x], black4[pos], inv4[pos])
                if wb_on:
                    v = v * gains4[pos]
                buf[i, x] = v
        for y in range(y0, y1):
            i = y - y0 + 1
            k0 = kinds[2 * (y & 1)]
            k1 = kinds[2 * (y & 1) + 1]
            for x in range(w):
                xm = _mirror(x - 1, w)
                xp = _mirror(x + 1, w)
                r, g, b = _bilinear_pixel(buf, i - 1, i, i + 1, xm, x, xp, k1 if x & 1 else k0)
                _tail_store(r, g, b, y, x, out, vig_on, geom, ks, mat_on, m, curve, exponent, maxval, thr, coarse)


@njit(parallel=True, cache=True, nogil=True)
def _fused_pointwise_kernel(src, out, vig_on, geom, ks, mat_on, m, curve, exponent, maxval, thr, coarse):
    h, w, _ = src.shape
    for y in prange(h):
        for x in range(w):
            _tail_store(src[y, x, 0], src[y, x, 1], src[y, x, 2], y, x, out,
                        vig_on, geom, ks, mat_on, m, curve, exponent, maxval, thr, coarse)


def _is_tail(names) -> bool:
    """Whether ``names`` is a non-empty ordered subsequence of the pointwise tail."""
    order = [TAIL_ORDER.index(n) for n in names if n in TAIL_ORDER]
    return len(order) == len(names) and len(names) > 0 and order == sorted(set(order))


@dataclass
class Segment:
    kind: str           # "head" (fused demosaic), "tail" (fused pointwise), "stage" (run alone)
    stages: list


def plan(stages, input_kind: str = RAW, *, linear_input: bool = False) -> list:
    """Split a validated stage list into fused segments and single stages."""
    names = [s.name for s in stages]
    segments = []
    i = 0
    kind = input_kind
    while i < len(stages):
        # head: [black_level] [white_balance] demosaic [tail...], on mosaic data
        if not linear_input and kind in (RAW, MOSAIC):
            j = i
            pre = []
            while j < len(stages) and names[j] in ("black_level", "white_balance") and len(pre) < 2:
                pre.append(names[j])
                j += 1
            if pre in ([], ["black_level"], ["white_balance"], ["black_level", "white_balance"]) \
                    and j < len(stages) and names[j] == "demosaic" and (kind == RAW) == ("black_level" in pre):
                k = j + 1
                while k < len(stages) and _is_tail(names[j + 1:k + 1]):
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
        from ..isp import saturation_mask
        saturation = saturation_mask(src, white=white)
    else:
        black4, inv4 = np.zeros(4, np.float32), np.ones(4, np.float32)
        saturation = frame.saturation
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
    _fused_demosaic_kernel(src, black4, inv4, gains4, wb is not None, pixel_kinds(code), result,
                           tail.vig_on, tail.geom, tail.ks, tail.mat_on, tail.matrix, tail.curve,
                           tail.exponent, tail.maxval, tail.thresholds, tail.coarse)
    return frame.with_data(result, _final_kind(segment.stages, RGB), saturation=saturation,
                           color_space="linear sRGB" if tail.mat_on else frame.color_space)


def run_tail(segment, frame, out=None):
    src = np.ascontiguousarray(frame.data, dtype=np.float32)
    tail = resolve_tail(segment.stages, frame.meta, src.shape)
    _note_tail(segment.stages, frame, tail)
    result = _output(src.shape, tail.maxval, out)
    _fused_pointwise_kernel(src, result, tail.vig_on, tail.geom, tail.ks, tail.mat_on, tail.matrix,
                            tail.curve, tail.exponent, tail.maxval, tail.thresholds, tail.coarse)
    return frame.with_data(result, _final_kind(segment.stages, frame.kind),
                           color_space="linear sRGB" if tail.mat_on else frame.color_space)


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
