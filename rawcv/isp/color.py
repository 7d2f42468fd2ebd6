"""Colour correction: camera RGB -> linear sRGB from the file's ``ColorMatrix`` (XYZ -> camera)."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np
from numba import njit, prange

from ..errors import PipelineError
from ._validate import as_rgb
from .frame import RGB
from .stage import FusedOp, Fusion, Param, Stage, register_stage

# IEC 61966-2-1 linear sRGB (D65) -> XYZ
SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375],
     [0.2126729, 0.7151522, 0.0721750],
     [0.0193339, 0.1191920, 0.9503041]]
)


def camera_to_srgb_matrix(xyz_to_cam) -> np.ndarray:
    """The 3x3 camera RGB -> linear sRGB matrix for white-balanced camera data.

    Follows dcraw/LibRaw: ``srgb_to_cam = xyz_to_cam @ SRGB_TO_XYZ`` with rows normalised to sum 1
    (so that a white-balanced neutral, camera (1, 1, 1), maps to sRGB (1, 1, 1)), then inverted.

    Examples
    --------
    >>> import numpy as np
    >>> m = camera_to_srgb_matrix(np.linalg.inv(SRGB_TO_XYZ))
    >>> bool(np.allclose(m, np.eye(3), atol=1e-6))
    True
    """
    m = np.asarray(xyz_to_cam, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(m)) or abs(np.linalg.det(m)) < 1e-12:
        raise ValueError("colour matrix is missing or singular")
    srgb_to_cam = m @ SRGB_TO_XYZ
    srgb_to_cam = srgb_to_cam / srgb_to_cam.sum(axis=1, keepdims=True)
    return np.linalg.inv(srgb_to_cam)


@njit(cache=True, nogil=True)
def _matrix_scalar(r, g, b, m):
    return (m[0, 0] * r + m[0, 1] * g + m[0, 2] * b,
            m[1, 0] * r + m[1, 1] * g + m[1, 2] * b,
            m[2, 0] * r + m[2, 1] * g + m[2, 2] * b)


@njit(cache=True, nogil=True)
def _matrix_row(src_row, m, out_row):
    """One flat RGB row (R, G, B interleaved) through ``m`` (``out_row`` may be ``src_row``).
    Shared by the stand-alone kernel and the fused pipeline path."""
    for x in range(src_row.size // 3):
        r, g, b = _matrix_scalar(src_row[3 * x], src_row[3 * x + 1], src_row[3 * x + 2], m)
        out_row[3 * x] = r
        out_row[3 * x + 1] = g
        out_row[3 * x + 2] = b


@njit(cache=True, nogil=True)
def _matrix_fused_row(src_row, y, args, scratch, out_row):
    """Fused-pass row function of :class:`ColorMatrix`: ``args[0]`` is the float32 matrix."""
    _matrix_row(src_row, args[0], out_row)


@njit(parallel=True, cache=True, nogil=True)
def _matrix_kernel(src, m, out):
    h, w, _ = src.shape
    flat_in = src.reshape(h, 3 * w)
    flat_out = out.reshape(h, 3 * w)
    for y in prange(h):
        _matrix_row(flat_in[y], m, flat_out[y])


def apply_color_matrix(image, matrix) -> np.ndarray:
    """``out[..., i] = sum_j matrix[i, j] * image[..., j]`` in float32.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.ones((2, 2, 3), np.float32)
    >>> apply_color_matrix(img, np.diag([2.0, 1.0, 0.5]))[0, 0].tolist()
    [2.0, 1.0, 0.5]
    """
    arr = as_rgb(image)
    out = np.empty_like(arr)
    _matrix_kernel(arr, _float32_matrix(matrix), out)
    return out


def _float32_matrix(matrix) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(matrix, dtype=np.float32).reshape(3, 3))


# --- the stage --------------------------------------------------------------------------------

@register_stage
class ColorMatrix(Stage):
    name = "color_matrix"
    doc = "Camera RGB -> linear sRGB from the file's colour matrix (or an explicit 3x3 matrix)."
    params = (
        Param("matrix", "floats", None, "explicit 3x3 camera->output matrix, row-major (default: from the file)", length=9),
        Param("missing", "str", "skip", "if the file has no colour matrix", choices=("skip", "error")),
    )
    accepts = (RGB,)
    linear_only = True

    def resolve_matrix(self, meta) -> Optional[np.ndarray]:
        """The matrix for a file with ``meta`` (None: the file has none and ``missing`` is skip)."""
        if self.matrix is not None:
            return np.asarray(self.matrix, dtype=np.float64).reshape(3, 3)
        if meta.xyz_to_cam is None:
            if self.missing == "error":
                raise PipelineError("stage 'color_matrix': the file has no colour matrix")
            return None
        return camera_to_srgb_matrix(meta.xyz_to_cam)

    def resolve_and_note(self, meta, notes) -> Optional[np.ndarray]:
        """:meth:`resolve_matrix`, with the matrix used (or why none was) added to ``notes``:
        the same record entry whichever backend runs."""
        m = self.resolve_matrix(meta)
        if m is None:
            self.note(notes, skipped="file has no colour matrix")
        else:
            self.note(notes, matrix=np.round(m, 6).tolist())
        return m

    def color_space(self, space, meta):
        if self.matrix is not None:
            return replace(space, primaries="custom RGB")
        return space if meta.xyz_to_cam is None else replace(space, primaries="sRGB")

    def apply(self, frame):
        m = self.resolve_and_note(frame.meta, frame.notes)
        return frame if m is None else frame.with_data(apply_color_matrix(frame.data, m))

    def fusion(self, kind):
        return Fusion.POINTWISE

    def fused_op(self, ctx):
        m = self.resolve_and_note(ctx.meta, ctx.notes)
        return FusedOp(None) if m is None else FusedOp(_matrix_fused_row, (_float32_matrix(m),))
