"""``Pipeline``: an ordered, validated list of stages, run stage by stage or through the fused path."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import PipelineError
from ..isp.frame import CAMERA_LINEAR, MOSAIC, QUANTIZED, RAW, RAW_RGB, RGB, ColorSpace, Frame
from ..isp.opcodes import opcode_stages
from ..isp.stage import STAGES, make_stage
from ..meta import RawImage
from . import schedule

# the top-level pipelines/ folder, shipped in the wheel as the package rawcv.pipelines
BUILTIN_PIPELINES = "rawcv.pipelines"
BACKENDS = ("auto", "fused", "numba")
OPCODES = ("auto", "off")
# YAML 1.1 reads a bare `off` as false
_OPCODES_YAML = {False: "off", "auto": "auto", "off": "off"}


@dataclass
class PipelineResult:
    """What :meth:`Pipeline.run` returns."""

    image: np.ndarray
    kind: str
    saturation: Optional[np.ndarray]
    record: list                     # resolved parameters per stage (incl. estimated gains)
    intermediates: list = field(default_factory=list)   # [(stage name, array)] if asked for
    color_space: str = CAMERA_LINEAR.label   # what the pixels are: primaries and transfer curve
    transfer: str = CAMERA_LINEAR.transfer   # "linear", "sRGB" or "gamma G": the curve alone


class Pipeline:
    """An ordered list of ISP stages.

    Parameters
    ----------
    stages : list
        Stage objects, names, or ``{"stage": name, **params}`` mappings.
    name : str, optional
        Shown in sidecars and errors.
    backend : {"auto", "fused", "numba"}
        ``numba`` runs every stage on its own; ``fused`` (and ``auto``) run the same stages through
        the fused schedule where their order allows, with identical results.
    opcodes : {"auto", "off"}
        ``auto`` applies a DNG's opcode lists where the specification says (:meth:`stages_for`);
        ``off`` ignores them.

    Examples
    --------
    >>> import numpy as np
    >>> from rawcv.meta import CameraMeta, RawImage
    >>> raw = RawImage(np.full((8, 8), 1000, np.uint16), CameraMeta("RGGB", black_level=64, white_level=4095))
    >>> p = Pipeline(["black_level", "demosaic", {"stage": "gamma", "curve": "power"}, "quantize"])
    >>> p(raw).shape
    (8, 8, 3)
    """

    def __init__(self, stages, *, name: str = "custom", backend: str = "auto", description: str = "",
                 opcodes: str = "auto"):
        if backend not in BACKENDS:
            raise PipelineError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")
        if opcodes not in OPCODES:
            raise PipelineError(f"pipeline '{name}': opcodes must be one of {', '.join(OPCODES)}, got {opcodes!r}")
        self.opcodes = opcodes
        if not isinstance(stages, (list, tuple)) or not stages:
            raise PipelineError(f"pipeline '{name}': needs a non-empty list of stages")
        self.stages = [make_stage(s) for s in stages]
        self.name = name
        self.description = description
        self.backend = backend
        self.validate()

    # --- validation -----------------------------------------------------------------------
    def validate(self) -> None:
        """Check the order of stages; raise :class:`PipelineError` with the reason."""
        kind = RAW
        encoded_by = None
        demosaiced = False
        normalised_by = None
        for i, stage in enumerate(self.stages):
            if i == 0 and RAW not in stage.accepts:
                first = ", ".join(f"'{n}'" for n, cls in STAGES.items() if RAW in cls.accepts)
                raise PipelineError(f"pipeline '{self.name}': must start with a stage that takes sensor values "
                                    f"({first}: it turns them into normalised data), not '{stage.name}'")
            if i > 0 and RAW in stage.accepts and kind != RAW:
                raise PipelineError(f"pipeline '{self.name}': '{stage.name}' takes sensor values, but an earlier "
                                    f"'{normalised_by}' has turned them into normalised data")
            if kind == QUANTIZED:
                raise PipelineError(f"pipeline '{self.name}': stage '{stage.name}' comes after a stage that "
                                    "quantises, which must be the last stage")
            if stage.linear_only and encoded_by:
                raise PipelineError(f"pipeline '{self.name}': stage '{stage.name}' needs data linear in "
                                    f"radiance but comes after '{encoded_by}'")
            if kind not in stage.accepts:
                if MOSAIC in stage.accepts and RGB not in stage.accepts and demosaiced:
                    reason = "needs a mosaic but is placed after demosaicing"
                elif MOSAIC in stage.accepts and encoded_by:
                    reason = f"needs a linear mosaic but comes after '{encoded_by}'"
                elif RGB in stage.accepts and MOSAIC not in stage.accepts and kind == MOSAIC:
                    reason = "needs RGB data: place it after 'demosaic'"
                else:
                    reason = f"cannot take {kind} data"
                raise PipelineError(f"pipeline '{self.name}': stage '{stage.name}' {reason}")
            if stage.encodes:
                encoded_by = stage.name
            demosaiced = demosaiced or (kind == MOSAIC and stage.produces(kind) == RGB)
            if kind == RAW and stage.produces(kind) != RAW:
                normalised_by = stage.name
            kind = stage.produces(kind)
        self.output_kind = kind

    # --- running --------------------------------------------------------------------------
    def __call__(self, raw: RawImage, **kwargs) -> np.ndarray:
        return self.run(raw, **kwargs).image

    def run(self, raw: RawImage, *, keep_intermediates: bool = False, out: Optional[np.ndarray] = None,
            backend: Optional[str] = None) -> PipelineResult:
        """Run the pipeline on a :class:`RawImage`.

        ``keep_intermediates`` returns every stage's output (and runs stage by stage, since the
        fused path never materialises them). ``out`` is a buffer reused for the final image where
        its shape and dtype fit (for batches).
        """
        backend = backend or self.backend
        stages, skipped = self.stages_for(raw.meta, source=raw.path or "")
        self._check_input(raw, stages)
        frame = Frame.from_raw(raw)
        frame.notes.extend(skipped)
        intermediates = []
        if keep_intermediates or backend == "numba":
            for stage in stages:
                frame = stage.apply(frame)
                if keep_intermediates:
                    intermediates.append((stage.name, frame.data))
        else:
            groups = schedule.plan(stages, frame.kind)
            for n, group in enumerate(groups):
                frame = schedule.run_group(group, frame, out=out if n == len(groups) - 1 else None)
        space = self.color_space(raw.meta)
        return PipelineResult(frame.data, frame.kind, frame.saturation, self._record(frame, stages),
                              intermediates, space.label, space.transfer)

    def stages_for(self, meta, *, source: str = "") -> tuple:
        """The stages a file with ``meta`` goes through, and record entries of the opcodes skipped.

        With ``opcodes="auto"`` a DNG's opcode lists become stages (:func:`rawcv.isp.opcodes.opcode_stages`)
        where the DNG specification applies them: list 1 on the stored raw values, before the first
        stage; list 2 just after the stage that subtracts the black level; list 3 just after
        demosaicing (for linear raw data, which has no demosaicing, after list 2). A pipeline
        without demosaicing leaves list 3 out (its opcodes act on RGB).
        """
        if self.opcodes == "off" or not meta.opcode_lists:
            return list(self.stages), []
        lists = dict(meta.opcode_lists)
        linear = bool(meta.linear)
        kind = RAW_RGB if linear else RAW
        inserted, skipped = {}, []
        positions = {1: 0}
        for i, stage in enumerate(self.stages):
            after = stage.produces(kind)
            if kind in (RAW, RAW_RGB) and after not in (RAW, RAW_RGB):
                positions[2] = i + 1
                if linear:
                    positions[3] = i + 1
            if kind == MOSAIC and after == RGB:
                positions[3] = i + 1
            kind = after
        kinds = {1: RAW_RGB if linear else RAW, 2: RGB if linear else MOSAIC, 3: RGB}
        for n in sorted(lists):
            if n not in positions:
                skipped.append({"stage": "opcodes", "list": n, "skipped": "the pipeline has no demosaicing"})
                continue
            stages, skipped_here = opcode_stages(lists[n], n, kinds[n], source)
            inserted.setdefault(positions[n], []).extend(stages)
            skipped.extend(skipped_here)
        out = []
        for i in range(len(self.stages) + 1):
            out.extend(inserted.get(i, []))
            if i < len(self.stages):
                out.append(self.stages[i])
        return out, skipped

    def check_input(self, raw: RawImage) -> None:
        """Refuse a frame some stage cannot take (too small for its window), before any backend runs.

        One check for every backend: the fused kernels do not bounds-check their windows.
        """
        self._check_input(raw, self.stages_for(raw.meta, source=raw.path or "")[0])

    def _check_input(self, raw: RawImage, stages) -> None:
        h, w = raw.data.shape[:2]
        kind = Frame.from_raw(raw).kind
        for stage in stages:
            need = stage.min_side(kind)
            if min(h, w) < need:
                where = f"{raw.path}: " if raw.path else ""
                raise PipelineError(f"{where}the image is {w} x {h} pixels; stage '{stage.name}' needs "
                                    f"at least {need} x {need}")
            h, w = stage.output_shape(kind, (h, w))
            kind = stage.produces(kind)

    def color_space(self, meta) -> ColorSpace:
        """What the output's numbers mean for a file with ``meta`` (primaries and transfer curve)."""
        space = CAMERA_LINEAR
        for stage in self.stages:
            space = stage.color_space(space, meta)
        return space

    def _record(self, frame, stages) -> list:
        record = []
        ids = {id(s) for s in stages}
        for stage in stages:
            entry = stage.to_dict()
            for note in frame.notes:
                of = note.get("_of")
                # a note from a stage object the list does not hold (a step doing two stages at once)
                # goes to the stage of its name
                if of == id(stage) or (of not in ids and note["stage"] == stage.name):
                    entry.update({k: v for k, v in note.items() if k not in ("stage", "_of")})
            record.append(entry)
        return record + [note for note in frame.notes if note["stage"] == "opcodes"]

    def fused_plan(self, *, linear_input: bool = False) -> list:
        """The fused backend's schedule: a list of ("fused" or "stage", step names); a step that
        does two stages at once (gamma and quantize) is named after both."""
        kind = RAW_RGB if linear_input else RAW
        return [("fused" if g.fused else "stage", g.names) for g in schedule.plan(self.stages, kind)]

    def with_params(self, stage: str, **values) -> "Pipeline":
        """A copy in which every stage called ``stage`` takes ``values`` over its own parameters
        (validated as a YAML file's are); a pipeline without such a stage is an error.

        Examples
        --------
        >>> load_pipeline("core").with_params("demosaic", method="malvar").stages[3]
        Demosaic(method='malvar')
        """
        if not any(s.name == stage for s in self.stages):
            raise PipelineError(f"pipeline '{self.name}' has no '{stage}' stage "
                                f"(its stages: {', '.join(s.name for s in self.stages)})")
        stages = [make_stage({**s.to_dict(), **values}) if s.name == stage else s for s in self.stages]
        return self._derived(stages)

    def with_stage(self, spec, *, before=()) -> "Pipeline":
        """A copy with the stage ``spec`` (a name or ``{"stage": name, **params}``): its values
        replace those of a stage of that name already there, else the stage goes in just before
        the first stage named in ``before`` (at the end when none is there).

        Examples
        --------
        >>> p = load_pipeline("default").with_stage({"stage": "exposure", "stops": 1}, before=("gamma",))
        >>> [s.name for s in p.stages][-3:]
        ['exposure', 'gamma', 'quantize']
        """
        stage = make_stage(spec)
        if any(s.name == stage.name for s in self.stages):
            return self.with_params(stage.name, **stage.values)
        at = next((i for i, s in enumerate(self.stages) if s.name in before), len(self.stages))
        return self._derived(self.stages[:at] + [stage] + self.stages[at:])

    def with_opcodes(self, opcodes: str) -> "Pipeline":
        """A copy that applies DNG opcode lists (``"auto"``) or ignores them (``"off"``)."""
        return self._derived(self.stages, opcodes=opcodes)

    def _derived(self, stages, **changes) -> "Pipeline":
        settings = dict(name=self.name, backend=self.backend, description=self.description, opcodes=self.opcodes)
        return Pipeline(stages, **{**settings, **changes})

    # --- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"name": self.name}
        if self.description:
            d["description"] = self.description
        if self.opcodes != "auto":
            d["opcodes"] = self.opcodes
        d["stages"] = [s.to_dict() for s in self.stages]
        return d

    @classmethod
    def from_dict(cls, data, *, source: str = "<dict>", backend: str = "auto") -> "Pipeline":
        if not isinstance(data, dict) or "stages" not in data:
            raise PipelineError(f"{source}: a pipeline file needs a top-level 'stages:' list")
        unknown = set(data) - {"name", "stages", "description", "opcodes"}
        if unknown:
            raise PipelineError(f"{source}: unknown top-level key '{sorted(unknown)[0]}' "
                                "(allowed: name, description, opcodes, stages)")
        try:
            return cls(data["stages"], name=str(data.get("name", Path(source).stem)), backend=backend,
                       description=str(data.get("description", "") or ""),
                       opcodes=_OPCODES_YAML.get(data.get("opcodes", "auto"), data.get("opcodes")))
        except PipelineError as exc:
            raise PipelineError(f"{source}: {exc}") from None

    def to_yaml(self, path=None) -> str:
        """The pipeline as YAML text; written atomically to ``path`` if given."""
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            from ..io.atomic import write_bytes_atomic
            write_bytes_atomic(path, text.encode(), overwrite=True)
        return text

    @classmethod
    def from_yaml(cls, path_or_text, *, backend: str = "auto", source: str = "<yaml>") -> "Pipeline":
        """Load a pipeline from a YAML file, or from YAML text (containing a newline) that errors
        call ``source``."""
        import yaml

        text = path_or_text
        if "\n" not in str(path_or_text):
            source = os.fspath(path_or_text)
            try:
                text = _decode(Path(source).read_bytes(), source)
            except OSError as exc:
                raise PipelineError(f"{source}: cannot read pipeline file ({exc.strerror})") from None
        try:
            data = yaml.load(text, Loader=_yaml_loader())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise PipelineError(f"{source}: malformed YAML{where}") from None
        return cls.from_dict(data, source=source, backend=backend)

    def __eq__(self, other):
        return isinstance(other, Pipeline) and self.stages == other.stages

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, [{', '.join(s.name for s in self.stages)}])"


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{source}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


