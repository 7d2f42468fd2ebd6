"""Batch processing: files and folders in, images with sidecars out, failures isolated per file.

The CLI's ``rawcv process`` is a thin layer over :func:`process_files`.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .errors import OutputExistsError, RawcvError
from .io import read
from .io.writers import apply_orientation, output_suffix, sidecar_path, write_image
from .pipeline import Pipeline

RAW_SUFFIXES = {".dng", ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".arw", ".srf", ".sr2", ".raf", ".rw2",
                ".orf", ".pef", ".srw", ".kdc", ".dcr", ".mrw", ".3fr", ".erf", ".mef", ".mos", ".x3f",
                ".iiq", ".rwl", ".raw"}
DISPLAY_FORMATS = ("png", "jpg", "tiff")


def collect_inputs(inputs) -> list:
    """Expand inputs into ``(file, relative output stem)`` pairs, in order.

    A folder is searched recursively for RAW suffixes and its sub-tree is kept under the output
    folder (``shots/a/x.dng`` -> ``OUT/a/x.png``) so equal file names in different folders cannot
    collide; a file given directly maps to ``OUT/<name>``.
    """
    pairs, seen = [], set()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in RAW_SUFFIXES)
            entries = [(f, f.relative_to(p).with_suffix("")) for f in found]
        else:
            entries = [(p, Path(p.stem))]   # missing files are reported per file, not here
        for f, rel in entries:
            key = os.path.abspath(f)
            if key not in seen:
                seen.add(key)
                pairs.append((f, rel))
    return pairs


def output_names(pairs, outdir, fmt) -> dict:
    """Output path per input file; the suffix follows the format."""
    suffix = output_suffix(fmt)
    return {f: Path(outdir) / rel.with_name(rel.name + suffix) for f, rel in pairs}


@dataclass
class FileResult:
    source: Path
    output: Optional[Path] = None
    error: Optional[str] = None
    seconds: float = 0.0


@dataclass
class BatchSummary:
    results: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self):
        return [r for r in self.results if r.error]

    @property
    def ok(self):
        return [r for r in self.results if not r.error]

    @property
    def files_per_second(self) -> float:
        return len(self.results) / self.seconds if self.seconds > 0 else 0.0


def sidecar_for(raw, pipeline: Pipeline, result, fmt: str, oriented: bool) -> dict:
    from . import __version__
    sat = result.saturation
    return {
        "rawcv_version": __version__,
        "source": os.path.abspath(raw.path) if raw.path else None,
        "metadata": raw.meta.to_dict(),
        "pipeline": {"name": pipeline.name, "stages": result.record},
        "output": {"format": fmt, "dtype": str(result.image.dtype), "shape": list(result.image.shape),
                   "color_space": result.color_space, "orientation_applied": oriented,
                   "linear": not any(s.name == "gamma" for s in pipeline.stages)},
        "saturated_fraction": None if sat is None else float(sat.mean()),
    }


def process_one(path, output: Path, pipeline: Pipeline, fmt: str, *, overwrite: bool = False,
                raw=None, buffers: Optional[dict] = None) -> FileResult:
    """Read, run and write one file; every failure becomes a one-line message naming the file.

    ``buffers`` (one dict per worker, reused from file to file) keeps the last output image, and
    the pipeline writes the next one into it where shape and dtype fit: a batch of same-size
    files then allocates its full-size output once, not once per file."""
    t0 = time.perf_counter()
    try:
        if not overwrite:
            for p in (output, sidecar_path(output)):
                if p.exists():
                    raise OutputExistsError(f"{p}: exists (use --overwrite to replace it)")
        raw = raw if raw is not None else read(path)
        result = pipeline.run(raw, out=None if buffers is None else buffers.get("out"))
        image = result.image
        if buffers is not None:
            buffers["out"] = image          # written (below) before this worker runs its next file
        oriented = fmt in DISPLAY_FORMATS and raw.meta.orientation not in (0, None)
        if oriented:
            image = apply_orientation(image, raw.meta.orientation)
        write_image(output, image, sidecar=sidecar_for(raw, pipeline, result, fmt, oriented), overwrite=overwrite)
        return FileResult(Path(path), output, None, time.perf_counter() - t0)
    except (RawcvError, ValueError, OSError) as exc:
        msg = str(exc)
        if str(path) not in msg:
            msg = f"{path}: {msg}"
        return FileResult(Path(path), None, msg, time.perf_counter() - t0)


def _read_or_error(path):
    try:
        return read(path), None
    except (RawcvError, ValueError, OSError) as exc:
        return None, exc


def process_files(files, outdir, pipeline: Pipeline, *, fmt: str = "png", overwrite: bool = False,
                  jobs: int = 1, progress: Optional[Callable] = None) -> BatchSummary:
    """Process ``files`` (paths, or ``(path, relative output stem)`` pairs from
    :func:`collect_inputs`) into ``outdir``.

    With ``jobs == 1`` the next file is decoded in a background thread while the current one is
    processed (LibRaw and the Numba kernels release the GIL). With ``jobs > 1`` files run in that
    many threads and the Numba kernels share the cores among them.
    """
    pairs = [(Path(f), Path(Path(f).stem)) if not isinstance(f, tuple) else (Path(f[0]), Path(f[1]))
             for f in files]
    names = output_names(pairs, outdir, fmt)
    files = [f for f, _ in pairs]
    clashes = {}
    for f, out in names.items():
        clashes.setdefault(out, []).append(f)
    Path(outdir).mkdir(parents=True, exist_ok=True)
    summary = BatchSummary()
    t0 = time.perf_counter()

    def done(res):
        summary.results.append(res)
        if progress is not None:
            progress(res)

    clashing = {f for group in clashes.values() if len(group) > 1 for f in group[1:]}
    for f in clashing:
        done(FileResult(f, None, f"{f}: writes the same output {names[f]} as another input; "
                                 "pass their folder instead so the sub-tree keeps them apart"))
    files = [f for f in files if f not in clashing]

    if jobs <= 1:
        buffers: dict = {}
        with ThreadPoolExecutor(max_workers=1) as reader:
            pending = reader.submit(_read_or_error, files[0]) if files else None
            for i, f in enumerate(files):
                raw, err = pending.result()
                pending = reader.submit(_read_or_error, files[i + 1]) if i + 1 < len(files) else None
                if err is not None:
                    msg = str(err) if str(f) in str(err) else f"{f}: {err}"
                    done(FileResult(f, None, msg))
                    continue
                done(process_one(f, names[f], pipeline, fmt, overwrite=overwrite, raw=raw, buffers=buffers))
    else:
        import numba

        threads_each = max(1, numba.config.NUMBA_NUM_THREADS // jobs)
        local = threading.local()

        def work(f):
            numba.set_num_threads(threads_each)
            if not hasattr(local, "buffers"):
                local.buffers = {}
            return process_one(f, names[f], pipeline, fmt, overwrite=overwrite, buffers=local.buffers)

        names_parents = {names[f].parent for f in files}
        for parent in names_parents:
            parent.mkdir(parents=True, exist_ok=True)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for res in pool.map(work, files):
                done(res)
    summary.seconds = time.perf_counter() - t0
    order = {f: i for i, (f, _) in enumerate(pairs)}
    summary.results.sort(key=lambda r: order.get(r.source, 0))
    return summary
