"""Colour correction: white-balanced camera RGB -> an output colour space (linear sRGB by
default) from the file's ``ColorMatrix`` tags (XYZ -> camera), interpolated between the file's
calibration illuminants where it has two, as the DNG specification describes.

The interpolated matrix takes the place of the D65 one in dcraw's construction
(:func:`camera_to_output_matrix`); the white balance stays the ``white_balance`` stage's, and the
white-balanced neutral becomes the output space's white. A file with one matrix so gives what it
gave before colour spaces existed, bit for bit.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np
from numba import njit, prange

from ..colorspaces import (D50, D65, OUTPUT_SPACES, bradford_matrix, illuminant_cct, output_space, xy_to_cct,
                           xyz_to_xy)
from ..errors import PipelineError
from ._validate import as_rgb
from .frame import RGB
from .stage import FusedOp, Fusion, Param, Stage, register_stage

# linear sRGB (D65) -> XYZ, derived from the primaries (rawcv.colorspaces): the published 7-decimal matrix
SRGB_TO_XYZ = output_space("srgb").rgb_to_xyz


def _checked_matrix(xyz_to_cam) -> np.ndarray:
    m = np.asarray(xyz_to_cam, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(m)) or abs(np.linalg.det(m)) < 1e-12:
        raise ValueError("colour matrix is missing or singular")
    return m


def camera_to_output_matrix(xyz_to_cam, space: str = "srgb") -> np.ndarray:
    """The 3x3 white-balanced camera RGB -> ``space`` matrix (linear values).

    Follows dcraw/LibRaw, generalised to any output space: ``out_to_cam = xyz_to_cam @ rgb_to_xyz``
    with the space's primaries in D65-relative XYZ (Bradford-adapted from the space's white where
    that is not D65, as for ProPhoto's D50), its rows normalised so that the space's white maps to
    camera (1, 1, 1), then inverted. A white-balanced neutral, camera (1, 1, 1), so becomes the
    output's white: RGB (1, 1, 1), or D65's XYZ for ``xyz``. ``camera`` is the identity.

    Parameters
    ----------
    xyz_to_cam : (3, 3) array_like
        The camera's ``ColorMatrix`` (XYZ -> camera), for D65 or interpolated for the scene's
        white (:func:`dng_xyz_to_camera`).
    space : str
        A key of :data:`rawcv.colorspaces.OUTPUT_SPACES`.

    Examples
    --------
    >>> import numpy as np
    >>> m = camera_to_output_matrix(np.linalg.inv(SRGB_TO_XYZ), "srgb")
    >>> bool(np.allclose(m, np.eye(3), atol=1e-6))
    True
    >>> np.round(camera_to_output_matrix(np.linalg.inv(SRGB_TO_XYZ), "xyz") @ np.ones(3), 5).tolist()
    [0.95047, 1.0, 1.08883]
    """
    out = output_space(space)
    m = _checked_matrix(xyz_to_cam)
    if out.name == "camera":
        return np.eye(3)
    to_xyz = out.rgb_to_xyz
    if out.white != D65:
        # the neutral is taken to be D65 (dcraw's normalisation): the space's primaries in
        # D65-relative XYZ first, so that its own white is where the neutral lands
        to_xyz = bradford_matrix(out.white, D65) @ to_xyz
    out_to_cam = m @ to_xyz
    # (the product by a white of ones is exact, so sRGB's matrix is dcraw's, bit for bit)
    out_to_cam = out_to_cam / (out_to_cam * out.white_rgb).sum(axis=1, keepdims=True)
    return np.linalg.inv(out_to_cam)


def camera_to_srgb_matrix(xyz_to_cam) -> np.ndarray:
    """The 3x3 camera RGB -> linear sRGB matrix for white-balanced camera data:
    :func:`camera_to_output_matrix` for ``"srgb"``.

    Follows dcraw/LibRaw: ``srgb_to_cam = xyz_to_cam @ SRGB_TO_XYZ`` with rows normalised to sum 1
    (so that a white-balanced neutral, camera (1, 1, 1), maps to sRGB (1, 1, 1)), then inverted.

    Examples
    --------
    >>> import numpy as np
    >>> m = camera_to_srgb_matrix(np.linalg.inv(SRGB_TO_XYZ))
    >>> bool(np.allclose(m, np.eye(3), atol=1e-6))
    True
    """
    return camera_to_output_matrix(xyz_to_cam, "srgb")


# --- two calibration illuminants: the DNG specification's interpolation -------------------------

MAX_PASSES = 30           # the DNG SDK's limit (dng_color_spec::NeutralToXY)
XY_TOLERANCE = 1e-7       # |dx| + |dy| between passes that ends the search


def dng_xyz_to_camera(color_matrices, as_shot_wb, *, analog_balance=None, camera_calibrations=None) -> tuple:
    """The XYZ -> camera matrix for the as-shot white of a file calibrated under several
    illuminants, as the DNG specification's "Mapping Camera Color Space to CIE XYZ Space" does.

    The white is found by iteration: from a guess (D50), the matrix for the guess's correlated
    colour temperature maps the as-shot neutral (``1 / as_shot_wb``) to XYZ, whose chromaticity is
    the next guess, until it moves by less than :data:`XY_TOLERANCE` (the last of
    :data:`MAX_PASSES` passes averages the last two). The matrix for a temperature ``T`` between the
    calibrations' ``T1 < T2`` is ``g CM1 + (1 - g) CM2`` with weights linear in inverse
    temperature, ``g = (1/T - 1/T2) / (1/T1 - 1/T2)``; outside them it is the nearer one. With more
    than two matrices the two temperatures either side of ``T`` are used.

    The matrix is the specification's ``AnalogBalance @ CameraCalibration @ ColorMatrix``, the
    calibrations interpolated with the same weights as the colour matrices. (Diagonal factors do
    not change the colour correction, whose rows are normalised, but they do move the white that
    picks the weights.)

    Parameters
    ----------
    color_matrices : sequence of (int, 3 x 3)
        ``(CalibrationIlluminant code, ColorMatrix)`` pairs (:attr:`CameraMeta.color_matrices`).
    as_shot_wb : 3 floats
        The camera's white-balance multipliers (the inverse of ``AsShotNeutral``).
    analog_balance : 3 floats, optional
        The DNG ``AnalogBalance`` (default: none applied, ones).
    camera_calibrations : sequence of 3 x 3, optional
        The DNG ``CameraCalibrationN``, in the order of ``color_matrices`` (default: identities).

    Returns
    -------
    matrix : ndarray (3, 3)
    details : dict
        For the run's record: ``illuminants``, their ``illuminant_cct_K``, the ``white_xy`` found,
        its ``white_cct_K``, the ``weights`` of the matrices (in the order given) and ``passes``.

    Raises
    ------
    ValueError
        Fewer than two matrices, an illuminant without a known temperature (0, 255), two with the
        same temperature, or a neutral the matrices map outside the visible colours.

    Examples
    --------
    >>> import numpy as np
    >>> from rawcv.colorspaces import cct_to_xy, xy_to_xyz
    >>> cm_d65 = np.linalg.inv(SRGB_TO_XYZ)                 # a camera that sees sRGB under D65
    >>> cm_a = np.diag([0.6, 1.0, 1.4]) @ cm_d65            # ... and redder under light A
    >>> g = (1 / 4000 - 1 / 6504) / (1 / 2856 - 1 / 6504)  # the weight of A at 4000 K
    >>> neutral = (g * cm_a + (1 - g) * cm_d65) @ xy_to_xyz(cct_to_xy(4000))   # a 4000 K white
    >>> m, details = dng_xyz_to_camera([(17, cm_a), (21, cm_d65)], 1 / neutral)
    >>> details["white_cct_K"], details["weights"]
    (4000.0, [0.490092, 0.509908])
    """
    pairs = [(int(code), _checked_matrix(m)) for code, m in color_matrices]
    if len(pairs) < 2:
        raise ValueError("interpolation needs two or more colour matrices")
    temperatures = [illuminant_cct(code) for code, _ in pairs]
    if any(t is None for t in temperatures):
        unknown = [code for (code, _), t in zip(pairs, temperatures) if t is None]
        raise ValueError(f"calibration illuminant {unknown[0]} has no known colour temperature")
    if len(set(temperatures)) != len(temperatures):
        raise ValueError(f"two colour matrices share a colour temperature ({temperatures})")
    wb = np.asarray(as_shot_wb, dtype=np.float64).reshape(3)
    if not np.all(np.isfinite(wb)) or np.any(wb <= 0):
        raise ValueError(f"as-shot white balance must be positive, got {as_shot_wb!r}")
    neutral = 1.0 / wb
    matrices = np.stack([m for _, m in pairs])
    calibrations = np.stack([np.eye(3)] * len(pairs) if camera_calibrations is None else
                            [np.asarray(c, dtype=np.float64).reshape(3, 3) for c in camera_calibrations])
    if len(calibrations) != len(pairs):
        raise ValueError(f"{len(calibrations)} camera calibrations for {len(pairs)} colour matrices")
    balance = np.diag(np.ones(3) if analog_balance is None else np.asarray(analog_balance, np.float64).reshape(3))

    def xyz_to_camera(weights):
        return balance @ np.tensordot(weights, calibrations, axes=1) @ np.tensordot(weights, matrices, axes=1)

    xy = xyz_to_xy(D50)
    for n in range(MAX_PASSES):
        weights = _illuminant_weights(xy_to_cct(xy), temperatures)
        xyz = np.linalg.solve(xyz_to_camera(weights), neutral)
        if not xyz.sum() > 0:
            raise ValueError("the colour matrices map the as-shot neutral outside the visible colours")
        following = xyz_to_xy(xyz)
        done = np.abs(following - xy).sum() < XY_TOLERANCE
        if not done and n == MAX_PASSES - 1:
            following = (xy + following) / 2     # no convergence: settle between the last two
        xy = following
        if done:
            break
    weights = _illuminant_weights(xy_to_cct(xy), temperatures)
    details = {
        "illuminants": [code for code, _ in pairs],
        "illuminant_cct_K": [float(t) for t in temperatures],
        "white_xy": [round(float(v), 6) for v in xy],
        "white_cct_K": round(xy_to_cct(xy), 1),
        "weights": [round(float(w), 6) for w in weights],
        "passes": n + 1,
    }
    return xyz_to_camera(weights), details


def _illuminant_weights(cct: float, temperatures) -> np.ndarray:
    """Weights (summing to 1) of the matrices calibrated at ``temperatures`` for a white of
    ``cct``: linear in inverse temperature between the two either side, the nearer one outside."""
    order = np.argsort(temperatures)
    ts = np.asarray(temperatures, dtype=np.float64)[order]
    weights = np.zeros(len(ts))
    if cct <= ts[0]:
        weights[0] = 1.0
    elif cct >= ts[-1]:
        weights[-1] = 1.0
    else:
        i = int(np.searchsorted(ts, cct, side="right")) - 1
        g = (1.0 / cct - 1.0 / ts[i + 1]) / (1.0 / ts[i] - 1.0 / ts[i + 1])
        weights[i], weights[i + 1] = g, 1.0 - g
    out = np.empty_like(weights)
    out[order] = weights
    return out


def file_xyz_to_camera(meta) -> tuple:
    """``(XYZ -> camera matrix, details)`` for a file: interpolated for its white where it has two
    or more colour matrices (:func:`dng_xyz_to_camera`), else its own ``xyz_to_cam`` (D65); the
    matrix is None where the file has none. ``details`` is None, the interpolation's record, or
    why no interpolation was possible (``{"interpolation": reason}``). The file's
    ``AnalogBalance`` and ``CameraCalibrationN`` take part in finding the white."""
    if len(meta.color_matrices) < 2:
        return meta.xyz_to_cam, None
    try:
        return dng_xyz_to_camera(meta.color_matrices, meta.as_shot_wb, analog_balance=meta.analog_balance,
                                 camera_calibrations=meta.camera_calibrations or None)
    except ValueError as exc:
        return meta.xyz_to_cam, {"interpolation": f"not done ({exc}); the D65 matrix is used"}


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

SPACES = tuple(OUTPUT_SPACES)


@register_stage
class ColorMatrix(Stage):
    name = "color_matrix"
    doc = ("White-balanced camera RGB -> an output colour space (linear sRGB by default) from the file's "
           "colour matrices (or an explicit 3x3 matrix).")
    params = (
        Param("matrix", "floats", None, "explicit 3x3 camera->output matrix, row-major (default: from the file)", length=9),
        Param("space", "str", "srgb", "output colour space (linear values; the gamma stage encodes them)",
              choices=SPACES),
        Param("missing", "str", "skip", "if the file has no colour matrix", choices=("skip", "error")),
    )
    accepts = (RGB,)
    linear_only = True

    def check(self):
        if self.matrix is not None and self.space != self.param("space").default:
            raise PipelineError(f"stage '{self.name}': give parameter 'matrix' or 'space', not both")

    def resolve_matrix(self, meta) -> Optional[np.ndarray]:
        """The matrix for a file with ``meta`` (None: the stage leaves the file's values as they are)."""
        return self._resolve(meta)[0]

    def _resolve(self, meta) -> tuple:
        """``(matrix or None, what the record says about it)``."""
        if self.matrix is not None:
            return np.asarray(self.matrix, dtype=np.float64).reshape(3, 3), {}
        if self.space == "camera":
            return None, {"skipped": "camera RGB: no matrix applied"}
        xyz_to_cam, details = file_xyz_to_camera(meta)
        if xyz_to_cam is None:
            if self.missing == "error":
                raise PipelineError("stage 'color_matrix': the file has no colour matrix")
            return None, {"skipped": "file has no colour matrix"}
        return camera_to_output_matrix(xyz_to_cam, self.space), {"calibration": details} if details else {}

    def resolve_and_note(self, meta, notes) -> Optional[np.ndarray]:
        """:meth:`resolve_matrix`, with the matrix used (or why none was) and, for a file with two
        calibration illuminants, the interpolation's white, temperature and weights added to
        ``notes``: the same record entry whichever backend runs."""
        m, entry = self._resolve(meta)
        if m is not None:
            entry = {"matrix": np.round(m, 6).tolist(), **entry}
        self.note(notes, **entry)
        return m

    def color_space(self, space, meta):
        if self.matrix is not None:
            return replace(space, primaries="custom RGB", standard_curve=None, to_xyz=None, white=None)
        out = output_space(self.space)
        xyz_to_cam, _ = file_xyz_to_camera(meta)
        if out.name == "camera":
            # white-balanced camera RGB, described by the matrix that takes it to XYZ (D65)
            to_xyz = None if xyz_to_cam is None else camera_to_output_matrix(xyz_to_cam, "xyz")
            return replace(space, primaries=out.title, standard_curve=None, to_xyz=_as_tuple(to_xyz),
                           white=None if to_xyz is None else out.white)
        if xyz_to_cam is None:
            return space
        return replace(space, primaries=out.title, standard_curve=out.curve if out.standard_curve else None,
                       to_xyz=_as_tuple(out.rgb_to_xyz), white=out.white)

    def apply(self, frame):
        m = self.resolve_and_note(frame.meta, frame.notes)
        return frame if m is None else frame.with_data(apply_color_matrix(frame.data, m))

    def fusion(self, kind):
        return Fusion.POINTWISE

    def fused_op(self, ctx):
        m = self.resolve_and_note(ctx.meta, ctx.notes)
        return FusedOp(None) if m is None else FusedOp(_matrix_fused_row, (_float32_matrix(m),))


def _as_tuple(matrix) -> Optional[tuple]:
    return None if matrix is None else tuple(tuple(float(v) for v in row) for row in np.asarray(matrix))
