"""The stage registry: each ISP stage's name, typed parameters, and what it consumes and produces.

A stage's parameters are declared here once. The Numba functions of :mod:`rawcv.isp`, the fused
path, the torch twins, the YAML schema, ``rawcv stages`` and the JSON sidecars all read them from
these declarations. Stage classes only hold validated parameters and call the ISP functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Optional

import numpy as np

from .. import isp
from ..errors import PipelineError
from .frame import DISPLAY, MOSAIC, QUANTIZED, RAW, RGB, ColorSpace, Frame


@dataclass(frozen=True)
class Param:
    """One typed, validated stage parameter."""

    name: str
    kind: str                 # "float", "int", "str", "floats"
    default: Any
    doc: str
    choices: Optional[tuple] = None
    length: Optional[int] = None        # for "floats": required number of values
    minimum: Optional[float] = None

    def validate(self, stage: str, value):
        where = f"stage '{stage}': parameter '{self.name}'"
        if value is None and self.default is None:
            return None
        if self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise PipelineError(f"{where} must be a number, got {value!r}")
            value = float(value)
            if not np.isfinite(value):
                raise PipelineError(f"{where} must be finite, got {value!r}")
        elif self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise PipelineError(f"{where} must be an integer, got {value!r}")
            value = int(value)
        elif self.kind == "str":
            if not isinstance(value, str):
                raise PipelineError(f"{where} must be a string, got {value!r}")
        elif self.kind == "floats":
            try:
                arr = np.asarray(value, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise PipelineError(f"{where} must be a list of numbers, got {value!r}") from None
            if self.length is not None and arr.size != self.length:
                raise PipelineError(f"{where} needs {self.length} numbers, got {arr.size}")
            if not np.all(np.isfinite(arr)):
                raise PipelineError(f"{where} must be finite numbers, got {value!r}")
            value = [float(v) for v in arr]
        if self.choices is not None and value not in self.choices:
            raise PipelineError(f"{where} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        if self.minimum is not None and self.kind in ("float", "int") and value < self.minimum:
            raise PipelineError(f"{where} must be >= {self.minimum}, got {value!r}")
        return value


STAGES: dict = {}


def register_stage(cls):
    STAGES[cls.name] = cls
    return cls


class Stage:
    """Base class. Subclasses declare ``name``, ``params``, ``accepts`` and implement ``apply``."""

    name: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    params: ClassVar[tuple] = ()
    accepts: ClassVar[tuple] = ()
    linear_only: ClassVar[bool] = False   # must see values linear in radiance (before gamma)

    def __init__(self, **values):
        known = {p.name: p for p in self.params}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise PipelineError(
                f"stage '{self.name}': unknown parameter '{unknown[0]}' "
                f"(parameters: {', '.join(known) or 'none'})")
        self.values = {p.name: p.validate(self.name, values.get(p.name, p.default)) for p in self.params}
        self.check()

    def check(self) -> None:
        """Cross-parameter validation; raise :class:`PipelineError`."""

    def __getattr__(self, item):
        values = self.__dict__.get("values")
        if values is not None and item in values:
            return values[item]
        raise AttributeError(item)

    def produces(self, kind: str) -> str:
        return kind

    def min_side(self, kind: str) -> int:
        """The smallest height and width this stage takes for input of ``kind``."""
        return isp.MIN_SIDE

    def color_space(self, space: ColorSpace, meta) -> ColorSpace:
        """What the output's numbers mean, given what the input's mean (both backends use this)."""
        return space

    def apply(self, frame: Frame) -> Frame:
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"stage": self.name, **{k: v for k, v in self.values.items()}}

    def __eq__(self, other):
        return type(self) is type(other) and self.values == other.values

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"{type(self).__name__}({args})"


@register_stage
class BlackLevel(Stage):
    name = "black_level"
    doc = "Subtract the per-CFA-position black level and normalise by the white level; records the saturation mask."
    params = (
        Param("black", "floats", None, "override the file's black level (4 values, CFA raster order)", length=4),
        Param("white", "float", None, "override the file's white level"),
    )
    accepts = (RAW,)

    def produces(self, kind):
        return MOSAIC

    def levels(self, meta):
        black = self.black if self.black is not None else meta.black_level
        white = self.white if self.white is not None else meta.white_level
        return black, white

    def apply(self, frame):
        black, white = self.levels(frame.meta)
        out = isp.subtract_black_level(frame.data, black=black, white=white)
        mask = isp.saturation_mask(frame.data, white=white)
        return frame.with_data(out, RGB if out.ndim == 3 else MOSAIC, saturation=mask)


@register_stage
class WhiteBalance(Stage):
    name = "white_balance"
    doc = "Scale R and B: camera (as shot), gray_world, white_world (percentile) or manual gains."
    params = (
        Param("method", "str", "camera", "where the gains come from", choices=("camera", "gray_world", "white_world", "manual")),
        Param("gains", "floats", None, "R, G, B gains for method=manual", length=3),
        Param("percentile", "float", 99.5, "white_world: the percentile taken as white"),
    )
    accepts = (MOSAIC, RGB)
    linear_only = True

    def check(self):
        if self.method == "manual" and self.gains is None:
            raise PipelineError("stage 'white_balance': method 'manual' needs gains: [R, G, B]")
        if self.gains is not None and self.method != "manual":
            raise PipelineError("stage 'white_balance': gains are only used with method 'manual'")
        if self.gains is not None and min(self.gains) <= 0:
            raise PipelineError("stage 'white_balance': gains must be positive")
        if not 0 < self.percentile <= 100:
            raise PipelineError("stage 'white_balance': percentile must be in (0, 100]")

    def resolve_gains(self, frame) -> np.ndarray:
        """The gains this stage applies to ``frame`` (estimated where the method says so).

        Every backend takes its gains from here, so a file's NaN, infinite or zero as-shot gains
        are refused the same way whichever backend runs.
        """
        cfa = frame.cfa if frame.kind == MOSAIC else None
        try:
            if self.method == "camera":
                return isp.normalize_gains(frame.meta.as_shot_wb)
            if self.method == "manual":
                return isp.normalize_gains(self.gains, green_is_one=False)
            if self.method == "gray_world":
                return isp.gains_gray_world(frame.data, cfa=cfa)
            return isp.gains_white_world(frame.data, cfa=cfa, percentile=self.percentile)
        except ValueError as exc:
            source = "the file's as-shot white balance" if self.method == "camera" else f"method '{self.method}'"
            raise PipelineError(f"stage 'white_balance': {source}: {exc}") from None

    def apply(self, frame):
        gains = self.resolve_gains(frame)
        frame.notes.append({"stage": self.name, "gains": [float(g) for g in gains]})
        cfa = frame.cfa if frame.kind == MOSAIC else None
        return frame.with_data(isp.white_balance(frame.data, gains, cfa=cfa))


@register_stage
class Demosaic(Stage):
    name = "demosaic"
    doc = "Bilinear demosaicing (skipped for linear raw, which is already RGB)."
    params = (Param("method", "str", "bilinear", "interpolation", choices=("bilinear",)),)
    accepts = (MOSAIC,)

    def produces(self, kind):
        return RGB

    def min_side(self, kind):
        return isp.DEMOSAIC_MIN_SIDE if kind == MOSAIC else isp.MIN_SIDE

    def apply(self, frame):
        if frame.kind == RGB:  # a linear DNG: nothing to interpolate
            frame.notes.append({"stage": self.name, "skipped": "input is already RGB (linear raw)"})
            return frame
        return frame.with_data(isp.demosaic_bilinear(frame.data, cfa=frame.cfa), RGB)


@register_stage
class Denoise(Stage):
    name = "denoise"
    doc = "Mean or median filter, 3x3 or 5x5; on a mosaic, same-colour neighbours only."
    params = (
        Param("method", "str", "median", "filter", choices=("median", "mean")),
        Param("size", "int", 3, "window size", choices=(3, 5)),
    )
    accepts = (MOSAIC, RGB)

    def min_side(self, kind):
        return isp.denoise_min_side(self.size, mosaic=kind == MOSAIC)

    def apply(self, frame):
        cfa = frame.cfa if frame.kind == MOSAIC else None
        return frame.with_data(isp.denoise(frame.data, method=self.method, size=self.size, cfa=cfa))


@register_stage
class Vignetting(Stage):
    name = "vignetting"
    doc = "Radial gain 1 + k1 r^2 + k2 r^4 + k3 r^6 about the optical centre (DNG FixVignetteRadial)."
    params = (
        Param("k1", "float", 0.0, "r^2 coefficient"),
        Param("k2", "float", 0.0, "r^4 coefficient"),
        Param("k3", "float", 0.0, "r^6 coefficient"),
        Param("center", "floats", [0.5, 0.5], "optical centre (x, y) as fractions of width, height", length=2),
    )
    accepts = (MOSAIC, RGB)
    linear_only = True

    def check(self):
        if not all(0 <= c <= 1 for c in self.center):
            raise PipelineError("stage 'vignetting': center must be fractions in [0, 1]")

    def apply(self, frame):
        return frame.with_data(isp.correct_vignetting(frame.data, k1=self.k1, k2=self.k2, k3=self.k3,
                                                      center=tuple(self.center)))


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
        if self.matrix is not None:
            return np.asarray(self.matrix, dtype=np.float64).reshape(3, 3)
        if meta.xyz_to_cam is None:
            if self.missing == "error":
                raise PipelineError("stage 'color_matrix': the file has no colour matrix")
            return None
        return isp.camera_to_srgb_matrix(meta.xyz_to_cam)

    def note(self, frame, matrix) -> None:
        """Record the matrix used (or why none was): the same entry whichever backend runs."""
        if matrix is None:
            frame.notes.append({"stage": self.name, "skipped": "file has no colour matrix"})
        else:
            frame.notes.append({"stage": self.name, "matrix": np.round(matrix, 6).tolist()})

    def color_space(self, space, meta):
        if self.matrix is not None:
            return replace(space, primaries="custom RGB")
        return space if meta.xyz_to_cam is None else replace(space, primaries="sRGB")

    def apply(self, frame):
        m = self.resolve_matrix(frame.meta)
        self.note(frame, m)
        if m is None:
            return frame
        return frame.with_data(isp.apply_color_matrix(frame.data, m))


@register_stage
class Gamma(Stage):
    name = "gamma"
    doc = "Tone curve: sRGB transfer curve or power law 1/gamma."
    params = (
        Param("curve", "str", "srgb", "tone curve", choices=("srgb", "power")),
        Param("gamma", "float", 2.2, "exponent of the power law", minimum=0.1),
    )
    accepts = (RGB, MOSAIC)

    def produces(self, kind):
        return DISPLAY

    def color_space(self, space, meta):
        return replace(space, transfer="sRGB" if self.curve == "srgb" else f"gamma {self.gamma:g}")

    def apply(self, frame):
        return frame.with_data(isp.encode(frame.data, curve=self.curve, gamma=self.gamma), DISPLAY)


@register_stage
class Quantize(Stage):
    name = "quantize"
    doc = "Clip to [0, 1] and round to 8 or 16 bits."
    params = (Param("bits", "int", 8, "output bit depth", choices=(8, 16)),)
    accepts = (RGB, DISPLAY, MOSAIC)

    def produces(self, kind):
        return QUANTIZED

    def apply(self, frame):
        return frame.with_data(isp.quantize(frame.data, bits=self.bits), QUANTIZED)


def make_stage(spec) -> Stage:
    """A stage from a name, a ``{"stage": name, **params}`` dict, or a Stage (returned as is)."""
    if isinstance(spec, Stage):
        return spec
    if isinstance(spec, str):
        spec = {"stage": spec}
    if not isinstance(spec, dict) or "stage" not in spec:
        raise PipelineError(f"each pipeline step must be a stage name or a mapping with 'stage:', got {spec!r}")
    spec = dict(spec)
    name = spec.pop("stage")
    if name not in STAGES:
        raise PipelineError(f"unknown stage {name!r}: available stages are {', '.join(STAGES)}")
    return STAGES[name](**spec)
