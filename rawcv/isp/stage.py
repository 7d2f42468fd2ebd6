"""What a pipeline stage is: typed parameters declared once, its Numba implementation, the
trait that tells the fused schedule how it can run on rows, and the hook of its torch twin.

Each concern module of :mod:`rawcv.isp` ends with the :class:`Stage` classes built on its
functions, so a stage's maths, its CPU kernel, its place in the fused schedule and its
declaration share one file; its torch twin sits at the same name under :mod:`rawcv.torch.isp`
and attaches itself with :meth:`Stage.torch_twin`. Nothing anywhere dispatches on a stage's
name: the fused schedule (:mod:`rawcv.pipeline.schedule`) asks each stage for its
:meth:`~Stage.fusion` trait and :meth:`~Stage.fused_op`, the torch backend calls
:meth:`~Stage.torch`, the stage-by-stage backend :meth:`~Stage.apply`.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional

import numpy as np

from ..errors import PipelineError
from ._validate import MIN_SIDE
from .frame import ColorSpace, Frame


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


class Fusion(enum.Enum):
    """How a stage can run inside a fused pass over rows (Halide's "compute at" vocabulary).

    * ``POINTWISE``: each output row from the same input row alone,
      ``row(src_row, y, args, scratch, out_row)``;
    * ``WINDOW``: from the input rows ``y - k .. y + k`` (a window of radius
      :attr:`FusedOp.radius` ``k``, 1 for 3 x 3), ``row(above, row, below, y, args, scratch,
      out_row)`` for ``k = 1``, ``row(r0, r1, r2, r3, r4, y, ...)`` for ``k = 2``;
    * ``DEMOSAIC``: a window like ``WINDOW`` whose input rows are mosaic rows and whose output
      row is RGB (three times as long).
    """

    POINTWISE = "pointwise"
    WINDOW = "window"
    DEMOSAIC = "demosaic"


@dataclass
class FusedOp:
    """A stage resolved for one frame, ready for a fused pass.

    ``row`` is a Numba row function of the signature its :class:`Fusion` trait names (the very
    function the stage's stand-alone kernel calls, so fused and stage-by-stage agree bit for
    bit), or None where the stage leaves this frame unchanged. ``args`` are its resolved
    parameters (a tuple of arrays and scalars), ``scratch`` the dtype of a per-thread scratch
    row it needs (None: none), ``dtype`` the dtype it writes, ``changes`` what it adds to the
    output frame (e.g. the saturation mask it fills), ``radius`` how many rows above and below
    a window or demosaic reads (its ring buffer holds ``2 radius + 1`` rows), ``shrink`` how many
    input rows (and columns) a demosaic's output row covers: 2 for half size, whose row function
    reads the two rows ``2 y`` and ``2 y + 1`` of the level below, ``row(top, bottom, y, ...)``.
    """

    row: Optional[Callable]
    args: tuple = ()
    scratch: Optional[type] = None
    dtype: type = np.float32
    changes: dict = field(default_factory=dict)
    radius: int = 1
    shrink: int = 1


class FuseContext:
    """What :meth:`Stage.fused_op` may know about the frame it will see inside a fused pass:
    its ``kind``, ``shape`` and ``meta``, a list of ``notes`` for the run's record, and, for a
    stage whose parameters depend on the data (a gray-world white balance), :meth:`data`."""

    def __init__(self, kind: str, shape: tuple, meta, notes: list, data: Callable[[], np.ndarray]):
        self.kind, self.shape, self.meta, self.notes = kind, tuple(shape), meta, notes
        self._data = data

    def data(self) -> np.ndarray:
        """The full input of this stage, computed stage by stage (costly: estimators only)."""
        return self._data()


STAGES: dict = {}


def register_stage(cls):
    """Class decorator: make ``cls`` available to pipelines (YAML, ``rawcv stages``) by its name."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} declares no stage name")
    STAGES[cls.name] = cls
    return cls


