"""The fused schedule: consecutive stages that can run on rows become one Numba pass over the
image, with no full-size intermediate.

The schedule never looks at what a stage is called. It asks each stage for its fusion trait
(:meth:`~rawcv.isp.stage.Stage.fusion`: pointwise on a row, a 3 x 3 window, a demosaic, or
none) and groups consecutive fusible stages; a stage without a trait runs on its own. For a
group it asks each stage for its resolved row function (:meth:`~rawcv.isp.stage.Stage.fused_op`)
and generates one kernel in the style of Halide's sliding windows: every window or demosaic
starts a new *level* whose rows are computed on demand into a ring buffer per band of output
rows (three rows for a 3 x 3 window, five for 5 x 5), from the rows of the level below;
pointwise steps run on a row as soon as it exists. Each step calls the very row function that
the stage's stand-alone kernel calls, so the fused result is the stage-by-stage result bit for bit (``tests/test_stage_registry.py`` checks it
for every registered stage and Bayer layout).

A generated kernel is Python source written once to a cache folder (``RAWCV_CACHE_DIR``, else
``$XDG_CACHE_HOME/rawcv`` or ``~/.cache/rawcv``); Numba caches its machine code beside it, so
a schedule compiles once per machine, like every other rawcv kernel.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from ..isp.frame import Frame
from ..isp.stage import FuseContext, Fusion

BAND_ROWS = 64          # output rows per parallel task: each band keeps its own ring buffers
_RING_HELPERS = "rawcv.isp.demosaic"    # where the mirrored row index and the ring-buffer slot live


@dataclass
class Group:
    """Consecutive stages the schedule runs together (``fused``) or one stage run on its own."""

    stages: list
    fused: bool

    @property
    def names(self) -> list:
        return [s.name for s in self.stages]


def merge_steps(stages) -> list:
    """The stages with every pair that one stage can do at once (:meth:`Stage.fuse_with`) merged."""
    merged = []
    for stage in stages:
        both = merged[-1].fuse_with(stage) if merged else None
        if both is not None:
            merged[-1] = both
        else:
            merged.append(stage)
    return merged


def plan(stages, input_kind: str) -> list:
    """Group ``stages`` (a validated pipeline's) for an input of ``input_kind``."""
    groups, run = [], []
    kind = input_kind

    def close_run():
        if len(run) > 1:
            groups.append(Group(list(run), True))
        elif run:
            groups.append(Group(list(run), False))
        run.clear()

    for stage in merge_steps(stages):
        if stage.fusion(kind) is None:
            close_run()
            groups.append(Group([stage], False))
        else:
            run.append(stage)
        kind = stage.produces(kind)
    close_run()
    return groups


def run_group(group: Group, frame: Frame, out: Optional[np.ndarray] = None) -> Frame:
    """Run one group of :func:`plan` on ``frame``; ``out`` is reused for the result where it fits."""
    if not group.fused:
        return group.stages[0].apply(frame)
    levels = [[None, []]]                   # per level: (its window or demosaic op, pointwise ops)
    src = np.ascontiguousarray(frame.data)
    widths = [src.size // src.shape[0]]     # per level: the length of its flat rows
    kind, shape = frame.kind, frame.data.shape
    changes = {}
    for i, stage in enumerate(group.stages):
        trait = stage.fusion(kind)
        ctx = FuseContext(kind, shape, frame.meta, frame.notes,
                          data=lambda done=group.stages[:i]: _unfused(done, frame))
        op = stage.fused_op(ctx)
        changes.update(op.changes)
        if trait is Fusion.POINTWISE:
            if op.row is not None:
                levels[-1][1].append(op)
        else:
            levels.append([op, []])
            if trait is Fusion.DEMOSAIC:       # three values per pixel, a pixel per `shrink` samples a side
                shape = (shape[0] // op.shrink, shape[1] // op.shrink, 3)
                widths.append(widths[-1] // op.shrink * 3)
            else:
                widths.append(widths[-1])
        kind = stage.produces(kind)
    ops = [op for head, tail in levels for op in ([head] if head is not None else []) + tail]
    if not ops:
        return frame.with_data(frame.data, kind, **changes)
    result = _output(shape, ops[-1].dtype, out)
    kernel = _kernel([(head, tail) for head, tail in levels])
    kernel(src.reshape(src.shape[0], -1), result.reshape(shape[0], -1), np.array(widths, dtype=np.int64), BAND_ROWS,
           *(value for op in ops for value in op.args))
    return frame.with_data(result, kind, **changes)


def _unfused(stages, frame: Frame) -> np.ndarray:
    """The data after ``stages`` run one by one (what an estimator inside a group reads)."""
    probe = Frame(frame.data, frame.kind, frame.meta)
    for stage in stages:
        probe = stage.apply(probe)
    return probe.data


def _output(shape, dtype, out: Optional[np.ndarray]) -> np.ndarray:
    if out is not None and out.shape == tuple(shape) and out.dtype == dtype and out.flags.c_contiguous:
        return out
    return np.empty(shape, dtype=dtype)


# --- code generation ------------------------------------------------------------------------------

_KERNELS: dict = {}
_LOCK = threading.Lock()


class _OpKey(NamedTuple):
    """What the generated source depends on for one step."""

    module: str
    name: str
    scratch: Optional[str]
    n_args: int
    radius: int
    shrink: int


def _op_key(op) -> _OpKey:
    fn = op.row.py_func if hasattr(op.row, "py_func") else op.row
    scratch = None if op.scratch is None else np.dtype(op.scratch).name
    return _OpKey(fn.__module__, fn.__name__, scratch, len(op.args), op.radius, op.shrink)


def _kernel(levels):
    """The compiled kernel for this arrangement of row functions (generated, written and
    imported once per process; compiled once per machine)."""
    key = tuple((None if head is None else _op_key(head), tuple(_op_key(op) for op in tail))
                for head, tail in levels)
    with _LOCK:
        kernel = _KERNELS.get(key)
        if kernel is None:
            kernel = _KERNELS[key] = _load(_source(key))
    return kernel


def _source(key) -> str:
    """Python source of the kernel for ``key`` (per level: head op key, pointwise op keys)."""
    imports, names, op_level, scratch, arity = {}, [], [], [], []
    for level, (head, tail) in enumerate(key):
        for op in ([head] if head is not None else []) + list(tail):
            module, name, scr, n_args = op.module, op.name, op.scratch, op.n_args
            alias = f"op{len(names)}"
            imports.setdefault(module, []).append(f"{name} as {alias}")
            names.append(alias)
            op_level.append(level)
            scratch.append(scr)
            arity.append(n_args)
    # a parallel loop cannot capture tuples of arrays: the kernel takes every argument of every
    # step on its own and packs each step's tuple inside the loop
    params = [f"a{k}_{j}" for k, n in enumerate(arity) for j in range(n)]
    packed = ", ".join("(" + "".join(f"a{k}_{j}, " for j in range(n)) + ")" for k, n in enumerate(arity))
    # the source of every ISP module (row functions call helpers across modules) is part of the
    # file name, so an edited kernel never meets a stale cache entry
    fingerprint = hashlib.sha1()
    isp_modules = {name for name in sys.modules if name.startswith("rawcv.isp.")}
    for module in sorted(set(imports) | {_RING_HELPERS} | isp_modules):
        try:
            fingerprint.update(inspect.getsource(sys.modules[module]).encode())
        except (OSError, TypeError):       # a module whose file has gone: its name still counts
            fingerprint.update(module.encode())
    lines = [
        f"# generated by rawcv.pipeline.schedule for {key!r}",
        f"# row functions fingerprint {fingerprint.hexdigest()}",
        "import numpy as np",
        "from numba import njit, prange",
        f"from {_RING_HELPERS} import _mirror as mirror, _ring_slot as ring_slot",
    ]
    for module, items in sorted(imports.items()):
        lines.append(f"from {module} import {', '.join(items)}")
    counter = iter(range(len(names)))

    def chain(level, head, tail, src, dest):
        """Statements computing one row of ``level`` from ``src`` (or above/row/below) into ``dest``."""
        steps = ([head] if head is not None else []) + list(tail)
        body, cur = [], src
        for i, op in enumerate(steps):
            k = next(counter)
            target = dest if i == len(steps) - 1 else f"tmps[{level}][{i % 2}]"
            inputs = ", ".join(window_rows(head)) if (i == 0 and head is not None) else cur
            body.append(f"{names[k]}({inputs}, r, A[{k}], scr[{k}], {target})")
            cur = target
        return body

    def window_rows(head):
        return [f"w{k}" for k in range(2 if head.shrink == 2 else 2 * head.radius + 1)]

    def neighbours(level, indent, head):
        """The rows of ``level`` the window of ``head`` reads for row r of the level above: r - radius
        .. r + radius (mirrored at the image's edges), or 2 r and 2 r + 1 where it halves the rows."""
        if head.shrink == 2:
            rows = ["2 * r", "2 * r + 1"]
        else:
            rows = ["r" if k == head.radius else f"mirror(r + {k - head.radius}, hs[{level}])"
                    for k in range(2 * head.radius + 1)]
        return [f"{indent}{name} = level{level}(src, {row}, hs, rings, tags, tmps, scr, A)"
                for name, row in zip(window_rows(head), rows)]

    # the ring of each level holds the rows the next level's window reads
    ring_rows = [len(window_rows(head)) for head, _ in key[1:]]
    # each level's height: a level that halves the rows halves those of every level above it
    divisors = [1]
    for head, _ in key[1:]:
        divisors.append(divisors[-1] * head.shrink)

    last = len(key) - 1
    for level, (head, tail) in enumerate(key[:-1]):
        lines += ["", "", "@njit(cache=True, nogil=True)",
                  f"def level{level}(src, r, hs, rings, tags, tmps, scr, A):"]
        if head is None and not tail:
            lines.append("    return src[r]")
            continue
        lines += [f"    buf, fresh = ring_slot(rings[{level}], tags[{level}], r)", "    if not fresh:"]
        if head is not None:
            lines += neighbours(level - 1, "        ", head)
        lines += ["        " + s for s in chain(level, head, tail, "src[r]", "buf")]
        lines.append("    return buf")
    head, tail = key[last]
    rings = ", ".join(f"np.empty(({ring_rows[i]}, ns[{i}]), np.float32)" for i in range(last))
    tags = ", ".join(f"np.full({ring_rows[i]}, -1, np.int64)" for i in range(last))
    tmps = ", ".join(f"np.empty((2, ns[{i}]), np.float32)" for i in range(last + 1))
    scr = ", ".join(f"np.empty(ns[{lvl}], np.{s})" if s else "np.empty(0, np.float32)"
                    for lvl, s in zip(op_level, scratch))
    # the band's work is a function of its own: Numba's parallel-loop analysis would take the
    # tuples of steps' arguments for array shapes
    args = "".join(", " + p for p in params)
    lines += ["", "", "@njit(cache=True, nogil=True)",
              f"def run_band(src, out, ns, y0, y1{args}):",
              "    hs = (" + "".join(f"src.shape[0] // {d}, " for d in divisors) + ")",
              f"    A = ({packed},)",
              f"    rings = ({rings},)" if last else "    rings = 0",
              f"    tags = ({tags},)" if last else "    tags = 0",
              f"    tmps = ({tmps},)",
              f"    scr = ({scr},)",
              "    for r in range(y0, y1):"]
    if head is not None:
        lines += neighbours(last - 1, "        ", head)
    lines += ["        " + s for s in chain(last, head, tail, "src[r]", "out[r]")]
    lines += ["", "", "@njit(parallel=True, cache=True, nogil=True)",
              f"def kernel(src, out, ns, band_rows{args}):",
              "    h = out.shape[0]",
              "    for band in prange((h + band_rows - 1) // band_rows):",
              f"        run_band(src, out, ns, band * band_rows, min(h, (band + 1) * band_rows){args})"]
    return "\n".join(lines) + "\n"


def kernel_dir() -> Path:
    """Where generated kernels (and Numba's cache of them) live."""
    root = os.environ.get("RAWCV_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "rawcv")
    for folder in (Path(root) / "kernels", Path(tempfile.gettempdir()) / f"rawcv-kernels-{os.getuid()}"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            continue
    raise OSError(f"no writable folder for rawcv's generated kernels (tried {root} and the temp folder)")


def _load(source: str):
    name = "rawcv_fused_" + hashlib.sha1(source.encode()).hexdigest()[:16]
    folder = kernel_dir()
    path = folder / f"{name}.py"
    if not path.is_file() or path.read_text() != source:
        # written under a unique name and renamed: concurrent processes never see half a file
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.kernel


__all__ = ["BAND_ROWS", "Group", "plan", "merge_steps", "run_group", "kernel_dir"]
