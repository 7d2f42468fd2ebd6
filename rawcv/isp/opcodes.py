"""The DNG opcodes as stages: gain maps, polynomial maps, lens warps and trims, and the list of
stages a file's opcode lists turn into (:func:`opcode_stages`).

Each opcode is a stage with parameters like any other, usable on its own in a pipeline file; the
pipelines insert them where the DNG specification applies each list (list 1 on the stored raw
values, list 2 after black level, list 3 after demosaicing: :meth:`rawcv.pipeline.Pipeline.stages_for`).
``FixVignetteRadial`` is the ``vignetting`` stage and the two ``FixBadPixels`` opcodes the
``bad_pixels`` stage (:mod:`rawcv.isp.bad_pixels`). On stored raw values (list 1) an opcode sees
them as fractions of 65535 and rounds back, as the DNG SDK's 16-bit buffers do.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import dng_opcodes as dng
from ..errors import PipelineError
from .frame import MOSAIC, RAW, RAW_RGB, RGB
from .stage import FusedOp, Fusion, Param, Stage, register_stage
from .vignetting import geometry

_RAW_SCALE = 65535.0


# --- the area of a per-pixel opcode ----------------------------------------------------------------

def area_array(area, shape) -> np.ndarray:
    """int64 ``[top, left, bottom, right, plane, planes, row_pitch, col_pitch]`` clipped to an image
    of ``shape`` (None: every pixel and plane)."""
    h, w = shape[:2]
    if area is None:
        return np.array([0, 0, h, w, 0, 3, 1, 1], dtype=np.int64)
    a = np.array([int(v) for v in area], dtype=np.int64)
    a[2], a[3] = min(a[2], h), min(a[3], w)
    return a


@njit(cache=True, nogil=True)
def _copy_row(src_row, out_row):
    for j in range(src_row.size):
        out_row[j] = src_row[j]


# --- MapPolynomial -------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _polynomial_row(src_row, y, nc, area, coefficients, out_row):
    """Row ``y`` of ``nc`` interleaved planes with the polynomial applied inside ``area`` (Horner
    in float64, so every backend computes the same value)."""
    _copy_row(src_row, out_row)
    top, left, bottom, right = area[0], area[1], area[2], area[3]
    if y < top or y >= bottom or (y - top) % area[6] != 0:
        return
    last = min(area[4] + area[5], nc)
    for x in range(left, right, area[7]):
        for p in range(area[4], last):
            v = np.float64(src_row[x * nc + p])
            acc = coefficients[coefficients.size - 1]
            for i in range(coefficients.size - 2, -1, -1):
                acc = acc * v + coefficients[i]
            out_row[x * nc + p] = np.float32(acc)


@njit(cache=True, nogil=True)
def _polynomial_fused_row(src_row, y, args, scratch, out_row):
    nc, area, coefficients = args
    _polynomial_row(src_row, y, nc, area, coefficients, out_row)


@njit(parallel=True, cache=True, nogil=True)
def _polynomial_kernel(src, nc, area, coefficients, out):
    for y in prange(src.shape[0]):
        _polynomial_row(src[y], y, nc, area, coefficients, out[y])


def map_polynomial(image, *, coefficients, area=None) -> np.ndarray:
    """``sum_i coefficients[i] x^i`` of every value inside ``area`` (DNG ``MapPolynomial``).

    Parameters
    ----------
    image : ndarray
        Float mosaic (H x W) or RGB (H x W x 3).
    coefficients : sequence of float
        Constant term first, at most 9.
    area : 8 ints, optional
        ``top, left, bottom, right, plane, planes, row_pitch, col_pitch``; default all of it.

    Examples
    --------
    >>> import numpy as np
    >>> map_polynomial(np.full((2, 2), 0.5, np.float32), coefficients=[0.0, 0.0, 1.0]).tolist()
    [[0.25, 0.25], [0.25, 0.25]]
    """
    return _run_pointwise(image, _polynomial_kernel, area,
                          np.ascontiguousarray(coefficients, dtype=np.float64))


# --- GainMap -------------------------------------------------------------------------------------

def _axis_table(n: int, points: int, spacing: float, origin: float):
    """Per row (or column) of an image ``n`` pixels long: the two map indices and the fraction
    between them, clamped at the map's ends as the DNG SDK's gain map interpolator does."""
    pos = ((np.arange(n, dtype=np.float64) + 0.5) / n - origin) / spacing
    i1 = np.clip(np.floor(pos), 0, points - 1).astype(np.int64)
    i2 = np.minimum(i1 + 1, points - 1)
    frac = np.where((pos <= 0) | (i1 >= points - 1), 0.0, pos - i1)
    return i1, i2, frac


def gain_map_tables(shape, points, spacing, origin):
    """``(rows, cols)``: for the rows and columns of an image of ``shape``, ``(i1, i2, fraction)``
    of a gain map's bilinear interpolation (shared by every backend)."""
    h, w = shape[:2]
    return (_axis_table(h, int(points[0]), float(spacing[0]), float(origin[0])),
            _axis_table(w, int(points[1]), float(spacing[1]), float(origin[1])))