class Stage:
    """Base class of a pipeline stage.

    Subclasses declare ``name``, ``doc``, ``params`` (:class:`Param`) and ``accepts`` (frame
    kinds), implement :meth:`apply` (the Numba backend), and where they can run on rows,
    :meth:`fusion` and :meth:`fused_op`. Their torch twin registers with
    :meth:`torch_twin`.
    """

    name: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    params: ClassVar[tuple] = ()
    accepts: ClassVar[tuple] = ()
    linear_only: ClassVar[bool] = False   # must see values linear in radiance (before a tone curve)
    encodes: ClassVar[bool] = False       # applies a tone curve: later linear_only stages are refused

    def __init__(self, **values):
        known = {p.name: p for p in self.params}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise PipelineError(
                f"stage '{self.name}': unknown parameter '{unknown[0]}' "
                f"(parameters: {', '.join(known) or 'none'})")
        self.values = {p.name: p.validate(self.name, values.get(p.name, p.default)) for p in self.params}
        self.check()

    @classmethod
    def param(cls, name: str) -> Param:
        """The declaration of parameter ``name`` (its default, choices, doc)."""
        for p in cls.params:
            if p.name == name:
                return p
        raise KeyError(f"stage {cls.name!r} declares no parameter {name!r}")

    def check(self) -> None:
        """Cross-parameter validation; raise :class:`PipelineError`."""

    def __getattr__(self, item):
        values = self.__dict__.get("values")
        if values is not None and item in values:
            return values[item]
        raise AttributeError(item)

    # --- what the stage does to a frame's kind, size and meaning ------------------------------
    def produces(self, kind: str) -> str:
        return kind

    def min_side(self, kind: str) -> int:
        """The smallest height and width this stage takes for input of ``kind``."""
        return MIN_SIDE

    def output_shape(self, kind: str, shape: tuple) -> tuple:
        """Height and width of the result for an input of ``kind`` and ``shape`` (the same, unless
        the stage resamples)."""
        return tuple(shape[:2])

    def color_space(self, space: ColorSpace, meta) -> ColorSpace:
        """What the output's numbers mean, given what the input's mean (every backend uses this)."""
        return space

    # --- the three implementations -----------------------------------------------------------
    def apply(self, frame: Frame) -> Frame:
        """The stage on its own, through the public :mod:`rawcv.isp` function (Numba)."""
        raise NotImplementedError

    def fusion(self, kind: str) -> Optional[Fusion]:
        """How this stage runs on rows of a ``kind`` frame inside a fused pass; None: it runs alone."""
        return None

    def fused_op(self, ctx: FuseContext) -> FusedOp:
        """The row function and resolved arguments for the frame ``ctx`` describes."""
        raise NotImplementedError(f"stage '{self.name}' declares a fusion trait but no fused_op")

    def fuse_with(self, following: "Stage") -> Optional["Stage"]:
        """One stage doing this stage and ``following`` at once (same numbers), or None."""
        return None

    @classmethod
    def torch_twin(cls, fn):
        """Decorator for the torch layer: ``fn(stage, x, ctx) -> x`` runs this stage on a batch."""
        cls._torch = fn
        return fn

    def torch(self, x, ctx):
        """The torch twin on ``x`` (``N x C x H x W``); ``ctx`` carries the batch's metadata."""
        twin = type(self).__dict__.get("_torch")
        if twin is None:
            raise PipelineError(f"stage '{self.name}' has no torch implementation")
        return twin(self, x, ctx)

    # --- records ------------------------------------------------------------------------------
    def note(self, notes: list, **entry) -> None:
        """Add what this run of the stage resolved (gains, a matrix, a skip) to a frame's ``notes``."""
        # "_of" tells apart two stages of one name in a run (four gain maps of a DNG's list 2)
        notes.append({"stage": self.name, "_of": id(self), **entry})

    def to_dict(self) -> dict:
        return {"stage": self.name, **{k: v for k, v in self.values.items()}}

    def __eq__(self, other):
        return type(self) is type(other) and self.values == other.values

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"{type(self).__name__}({args})"


def import_modules(package: str, path) -> None:
    """Import every public module of ``package`` (at ``path``, its ``__path__``): each registers
    its stages, or attaches their torch twins, on import, so a new module needs no line elsewhere."""
    for module in pkgutil.iter_modules(path):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package}.{module.name}")


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


__all__ = ["Param", "Fusion", "FusedOp", "FuseContext", "Stage", "STAGES", "register_stage", "make_stage",
           "import_modules"]
