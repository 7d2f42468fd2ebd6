"""Batch processing: files and folders in, images with sidecars out, failures isolated per file.

The CLI's ``rawcv process`` is a thin layer over :func:`process_files`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .errors import OutputExistsError, RawcvError
from .io import read
from .io.exif import ExifInfo
from .io.icc import matrix_trc_profile
from .io.writers import apply_orientation, output_suffix, sidecar_path, stored_image, write_image
from .isp.black_level import saturated_fractions
from .meta import RawImage
from .pipeline import Pipeline

RAW_SUFFIXES = {".dng", ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".arw", ".srf", ".sr2", ".raf", ".rw2",
                ".orf", ".pef", ".srw", ".kdc", ".dcr", ".mrw", ".3fr", ".erf", ".mef", ".mos", ".x3f",
                ".iiq", ".rwl", ".raw"}
DUMP_SUFFIXES = {".raw", ".bin"}      # headerless sensor dumps, read with explicit parameters
DISPLAY_FORMATS = ("png", "jpg", "tiff")


def collect_inputs(inputs, suffixes=RAW_SUFFIXES) -> list:
    """Expand inputs into ``(file, relative output stem)`` pairs, in order.

    A folder is searched recursively for files with ``suffixes`` and its sub-tree is kept under the
    output folder (``shots/a/x.dng`` -> ``OUT/a/x.png``) so equal file names in different folders
    cannot collide; a file given directly maps to ``OUT/<name>``.
    """
    pairs, seen = [], set()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
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


def make_output_folder(outdir) -> Path:
    """Create ``outdir`` (and missing parents), or raise :class:`RawcvError` naming what is in the
    way; on failure nothing is left behind.

    Parameters
    ----------
    outdir : str or path-like
        The output folder; an existing folder is fine.

    Returns
    -------
    Path

    Raises
    ------
    RawcvError
        ``outdir`` is a file, lies under a file, or cannot be created (the OS's reason).

    Examples
    --------
    >>> import os, tempfile
    >>> base = tempfile.mkdtemp()
    >>> make_output_folder(os.path.join(base, "a", "b")).is_dir()
    True
    """
    out = Path(outdir)
    if out.is_dir():
        return out
    if out.exists():
        raise RawcvError(f"{out}: is a file, not a folder for the outputs")
    missing = []
    p = out
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    if not p.is_dir():
        raise RawcvError(f"{out}: cannot create the output folder: {p} is a file")
    created = []
    try:
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
    except OSError as exc:
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise RawcvError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    return out


@dataclass
class FileResult:
    source: Path
    output: Optional[Path] = None
    error: Optional[str] = None
    seconds: float = 0.0


@dataclass
class BatchSummary:
    results: list = field(default_factory=list)
    seconds: float = 0.0            # processing, without the warm-up
    warmup_seconds: float = 0.0     # the kernels' first run on a tiny frame (compiling, if cold)

    @property
    def failures(self):
        return [r for r in self.results if r.error]

    @property
    def ok(self):
        return [r for r in self.results if not r.error]

    @property
    def files_per_second(self) -> float:
        return len(self.results) / self.seconds if self.seconds > 0 else 0.0


def output_profile(space, image, fmt: str) -> Optional[bytes]:
    """The ICC profile of an output: for an RGB image (PNG, JPEG, TIFF) whose colour space the
    pipeline knows (``space``, :meth:`Pipeline.color_space`), with its primaries, white and transfer
    curve; None for ``.npy`` files, mosaics, custom matrices and files without a colour matrix."""
    if fmt not in DISPLAY_FORMATS or space.to_xyz is None or image.ndim != 3 or image.shape[2] != 3:
        return None
    return matrix_trc_profile(space.to_xyz, space.white, space.curve, space.label)


def output_exif(raw, fmt: str, oriented: bool) -> Optional[ExifInfo]:
    """The EXIF of an output (PNG, JPEG, TIFF; none for ``.npy``): the file's camera and exposure,
    and the orientation of the pixels as written (upright unless ``oriented`` is False)."""
    from . import __version__
    if fmt not in DISPLAY_FORMATS:
        return None
    return ExifInfo.from_meta(raw.meta, software=f"rawcv {__version__}", upright=oriented)


def sidecar_for(raw, pipeline: Pipeline, result, fmt: str, oriented: bool, image=None, *,
                icc_profile: Optional[bytes] = None) -> dict:
    """The JSON sidecar of one output; ``image`` is the array as written (default the result's),
    ``icc_profile`` the profile embedded in it (None: none)."""
    from . import __version__
    sat = result.saturation
    image = result.image if image is None else image
    return {
        "rawcv_version": __version__,
        "source": os.path.abspath(raw.path) if raw.path else None,
        "metadata": raw.meta.to_dict(),
        "pipeline": {"name": pipeline.name, "opcodes": pipeline.opcodes, "stages": result.record},
        "output": {"format": fmt, "dtype": str(image.dtype), "shape": list(image.shape),
                   "color_space": result.color_space, "orientation_applied": oriented,
                   "transfer": result.transfer, "linear": result.transfer == "linear",
                   # an embedded ICC profile is named after the colour space (its description)
                   "icc_profile": {"embedded": icc_profile is not None,
                                   "description": None if icc_profile is None else result.color_space}},
        "saturated_fraction": None if sat is None else float(sat.mean()),
        # per colour: which channels the white level clipped (what the highlights stage had to handle)
        "saturated_by_channel": None if sat is None else saturated_fractions(sat, cfa=raw.meta.cfa),
    }


def process_one(path, output: Path, pipeline: Pipeline, fmt: str, *, overwrite: bool = False,
                raw=None, buffers: Optional[dict] = None, reader: Callable = read, orient: bool = True) -> FileResult:
    """Read, run and write one file; every failure becomes a one-line message naming the file.
    ``orient``: turn display images (PNG, JPEG, TIFF) upright by the file's orientation.

    ``buffers`` (one dict per worker, reused from file to file) keeps the last output image, and
    the pipeline writes the next one into it where shape and dtype fit: a batch of same-size
    files then allocates its full-size output once, not once per file."""
    t0 = time.perf_counter()
    try:
        if not overwrite:
            for p in (output, sidecar_path(output)):
                if p.exists():
                    raise OutputExistsError(f"{p}: exists (use --overwrite to replace it)")
        raw = raw if raw is not None else reader(path)
        result = pipeline.run(raw, out=None if buffers is None else buffers.get("out"))
        image = result.image
        if buffers is not None:
            buffers["out"] = image          # written (below) before this worker runs its next file
        oriented = orient and fmt in DISPLAY_FORMATS and raw.meta.orientation not in (0, None)
        if oriented:
            image = apply_orientation(image, raw.meta.orientation)
        image = stored_image(image, fmt)
        profile = output_profile(pipeline.color_space(raw.meta), image, fmt)
        side = sidecar_for(raw, pipeline, result, fmt, oriented, image, icc_profile=profile)
        write_image(output, image, sidecar=side, overwrite=overwrite, icc_profile=profile,
                    exif=output_exif(raw, fmt, oriented))
        return FileResult(Path(path), output, None, time.perf_counter() - t0)
    except (RawcvError, ValueError, OSError) as exc:
        msg = str(exc)
        if str(path) not in msg:
            msg = f"{path}: {msg}"
        return FileResult(Path(path), None, msg, time.perf_counter() - t0)


def _read_or_error(path, reader=read):
    try:
        return reader(path), None
    except (RawcvError, ValueError, OSError) as exc:
        return None, exc


def _failed(path, exc) -> FileResult:
    msg = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
    return FileResult(Path(path), None, msg)


@contextlib.contextmanager
def compile_notice(notify: Callable):
    """Call ``notify(where)`` once, as Numba starts compiling a kernel inside the block.

    Numba's ``cache=True`` kernels compile on their first use with new argument types and load
    from the on-disk cache afterwards; a cache hit fires no ``numba:compile`` event, so ``notify``
    runs only when the cache is cold.

    Parameters
    ----------
    notify : callable
        Called with one string, the cache folder of the first kernel compiled (``NUMBA_CACHE_DIR``
        when set).
    """
    from numba.core import event

    class _Once(event.Listener):
        told = False

        def on_start(self, ev):
            if not self.told:
                self.told = True
                notify(_cache_folder(ev.data.get("dispatcher")))

        def on_end(self, ev):
            pass

    with event.install_listener("numba:compile", _Once()):
        yield


def _cache_folder(dispatcher) -> str:
    import numba

    if numba.config.CACHE_DIR:
        return numba.config.CACHE_DIR
    # the locator Numba chose (next to the module, or the user-wide cache when that is read-only)
    folder = getattr(getattr(dispatcher, "_cache", None), "_cache_path", None)
    return str(folder) if folder else "Numba's cache folder"


class _WarmUp:
    """Runs the pipeline once on a tiny crop of the first file of each kind (Bayer, linear), so the
    kernels compile (cold cache) or load before the timed work, and threads do not queue on it."""

    SIDE = 64

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.lock = threading.Lock()
        self.done = set()
        self.seconds = 0.0

    def __call__(self, raw) -> None:
        kind = raw.is_linear
        if kind in self.done:
            return
        with self.lock:
            if kind in self.done:
                return
            t0 = time.perf_counter()
            # the top-left corner keeps the CFA phase, so the kernels see the file's layout
            tiny = RawImage(np.ascontiguousarray(raw.data[:self.SIDE, :self.SIDE]), raw.meta, raw.path)
            try:
                self.pipeline.run(tiny)
            except (RawcvError, ValueError):
                pass    # e.g. a stage needs more pixels: the file itself then compiles what it needs
            self.seconds += time.perf_counter() - t0
            self.done.add(kind)


def process_files(files, outdir, pipeline: Pipeline, *, fmt: str = "png", overwrite: bool = False,
                  jobs: int = 1, progress: Optional[Callable] = None, reader: Callable = read,
                  orient: bool = True) -> BatchSummary:
    """Process ``files`` (paths, or ``(path, relative output stem)`` pairs from
    :func:`collect_inputs`) into ``outdir``.

    With ``jobs == 1`` the next file is decoded in a background thread while the current one is
    processed (LibRaw and the Numba kernels release the GIL). With ``jobs > 1`` files run in that
    many threads and the Numba kernels share the cores among them. ``reader`` turns a path into a
    :class:`~rawcv.meta.RawImage` (default :func:`rawcv.read`; e.g. a ``read_bayer`` partial for
    headerless dumps). Before the first file of each kind the pipeline runs on a tiny crop of it
    (see :func:`compile_notice`); that time is ``warmup_seconds``, not part of ``seconds``.
    ``orient=False`` writes display images as the sensor saw them instead of upright.

    Raises
    ------
    RawcvError
        ``outdir`` cannot be created or is not a folder (nothing is created then).
    """
    pairs = [(Path(f), Path(Path(f).stem)) if not isinstance(f, tuple) else (Path(f[0]), Path(f[1]))
             for f in files]
    names = output_names(pairs, outdir, fmt)
    files = [f for f, _ in pairs]
    clashes = {}
    for f, out in names.items():
        clashes.setdefault(out, []).append(f)
    make_output_folder(outdir)
    summary = BatchSummary()
    warm_up = _WarmUp(pipeline)
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
        with ThreadPoolExecutor(max_workers=1) as background:
            pending = background.submit(_read_or_error, files[0], reader) if files else None
            for i, f in enumerate(files):
                raw, err = pending.result()
                pending = background.submit(_read_or_error, files[i + 1], reader) if i + 1 < len(files) else None
                if err is not None:
                    done(_failed(f, err))
                    continue
                warm_up(raw)
                done(process_one(f, names[f], pipeline, fmt, overwrite=overwrite, raw=raw, buffers=buffers,
                                 orient=orient))
    else:
        import numba

        threads_each = max(1, numba.config.NUMBA_NUM_THREADS // jobs)
        local = threading.local()

        def work(f):
            numba.set_num_threads(threads_each)
            if not hasattr(local, "buffers"):
                local.buffers = {}
            raw, err = _read_or_error(f, reader)
            if err is not None:
                return _failed(f, err)
            warm_up(raw)
            return process_one(f, names[f], pipeline, fmt, overwrite=overwrite, raw=raw, buffers=local.buffers,
                               orient=orient)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for res in pool.map(work, files):
                done(res)
    summary.warmup_seconds = warm_up.seconds
    summary.seconds = time.perf_counter() - t0 - warm_up.seconds
    order = {f: i for i, (f, _) in enumerate(pairs)}
    summary.results.sort(key=lambda r: order.get(r.source, 0))
    return summary