@njit(cache=True, nogil=True)
def _gain_map_row(src_row, y, nc, area, grid, r1, r2, rf, c1, c2, cf, out_row):
    _copy_row(src_row, out_row)
    top, left, bottom, right = area[0], area[1], area[2], area[3]
    if y < top or y >= bottom or (y - top) % area[6] != 0:
        return
    last = min(area[4] + area[5], nc)
    i1, i2, f = r1[y], r2[y], rf[y]
    for x in range(left, right, area[7]):
        j1, j2, g = c1[x], c2[x], cf[x]
        for p in range(area[4], last):
            mp = min(p, grid.shape[2] - 1)
            left_value = grid[i1, j1, mp] * (1.0 - f) + grid[i2, j1, mp] * f
            right_value = grid[i1, j2, mp] * (1.0 - f) + grid[i2, j2, mp] * f
            gain = np.float32(left_value * (1.0 - g) + right_value * g)
            out_row[x * nc + p] = src_row[x * nc + p] * gain


@njit(cache=True, nogil=True)
def _gain_map_fused_row(src_row, y, args, scratch, out_row):
    nc, area, grid, r1, r2, rf, c1, c2, cf = args
    _gain_map_row(src_row, y, nc, area, grid, r1, r2, rf, c1, c2, cf, out_row)


@njit(parallel=True, cache=True, nogil=True)
def _gain_map_kernel(src, nc, area, grid, r1, r2, rf, c1, c2, cf, out):
    for y in prange(src.shape[0]):
        _gain_map_row(src[y], y, nc, area, grid, r1, r2, rf, c1, c2, cf, out[y])


def _gain_map_args(shape, grid, points, spacing, origin):
    (r1, r2, rf), (c1, c2, cf) = gain_map_tables(shape, points, spacing, origin)
    return (np.ascontiguousarray(grid, dtype=np.float64), r1, r2, rf, c1, c2, cf)


def apply_gain_map(image, *, gains, spacing=(1.0, 1.0), origin=(0.0, 0.0), area=None) -> np.ndarray:
    """Multiply the values inside ``area`` by a gain map (DNG ``GainMap``).

    Parameters
    ----------
    image : ndarray
        Float mosaic (H x W) or RGB (H x W x 3).
    gains : ndarray, rows x columns x map planes
        The map; image plane ``p`` takes map plane ``min(p, map planes - 1)``.
    spacing, origin : 2 floats
        Rows then columns, as fractions of the image height and width: map point ``(i, j)`` sits
        at ``origin + (i, j) * spacing``, a pixel at its centre ``((y + 0.5) / H, (x + 0.5) / W)``.
    area : 8 ints, optional
        ``top, left, bottom, right, plane, planes, row_pitch, col_pitch``; default all of it.

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.array([1.0, 3.0], np.float32).reshape(1, 2, 1)   # 1 row, 2 columns of points
    >>> out = apply_gain_map(np.ones((2, 4), np.float32), gains=ramp, spacing=(1.0, 1.0))
    >>> out[0].round(3).tolist()
    [1.25, 1.75, 2.25, 2.75]
    """
    grid = np.asarray(gains, dtype=np.float64)
    if grid.ndim != 3 or min(grid.shape) < 1:
        raise ValueError(f"gains must be a rows x columns x planes map, got shape {grid.shape}")
    arr = np.asarray(image)
    return _run_pointwise(image, _gain_map_kernel, area,
                          *_gain_map_args(arr.shape, grid, grid.shape[:2], spacing, origin))