# YAML 1.2 reads 1e30 as a number; PyYAML follows YAML 1.1, whose floats need a dot, and would
# hand the stage the string '1e30'
_FLOAT_WITHOUT_DOT = re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")


@lru_cache(maxsize=1)
def _yaml_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_WITHOUT_DOT, list("-+0123456789"))
    return Loader


def _builtin(name: str):
    """The built-in pipeline file ``name``.yaml (a Traversable), or None."""
    path = resources.files(BUILTIN_PIPELINES) / f"{name}.yaml"
    return path if path.is_file() else None


def available_pipelines() -> list:
    return sorted(p.name[:-5] for p in resources.files(BUILTIN_PIPELINES).iterdir() if p.name.endswith(".yaml"))


def load_pipeline(name_or_path, *, backend: str = "auto") -> Pipeline:
    """A built-in pipeline by name (``"default"``, ``"linear"`` ...) or one from a YAML path."""
    candidate = Path(os.fspath(name_or_path))
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return Pipeline.from_yaml(candidate, backend=backend)
    builtin = _builtin(str(name_or_path)) if re.fullmatch(r"[A-Za-z0-9_-]+", str(name_or_path)) else None
    if builtin is None:
        raise PipelineError(f"unknown pipeline {str(name_or_path)!r}: available are "
                            f"{', '.join(available_pipelines())}, or give a path to a YAML file")
    text = _decode(builtin.read_bytes(), f"built-in pipeline '{name_or_path}'")
    return Pipeline.from_yaml(text, backend=backend, source=f"{name_or_path}.yaml")


__all__ = ["Pipeline", "PipelineResult", "load_pipeline", "available_pipelines", "STAGES"]