def _run_pointwise(image, kernel, area, *args) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"image must be H x W (mosaic) or H x W x 3 (RGB), got shape {arr.shape}")
    raw = arr.dtype == np.uint16
    src = np.ascontiguousarray(arr, dtype=np.float32) / np.float32(_RAW_SCALE) if raw \
        else np.ascontiguousarray(arr, dtype=np.float32)
    nc = 3 if src.ndim == 3 else 1
    h = src.shape[0]
    out = np.empty_like(src)
    kernel(src.reshape(h, -1), nc, area_array(area, src.shape), *args, out.reshape(h, -1))
    return to_raw(out) if raw else out


def to_raw(values: np.ndarray) -> np.ndarray:
    """Fractions of 65535 back to stored 16-bit values (rounded, clipped)."""
    return np.floor(np.clip(values, 0.0, 1.0) * np.float32(_RAW_SCALE) + np.float32(0.5)).astype(np.uint16)


# --- WarpRectilinear -----------------------------------------------------------------------------

def warp_geometry(shape, center) -> np.ndarray:
    """float64 ``(cy, cx, m)``: the optical centre in pixels and the distance from it to the
    farthest corner (the unit of the warp's normalised radius; :func:`rawcv.isp.vignetting.geometry`)."""
    cy, cx, inv_rmax2 = geometry(shape, center)
    return np.array([cy, cx, 1.0 / np.sqrt(np.float64(inv_rmax2))], dtype=np.float64)


@njit(cache=True, nogil=True)
def _warp_source(y, x, geom, k):
    """Where output pixel (y, x) takes its value from, for one plane's ``k`` (kr0..kr3, kt0, kt1)."""
    cy, cx, m = geom[0], geom[1], geom[2]
    dx = (x - cx) / m
    dy = (y - cy) / m
    r2 = dx * dx + dy * dy
    f = k[0] + r2 * (k[1] + r2 * (k[2] + r2 * k[3]))
    sx = cx + m * (f * dx + k[4] * 2.0 * dx * dy + k[5] * (r2 + 2.0 * dx * dx))
    sy = cy + m * (f * dy + k[5] * 2.0 * dx * dy + k[4] * (r2 + 2.0 * dy * dy))
    return sy, sx


@njit(parallel=True, cache=True, nogil=True)
def _warp_points_kernel(ys, xs, geom, k, out_y, out_x):
    for i in prange(ys.size):
        out_y[i], out_x[i] = _warp_source(ys[i], xs[i], geom, k)


def warp_source(shape, ys, xs, *, coefficients, center=(0.5, 0.5)):
    """Where the warp of an image of ``shape`` takes the value of output points ``(ys, xs)`` from,
    for one plane's 6 coefficients (float64 arrays; points need not be whole pixels, so a
    simulated lens can invert the mapping).

    Examples
    --------
    >>> sy, sx = warp_source((5, 5), np.array([2.0]), np.array([4.0]), coefficients=[2, 0, 0, 0, 0, 0])
    >>> float(sy[0]), float(sx[0])
    (2.0, 6.0)
    """
    ys = np.ascontiguousarray(ys, dtype=np.float64).ravel()
    xs = np.ascontiguousarray(xs, dtype=np.float64).ravel()
    out_y, out_x = np.empty_like(ys), np.empty_like(xs)
    _warp_points_kernel(ys, xs, warp_geometry(shape, center), np.asarray(coefficients, dtype=np.float64).reshape(6),
                        out_y, out_x)
    return out_y, out_x


@njit(parallel=True, cache=True, nogil=True)
def _warp_kernel(src, geom, coefficients, out):
    h, w, nc = src.shape
    for y in prange(h):
        for x in range(w):
            for p in range(nc):
                sy, sx = _warp_source(np.float64(y), np.float64(x), geom, coefficients[min(p, coefficients.shape[0] - 1)])
                sy = min(max(sy, 0.0), h - 1.0)
                sx = min(max(sx, 0.0), w - 1.0)
                y0 = min(int(sy), h - 2) if h > 1 else 0
                x0 = min(int(sx), w - 2) if w > 1 else 0
                fy, fx = sy - y0, sx - x0
                top = src[y0, x0, p] * (1.0 - fx) + src[y0, x0 + 1, p] * fx
                bottom = src[y0 + 1, x0, p] * (1.0 - fx) + src[y0 + 1, x0 + 1, p] * fx
                out[y, x, p] = np.float32(top * (1.0 - fy) + bottom * fy)


def warp_rectilinear(image, *, coefficients, center=(0.5, 0.5)) -> np.ndarray:
    """Undo radial and tangential lens distortion (DNG ``WarpRectilinear``), bilinear resampling.

    Output pixel ``(x, y)`` takes the input at ``c + m (f(r) d + t(d))``: ``d`` is its offset from
    the optical centre ``c`` in units of ``m`` (the distance to the farthest corner), ``f(r) = kr0 +
    kr1 r^2 + kr2 r^4 + kr3 r^6`` and ``t`` the tangential terms of ``kt0, kt1``. Samples outside
    the image take the nearest edge.

    Parameters
    ----------
    image : ndarray, H x W x 3
    coefficients : 1 x 6 or 3 x 6 floats
        ``kr0, kr1, kr2, kr3, kt0, kt1`` for every plane, or per plane (lateral chromatic aberration).
    center : 2 floats
        Optical centre (x, y) as fractions of the width and height.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).random((6, 8, 3), dtype=np.float32)
    >>> bool(np.allclose(warp_rectilinear(img, coefficients=[1, 0, 0, 0, 0, 0]), img))
    True
    """
    arr = np.ascontiguousarray(image, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3 RGB, got shape {arr.shape}")
    k = np.asarray(coefficients, dtype=np.float64).reshape(-1, 6)
    if k.shape[0] not in (1, 3):
        raise ValueError(f"coefficients must be 6 values, or 6 per plane for 3 planes, got {k.size}")
    out = np.empty_like(arr)
    _warp_kernel(arr, warp_geometry(arr.shape, center), np.ascontiguousarray(k), out)
    return out


# --- stages ---------------------------------------------------------------------------------------

_AREA_DOC = "top, left, bottom, right, plane, planes, row pitch, column pitch (default: everything)"


class _PointwiseOpcode(Stage):
    """A per-pixel opcode: on floats in the fused pass, on stored raw values alone (rounded back)."""

    accepts = (RAW, RAW_RGB, MOSAIC, RGB)
    linear_only = True
    _kernel = None
    _fused_row = None

    def check(self):
        if self.area is not None:
            a = [int(v) for v in self.area]
            if a != list(self.area) or min(a) < 0 or a[2] <= a[0] or a[3] <= a[1] or min(a[5:]) < 1:
                raise PipelineError(f"stage '{self.name}': parameter 'area' needs whole numbers top < bottom, "
                                    f"left < right, planes and pitches >= 1, got {self.area!r}")

    def kernel_args(self, shape) -> tuple:
        raise NotImplementedError

    def apply(self, frame):
        return frame.with_data(_run_pointwise(frame.data, self._kernel, self.area,
                                              *self.kernel_args(frame.data.shape)))

    def fusion(self, kind):
        return Fusion.POINTWISE if kind in (MOSAIC, RGB) else None

    def fused_op(self, ctx):
        nc = 3 if ctx.kind == RGB else 1
        return FusedOp(self._fused_row, (nc, area_array(self.area, ctx.shape)) + self.kernel_args(ctx.shape))


@register_stage
class MapPolynomialStage(_PointwiseOpcode):
    name = "map_polynomial"
    doc = "A polynomial of each value, constant term first (DNG MapPolynomial)."
    params = (
        Param("coefficients", "floats", [0.0, 1.0], "polynomial coefficients, constant term first (at most 9)"),
        Param("area", "floats", None, _AREA_DOC, length=8),
    )
    _kernel = staticmethod(_polynomial_kernel)
    _fused_row = staticmethod(_polynomial_fused_row)

    def check(self):
        super().check()
        if not 1 <= len(self.coefficients) <= 9:
            raise PipelineError(f"stage 'map_polynomial': parameter 'coefficients' needs 1 to 9 numbers, "
                                f"got {len(self.coefficients)}")

    def kernel_args(self, shape):
        return (np.asarray(self.coefficients, dtype=np.float64),)


@register_stage
class GainMapStage(_PointwiseOpcode):
    name = "gain_map"
    doc = "Multiply by a gain map interpolated bilinearly, as lens shading (DNG GainMap)."
    params = (
        Param("gains", "floats", [1.0], "map values, row-major rows x columns x planes"),
        Param("points", "floats", [1, 1], "map rows and columns", length=2),
        Param("planes_in_map", "int", 1, "planes of the map", minimum=1),
        Param("spacing", "floats", [1.0, 1.0], "distance between map points (rows, columns; fractions of the image)",
              length=2),
        Param("origin", "floats", [0.0, 0.0], "position of the first map point (rows, columns; fractions)", length=2),
        Param("area", "floats", None, _AREA_DOC, length=8),
    )
    _kernel = staticmethod(_gain_map_kernel)
    _fused_row = staticmethod(_gain_map_fused_row)

    def check(self):
        super().check()
        rows, cols = self.points
        if rows != int(rows) or cols != int(cols) or min(rows, cols) < 1 or min(self.spacing) <= 0:
            raise PipelineError("stage 'gain_map': parameter 'points' needs whole numbers >= 1 and 'spacing' "
                                "positive numbers")
        if len(self.gains) != int(rows) * int(cols) * self.planes_in_map:
            raise PipelineError(f"stage 'gain_map': parameter 'gains' needs rows x columns x planes = "
                                f"{int(rows) * int(cols) * self.planes_in_map} numbers, got {len(self.gains)}")

    def grid(self) -> np.ndarray:
        return np.asarray(self.gains, dtype=np.float64).reshape(int(self.points[0]), int(self.points[1]),
                                                                self.planes_in_map)

    def kernel_args(self, shape):
        return _gain_map_args(shape, self.grid(), [int(p) for p in self.points], self.spacing, self.origin)


@register_stage
class WarpRectilinearStage(Stage):
    name = "warp_rectilinear"
    doc = "Undo lens distortion and lateral chromatic aberration (DNG WarpRectilinear)."
    params = (
        Param("coefficients", "floats", [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
              "kr0, kr1, kr2, kr3, kt0, kt1 for all planes, or 18 values (R, G, B)"),
        Param("center", "floats", [0.5, 0.5], "optical centre (x, y) as fractions of width, height", length=2),
    )
    accepts = (RGB,)
    linear_only = True

    def check(self):
        if len(self.coefficients) not in (6, 18):
            raise PipelineError(f"stage 'warp_rectilinear': parameter 'coefficients' needs 6 or 18 numbers, "
                                f"got {len(self.coefficients)}")
        if not all(0 <= c <= 1 for c in self.center):
            raise PipelineError("stage 'warp_rectilinear': center must be fractions in [0, 1]")

    def apply(self, frame):
        return frame.with_data(warp_rectilinear(frame.data, coefficients=self.coefficients,
                                                center=tuple(self.center)))


@register_stage
class TrimBoundsStage(Stage):
    name = "trim_bounds"
    doc = "Crop to a rectangle (DNG TrimBounds)."
    params = (Param("bounds", "floats", None, "top, left, bottom, right (bottom and right exclusive)", length=4),)
    accepts = (RGB,)

    def check(self):
        if self.bounds is not None:
            t, l, b, r = self.bounds
            if [int(v) for v in self.bounds] != list(self.bounds) or min(t, l) < 0 or b <= t or r <= l:
                raise PipelineError(f"stage 'trim_bounds': parameter 'bounds' needs whole numbers top < bottom, "
                                    f"left < right, got {self.bounds!r}")

    def window(self, shape) -> tuple:
        """``(top, left, bottom, right)`` inside an image of ``shape``."""
        h, w = shape[:2]
        if self.bounds is None:
            return 0, 0, h, w
        t, l, b, r = (int(v) for v in self.bounds)
        if b > h or r > w:
            raise PipelineError(f"stage 'trim_bounds': bounds {t, l, b, r} reach outside the {w} x {h} image")
        return t, l, b, r

    def output_shape(self, kind, shape):
        t, l, b, r = self.window(shape)
        return (b - t, r - l)

    def apply(self, frame):
        t, l, b, r = self.window(frame.data.shape)
        sat = frame.saturation
        return frame.with_data(np.ascontiguousarray(frame.data[t:b, l:r]),
                               saturation=None if sat is None else np.ascontiguousarray(sat[t:b, l:r]))


# --- a file's opcode lists as stages --------------------------------------------------------------

def _stage_of(record):
    """The stage doing ``record``, or None where rawcv does not apply that opcode."""
    from .stage import STAGES

    if isinstance(record, dng.GainMap):
        return GainMapStage(gains=list(record.gains), points=list(record.points), planes_in_map=record.map_planes,
                            spacing=list(record.spacing), origin=list(record.origin), area=list(record.area.values()))
    if isinstance(record, dng.MapPolynomial):
        return MapPolynomialStage(coefficients=list(record.coefficients), area=list(record.area.values()))
    if isinstance(record, dng.FixVignetteRadial):
        k = record.k
        return STAGES["vignetting"](k1=k[0], k2=k[1], k3=k[2], k4=k[3], k5=k[4], center=list(record.center))
    if isinstance(record, dng.WarpRectilinear):
        return WarpRectilinearStage(coefficients=[v for c in record.coefficients for v in c],
                                    center=list(record.center))
    if isinstance(record, dng.TrimBounds):
        return TrimBoundsStage(bounds=[record.top, record.left, record.bottom, record.right])
    if isinstance(record, (dng.FixBadPixelsConstant, dng.FixBadPixelsList)) and "bad_pixels" in STAGES:
        return STAGES["bad_pixels"].from_opcode(record)
    return None


def opcode_stages(payload: bytes, list_number: int, kind: str, source: str = "") -> tuple:
    """The stages that apply one opcode list to a frame of ``kind``, and the record entries of the
    opcodes skipped (rawcv does not support them, or not on that kind of data, and they are
    optional).

    Raises
    ------
    PipelineError
        A malformed list, or an opcode rawcv cannot apply that is not optional (the message names
        ``source``, the list and the opcode).
    """
    where = f"{source}: " if source else ""
    try:
        entries = dng.decode_opcode_list(payload)
    except dng.OpcodeError as exc:
        raise PipelineError(f"{where}malformed OpcodeList{list_number}: {exc}") from None
    stages, skipped = [], []
    for entry in entries:
        stage = _stage_of(entry.record)
        if stage is not None and kind not in stage.accepts:
            reason = f"rawcv applies it only after {'demosaicing' if RGB in stage.accepts else 'black level'}"
            stage = None
        else:
            reason = "rawcv does not support it"
        if stage is not None:
            stages.append(stage)
            continue
        if not entry.optional:
            raise PipelineError(f"{where}OpcodeList{list_number} has {entry.name}, which is not optional, and "
                                f"{reason} (process with opcodes off to ignore the list)")
        skipped.append({"stage": "opcodes", "list": list_number, "opcode": entry.name,
                        "skipped": f"optional, and {reason}"})
    return stages, skipped


__all__ = ["map_polynomial", "apply_gain_map", "gain_map_tables", "warp_rectilinear", "warp_geometry", "warp_source",
           "area_array",
           "to_raw", "opcode_stages", "MapPolynomialStage", "GainMapStage", "WarpRectilinearStage", "TrimBoundsStage"]
