"""ISP speed benchmark: rawcv against rawpy/LibRaw, OpenCV + NumPy, colour-demosaicing and kornia.

Run from the repository root::

    python -m bench.isp_bench [--size 6000x4000] [--repeat 5] [--write BENCHMARKS.md]

Everything is measured in one process, after a warm-up run, as the best of ``--repeat`` runs on the
same pixels: a natural scene written as a 14-bit RGGB DNG (see :mod:`bench.scene`, cached under
``.bench/``). Peak memory is measured in child processes (VmHWM from /proc/self/status; NumPy
and Numba allocate outside tracemalloc's view), start-up and ``rawcv process`` in subprocesses.
Every number in the report, and every target verdict, comes from the run that writes it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import peers, scene, system

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench"
SAMPLES = ROOT.parent / "shared" / "raw-samples"


# --------------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------------

@dataclass
class Timing:
    name: str
    group: str
    best: float                  # seconds
    median: float
    pixels: int
    note: str = ""

    @property
    def mps(self) -> float:
        return self.pixels / self.best / 1e6


@dataclass
class Results:
    """Timings, taken in rounds: every registered item runs once per round, so that a stretch of
    load from other processes hits all of them alike instead of whichever ran then."""

    repeat: int
    pixels: int
    items: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    pending: list = field(default_factory=list)

    def register(self, key, name, group, fn, *, parts=None, pixels=None):
        """``parts``: ``[(key, name), ...]`` when ``fn`` times itself and returns one duration per part."""
        self.pending.append((key, name, group, fn, parts, pixels or self.pixels))

    def run(self) -> None:
        print(f"  warm-up, then {self.repeat} rounds of {len(self.pending)} measurements", flush=True)
        for _, _, _, fn, _, _ in self.pending:
            fn()
        runs = {}
        for _ in range(self.repeat):
            for key, _, _, fn, parts, _ in self.pending:
                if parts:
                    for (k, _), d in zip(parts, fn()):
                        runs.setdefault(k, []).append(d)
                else:
                    t0 = time.perf_counter()
                    fn()
                    runs.setdefault(key, []).append(time.perf_counter() - t0)
        for key, name, group, _, parts, pixels in self.pending:
            for k, n in parts or [(key, name)]:
                r = runs[k]
                t = Timing(n, group, min(r), statistics.median(r), pixels)
                self.items[k] = t
                print(f"  {n:<70s} {t.best * 1e3:9.1f} ms  {t.mps:8.1f} MP/s", flush=True)
        self.pending = []


RATIO_PAIRS = [("core", "cv_core"), ("core_out", "cv_core"), ("core", "rawpy_process"), ("core", "rawpy_total"),
               ("default", "cv_default"), ("default", "rawpy_process_ahd"), ("default_gbtf", "rawpy_process_ahd"),
               ("default_bilinear", "rawpy_process_ahd"), ("demosaic_u16", "cv_bayer"), ("demosaic", "cv_bayer"),
               ("median_out", "cv_median_dst"), ("median", "cv_median"),
               ("demosaic", "colour_demosaicing"), ("demosaic", "kornia"), ("core", "core_numba"),
               ("default", "default_numba")]


def ratio_lines(res) -> list:
    return [ratio_text(res.items[a], res.items[b]) for a, b in RATIO_PAIRS if a in res.items and b in res.items]


def ratio_text(fast: Timing, slow: Timing) -> str:
    r = slow.best / fast.best
    if r >= 1:
        return f"{fast.name} {fast.mps:.0f} MP/s; {slow.name} {slow.mps:.0f} MP/s: rawcv {r:.1f}x faster"
    return f"{fast.name} {fast.mps:.0f} MP/s; {slow.name} {slow.mps:.0f} MP/s: rawcv {1 / r:.2f}x slower"


# --------------------------------------------------------------------------------------------------
# the measurements
# --------------------------------------------------------------------------------------------------

def measure(args, path: Path) -> tuple:
    import cv2
    import numba

    import rawcv
    from rawcv import isp
    from rawcv.isp.demosaic import DEMOSAIC_METHODS
    from rawcv.pipeline import load_pipeline

    raw = rawcv.read(path)
    mos = raw.data
    h, w = mos.shape
    meta, cfa = raw.meta, raw.cfa
    res = Results(args.repeat, h * w)
    print(f"input: {path} ({path.stat().st_size / 2 ** 20:.1f} MiB, {w} x {h})")
    res.register("rawcv_read", "rawcv.read (LibRaw decode + copy)", "decode", lambda: rawcv.read(path))

    # (1), (2): the pipelines, fused and stage by stage
    core = load_pipeline("core")                      # backend auto: the fused path
    core_numba = load_pipeline("core", backend="numba")
    default = load_pipeline("default")
    default_numba = load_pipeline("default", backend="numba")
    default_method = next(st for st in default.stages if st.name == "demosaic").method
    res.register("core", "rawcv core chain (fused)", "rawcv", lambda: core.run(raw))
    # what a batch does (rawcv.batch reuses its output buffers): no fresh pages for the kernel to zero
    core_out = core.run(raw).image
    core_buffer = np.empty_like(core_out)
    res.register("core_out", "rawcv core chain (fused), into a reused output buffer", "rawcv",
                 lambda: core.run(raw, out=core_buffer))
    res.register("core_numba", "rawcv core chain, stage by stage (numba backend)", "rawcv",
                 lambda: core_numba.run(raw))

    def one_thread(fn):
        def run():
            threads = numba.get_num_threads()
            numba.set_num_threads(1)
            try:
                fn()
            finally:
                numba.set_num_threads(threads)
        return run

    res.register("core_1t", "rawcv core chain (fused), 1 Numba thread", "rawcv", one_thread(lambda: core.run(raw)))
    res.register("default", f"rawcv default pipeline (fused; demosaic {default_method}, median 3x3)", "rawcv",
                 lambda: default.run(raw))
    # the default pipeline with each other demosaic method: what the choice of its method weighs
    for method in DEMOSAIC_METHODS:
        if method != default_method:
            other = default.with_params("demosaic", method=method)
            res.register(f"default_{method}", f"rawcv default pipeline with demosaic {method} "
                         f"({'fused' if len(other.fused_plan()) == 1 else 'demosaic on its own'})", "rawcv",
                         lambda other=other: other.run(raw))
    res.register("default_numba", "rawcv default pipeline, stage by stage", "rawcv", lambda: default_numba.run(raw))
    res.checks.append(("fused core chain == stage-by-stage core chain (bit for bit)",
                       np.array_equal(core_out, core_numba.run(raw).image)))
    res.checks.append(("fused default pipeline == stage-by-stage (bit for bit)",
                       np.array_equal(default.run(raw).image, default_numba.run(raw).image)))

    # (3): each stage on its own, on the data it sees in the chain
    black, white = meta.black_level, meta.white_level
    gains = isp.normalize_gains(meta.as_shot_wb)
    norm = isp.subtract_black_level(mos, black=black, white=white)
    balanced = isp.white_balance(norm, gains, cfa=cfa)
    rgb = isp.demosaic_bilinear(balanced, cfa=cfa)
    matrix = isp.camera_to_srgb_matrix(meta.xyz_to_cam)
    encoded = isp.srgb_encode(rgb)
    res.register("black", "black level (uint16 mosaic -> float32)", "stage",
                 lambda: isp.subtract_black_level(mos, black=black, white=white))
    res.register("saturation", "saturation mask", "stage", lambda: isp.saturation_mask(mos, white=white))
    res.register("wb", "white balance (mosaic)", "stage", lambda: isp.white_balance(norm, gains, cfa=cfa))
    res.register("demosaic", "demosaic bilinear (float32 mosaic)", "stage",
                 lambda: isp.demosaic_bilinear(balanced, cfa=cfa))
    res.register("demosaic_u16", "demosaic bilinear (the uint16 mosaic)", "stage",
                 lambda: isp.demosaic_bilinear(mos, cfa=cfa))
    res.register("median", "median 3x3 (float32 RGB)", "stage", lambda: isp.denoise_median(rgb, size=3))
    median_buffer = np.empty_like(rgb)
    res.register("median_out", "median 3x3 (float32 RGB), into a reused output", "stage",
                 lambda: isp.denoise_median(rgb, size=3, out=median_buffer))
    res.register("mean", "mean 3x3 (float32 RGB)", "stage", lambda: isp.denoise_mean(rgb, size=3))
    res.register("vignetting", "vignetting (k1=0.3, k2=0.1; float32 RGB)", "stage",
                 lambda: isp.correct_vignetting(rgb, k1=0.3, k2=0.1))
    res.register("matrix", "colour matrix (float32 RGB)", "stage", lambda: isp.apply_color_matrix(rgb, matrix))
    res.register("gamma", "sRGB gamma (float32 RGB)", "stage", lambda: isp.srgb_encode(rgb))
    res.register("quantize", "quantize to 8 bits", "stage", lambda: isp.quantize(encoded, bits=8))
    res.register("tail_levels", "exact sRGB + 8-bit levels of float32 RGB (fused tail: table lookups)", "stage",
                 _fused_tone_tail(rgb, meta))

    # (4): rawpy, re-opened per run (postprocess runs once per open file), decode and processing apart
    def rawpy_run():
        t0 = time.perf_counter()
        rp = peers.rawpy_decode(path)
        t1 = time.perf_counter()
        peers.rawpy_process(rp)
        t2 = time.perf_counter()
        rp.close()
        return t1 - t0, t2 - t1, t2 - t0

    res.register("rawpy", "", "rawpy", rawpy_run,
                 parts=[("rawpy_decode", "rawpy imread + unpack (decode)"),
                        ("rawpy_process", "rawpy postprocess LINEAR, camera WB, 8-bit"),
                        ("rawpy_total", "rawpy decode + postprocess")])

    def rawpy_ahd_run():
        rp = peers.rawpy_decode(path)
        t0 = time.perf_counter()
        peers.rawpy_process(rp, demosaic="AHD")
        t1 = time.perf_counter()
        rp.close()
        return (t1 - t0,)

    res.register("rawpy_ahd", "", "rawpy", rawpy_ahd_run,
                 parts=[("rawpy_process_ahd", "rawpy postprocess AHD (its default), camera WB, 8-bit")])

    # (5), (6): OpenCV + NumPy
    cv_core = peers.OpenCVChain((h, w), cfa, black, white, gains)
    cv_full = peers.OpenCVChain((h, w), cfa, black, white, gains, matrix=matrix, full=True)
    code = peers.opencv_bayer_code(cfa)
    rgb16 = cv2.cvtColor(cv_core.normalise(mos), code)
    res.register("cv_core", "OpenCV+NumPy core chain", "opencv", lambda: cv_core(mos))
    res.register("cv_default", "OpenCV+NumPy chain with the default pipeline's stages", "opencv",
                 lambda: cv_full(mos))
    res.register("cv_bayer", "cv2.cvtColor Bayer bilinear (uint16 mosaic)", "opencv", lambda: cv2.cvtColor(mos, code))
    res.register("cv_median", "cv2.medianBlur 3x3 (uint16 RGB)", "opencv", lambda: cv2.medianBlur(rgb16, 3))
    median_dst = np.empty_like(rgb16)
    res.register("cv_median_dst", "cv2.medianBlur 3x3 (uint16 RGB), into a reused dst", "opencv",
                 lambda: cv2.medianBlur(rgb16, 3, dst=median_dst))
    res.register("cv_lut", "NumPy 65536-entry table lookup, uint16 RGB -> uint8 (in the OpenCV chain)", "opencv",
                 lambda: cv_core.lut[rgb16])
    diff = np.abs(cv_core(mos).astype(np.int16) - core_out.astype(np.int16))[2:-2, 2:-2]
    res.checks.append((f"OpenCV+NumPy core chain vs rawcv core: mean |diff| {diff.mean():.3f} levels, "
                       f"{(diff <= 1).mean() * 100:.2f}% of values within 1 level (same chain, uint16 "
                       "intermediate)", bool((diff <= 1).mean() > 0.99)))
    del diff, core_out

    # (7): other demosaicing libraries, where installed
    fn, why = peers.colour_demosaicing_bilinear()
    if fn is None:
        res.skipped.append(why)
    else:
        res.register("colour_demosaicing", "colour_demosaicing bilinear (float mosaic)", "other",
                     lambda: fn(balanced, cfa))
    probe = balanced[:64, :64]
    kfn, member, why = peers.kornia_raw_to_rgb(cfa, probe, isp.demosaic_bilinear(probe, cfa=cfa))
    if kfn is None:
        res.skipped.append(why)
    else:
        import torch

        tensor = torch.from_numpy(balanced)[None, None]

        def kornia_run():
            with torch.inference_mode():
                kfn(tensor)

        res.register("kornia", f"kornia.color.raw_to_rgb (CPU, CFA.{member.name}, {torch.get_num_threads()} threads)",
                     "other", kornia_run)

    # memory bandwidth: plain copies of the same bytes (fresh NumPy destinations, as the chain's)
    @numba.njit(parallel=True, nogil=True)
    def par_copy(a, out):
        for i in numba.prange(a.size):
            out[i] = a[i]

    def fresh_copy(a):
        out = np.empty_like(a)
        par_copy(a, out)
        return out

    moved = h * w * (2 + 3 + 1)                       # read the mosaic, write 8-bit RGB and the mask
    src = np.ones(moved // 2, np.uint8)               # a copy reads half and writes half
    frame = np.ones(h * w * 3, np.float32)
    res.register("copy_numpy", "NumPy copy of the core chain's bytes (np.copy, 1 thread)", "memory",
                 lambda: np.copy(src))
    res.register("copy_parallel", f"parallel copy of the core chain's bytes ({numba.get_num_threads()} threads)",
                 "memory", lambda: fresh_copy(src))
    res.register("copy_rgb", "parallel copy of a float32 RGB frame (what a 3x3 filter moves)", "memory",
                 lambda: fresh_copy(frame))

    res.run()
    it = res.items
    bw = {"bytes": moved, "core_gbs": moved / it["core"].best / 1e9, "numpy_gbs": moved / it["copy_numpy"].best / 1e9,
          "parallel_gbs": moved / it["copy_parallel"].best / 1e9, "rgb_copy_s": it["copy_rgb"].best,
          "rgb_bytes": 2 * frame.nbytes}
    return res, bw


def check_level_table(curve="srgb", gamma=2.2, bits=8) -> tuple:
    """Compare the fused path's memo table (``tone._levels_row``) with ``tone._lookup_level`` on
    every one of the 2^32 float32 bit patterns; returns (mismatches, seconds)."""
    import numba

    from rawcv.isp import tone

    thr, coarse, bins = tone.level_tables(curve, gamma, bits)
    if int(bins[0]) == 0:
        return 0, 0.0                                  # no table for this curve: nothing to check
    maxval = (1 << bits) - 1
    levels_row, lookup = tone._levels_row, tone._lookup_level

    @numba.njit(parallel=True, nogil=True)
    def mismatches(start, rows, shift, split, low, step):
        bad = np.zeros(rows, np.int64)
        for r in numba.prange(rows):
            pattern = (np.arange(65536, dtype=np.int64) + start + r * 65536).astype(np.uint32)
            x = pattern.view(np.float32)
            out = np.empty(65536, np.int64)
            levels_row(x, shift, split, low, step, out)
            for j in range(65536):
                if out[j] != lookup(x[j], thr, coarse, maxval):
                    bad[r] += 1
        return bad.sum()

    t0 = time.perf_counter()
    total = 0
    for start in range(0, 1 << 32, 1 << 28):
        total += int(mismatches(start, (1 << 28) // 65536, *bins))
    return total, time.perf_counter() - t0


def _fused_tone_tail(rgb, meta):
    """The fused path's gamma + quantise step alone (the same row function), on a float32 RGB frame."""
    from rawcv.isp.tone import encode_quantize

    return lambda: encode_quantize(rgb, curve="srgb", bits=8)


# --------------------------------------------------------------------------------------------------
# peak memory, in a child process per pipeline
# --------------------------------------------------------------------------------------------------

def child_peak(name: str, input_path: str) -> None:
    import gc

    import rawcv
    from rawcv.meta import RawImage
    from rawcv.pipeline import load_pipeline

    raw = rawcv.read(input_path)
    p = load_pipeline(name)
    p.run(RawImage(np.ascontiguousarray(raw.data[:64, :64]), raw.meta))   # load the compiled kernels
    gc.collect()
    reset = system.reset_peak_rss()
    base = system.vm_status("VmRSS")
    before_hwm = system.vm_status("VmHWM")
    result = p.run(raw)
    peak = system.vm_status("VmHWM")
    h, w = raw.data.shape[:2]
    print(json.dumps({"pipeline": name, "rss_before": base, "hwm_before": before_hwm, "hwm_after": peak,
                      "hwm_reset": reset, "increase": peak - (base if reset else max(base, before_hwm)),
                      "output_bytes": int(result.image.nbytes), "float_rgb_bytes": h * w * 3 * 4}))


def peak_memory(path: Path) -> dict:
    out = {}
    for name in ("core", "default"):
        proc = subprocess.run([sys.executable, "-m", "bench.isp_bench", "--child-peak", name, "--input", str(path)],
                              cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            out[name] = {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
            continue
        out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


# --------------------------------------------------------------------------------------------------
# start-up and the command line, in subprocesses
# --------------------------------------------------------------------------------------------------

IMPORT_PROBE = ("import json, sys, time; t0 = time.perf_counter(); import rawcv; t1 = time.perf_counter(); "
                "print(json.dumps({'import_s': t1 - t0, 'torch': 'torch' in sys.modules}))")
HELP_PROBE = ("import json, sys, io, contextlib; from rawcv.cli import main\n"
              "with contextlib.redirect_stdout(io.StringIO()):\n"
              "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
              "print(json.dumps({'torch': 'torch' in sys.modules}))")


def _run(cmd, env=None, cwd=ROOT):
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def startup(repeat: int, jobs_folder: Path, samples: list) -> dict:
    from rawcv.batch import collect_inputs

    out = {}
    py = sys.executable
    imports, walls, torch_loaded = [], [], False
    for _ in range(repeat):
        wall, proc = _run([py, "-c", IMPORT_PROBE])
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        imports.append(info["import_s"])
        walls.append(wall)
        torch_loaded |= info["torch"]
    out["import_s"] = min(imports)
    out["import_process_s"] = min(walls)
    out["torch_after_import"] = torch_loaded
    helps = []
    for _ in range(repeat):
        wall, proc = _run([py, "cli.py", "--help"])
        helps.append(wall)
    out["help_s"] = min(helps)
    _, proc = _run([py, "-c", HELP_PROBE])
    out["torch_after_help"] = json.loads(proc.stdout.strip().splitlines()[-1])["torch"]

    # cold = no compiled kernels on disk: a fresh NUMBA_CACHE_DIR is what clearing rawcv's
    # __pycache__/*.nbi, *.nbc does, without touching the checkout others may be using
    with tempfile.TemporaryDirectory(prefix="rawcv-bench-") as tmp:
        runs = []
        for k, folder in enumerate(samples):
            # a fresh cache per folder: each cold run compiles every kernel it needs
            env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / f"numba-cache-{k}"))
            cmd = [py, "cli.py", "process", str(folder), "-o", str(Path(tmp) / f"out{k}"), "--overwrite", "--quiet"]
            cold, proc = _run(cmd, env=env)
            run = {"cmd": f"rawcv process {os.path.relpath(folder, ROOT)} -o <tmp> --overwrite",
                   "ok": proc.returncode == 0, "files": len(collect_inputs([folder])), "cold_s": cold}
            summary = re.search(r"processed \d+ of \d+ files with pipeline '\w+'", proc.stdout)
            run["msg"] = summary.group(0) if summary else proc.stdout.strip()[-200:]
            if proc.returncode:
                run["msg"] += " " + proc.stderr.strip()[-300:]
            warm = []
            for _ in range(max(2, repeat // 2)):
                wall, proc = _run(cmd, env=env)
                warm.append(wall)
            run["warm_s"] = min(warm)
            runs.append(run)
        out["process"] = runs

        jobs = {}
        for n in (1, 2):
            best = None
            for _ in range(2):
                cmd = [py, "cli.py", "process", str(jobs_folder), "-o", str(Path(tmp) / f"jobs{n}"), "--overwrite",
                       "--quiet", "--jobs", str(n)]
                wall, proc = _run(cmd)
                m = re.search(r"processed (\d+) of (\d+).*?([\d.]+) s, ([\d.]+) files/s", proc.stdout)
                if proc.returncode != 0 or not m:
                    jobs[n] = {"error": (proc.stderr or proc.stdout).strip()[-300:]}
                    break
                rec = {"files": int(m.group(1)), "seconds": float(m.group(3)), "files_per_s": float(m.group(4)),
                       "process_wall_s": wall}
                if best is None or rec["seconds"] < best["seconds"]:
                    best = rec
            if best is not None:
                jobs[n] = best
        out["jobs"] = jobs
    return out


# --------------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------------

@dataclass
class Target:
    what: str
    measured: float
    goal: float
    higher_is_better: bool
    unit: str
    detail: str

    @property
    def met(self) -> bool:
        return self.measured >= self.goal if self.higher_is_better else self.measured <= self.goal

    def verdict(self) -> str:
        if self.met:
            return "met"
        if self.higher_is_better:
            return f"NOT met: {self.measured:.2f}{self.unit} is {(1 - self.measured / self.goal) * 100:.0f}% short"
        return f"NOT met: {self.measured:.2f}{self.unit} is {(self.measured / self.goal - 1) * 100:.0f}% over"


def targets(res: Results, mem: dict) -> list:
    it = res.items
    out = [
        Target("core chain vs OpenCV+NumPy core chain", it["cv_core"].best / it["core"].best, 10, True, "x",
               ratio_text(it["core"], it["cv_core"])),
        Target("core chain vs rawpy postprocess (processing only)", it["rawpy_process"].best / it["core"].best, 15,
               True, "x", ratio_text(it["core"], it["rawpy_process"])),
        Target("default pipeline vs rawpy postprocess with AHD (processing only)",
               it["rawpy_process_ahd"].best / it["default"].best, 5, True, "x",
               ratio_text(it["default"], it["rawpy_process_ahd"])),
        Target("default pipeline vs OpenCV+NumPy chain with the same stages (OpenCV demosaics bilinear)",
               it["cv_default"].best / it["default"].best, 5, True, "x", ratio_text(it["default"], it["cv_default"])),
        Target("demosaic (uint16 mosaic) time / cv2.cvtColor time", it["demosaic_u16"].best / it["cv_bayer"].best,
               1.5, False, "x", ratio_text(it["demosaic_u16"], it["cv_bayer"])),
        # the filters alone, both writing into a reused output (allocating, each also pays for the kernel
        # zeroing fresh pages: twice as many for rawcv's float32 as for OpenCV's uint16; that pair is in
        # the ratios too)
        Target("median 3x3 (float32 RGB) time / cv2.medianBlur (16-bit) time, both into reused outputs",
               it["median_out"].best / it["cv_median_dst"].best, 1.0, False, "x",
               ratio_text(it["median_out"], it["cv_median_dst"])),
    ]
    core_mem = mem.get("core", {})
    if "increase" in core_mem:
        out.append(Target("core chain peak RSS increase / float32 RGB output size",
                          core_mem["increase"] / core_mem["float_rgb_bytes"], 3.0, False, "x",
                          f"{core_mem['increase'] / 2 ** 20:.0f} MiB peak increase vs "
                          f"{core_mem['float_rgb_bytes'] / 2 ** 20:.0f} MiB float32 RGB"))
    return out


def analysis(res: Results, mem: dict, bw: dict, env: dict, busy: float) -> list:
    """Why each target that is not met is not met, from this run's numbers."""
    it = res.items
    ms = lambda key: it[key].best * 1e3  # noqa: E731
    out = []
    lookups = res.pixels * 3
    for t in targets(res, mem):
        if t.met:
            continue
        if t.what.startswith("core chain vs OpenCV") or t.what.startswith("core chain vs rawpy"):
            peer = "cv_core" if "OpenCV" in t.what else "rawpy_process"
            need = ms(peer) / t.goal
            vs_copy = ms("core") / ms("copy_parallel")
            out.append(
                f"- **{t.what}**: {t.measured:.2f}x, {(1 - t.measured / t.goal) * 100:.0f}% short of {t.goal:g}x. "
                f"The goal needs the core chain in {need:.1f} ms; it takes {ms('core'):.1f} ms "
                f"({ms('core_out'):.1f} ms into a reused output buffer, "
                f"{it[peer].best / it['core_out'].best:.1f}x). Its exact 8-bit sRGB "
                f"encode is {lookups / 1e6:.0f} M table lookups per frame: the fused tone tail alone (which also "
                f"reads a float32 RGB frame) takes {ms('tail_levels'):.1f} ms, "
                f"{ms('tail_levels') / ms('core') * 100:.0f}% of the chain's time. The table reproduces the scalar "
                "float32 `pow` chain bit for bit, so it cannot be swapped for an approximation, and each lookup "
                "is a data-dependent load that LLVM compiles to scalar code on this CPU "
                f"({env['machine'].get('LLVM target CPU', '?')}; it does not vectorise the gathers). The chain's "
                f"least memory traffic ({bw['bytes'] / 1e6:.0f} MB) takes {ms('copy_parallel'):.1f} ms as a parallel "
                f"copy; the chain takes {vs_copy:.1f}x that"
                + (f". On {os.cpu_count()} threads it runs {ms('core_1t') / ms('core'):.2f}x as fast as on one"
                   if "core_1t" in it else "")
                + (", so it is bound by that per-value work rather than by memory bandwidth." if vs_copy > 2 else
                   ", close to the memory bandwidth."))
        elif t.what.startswith("default pipeline vs rawpy"):
            out.append(
                f"- **{t.what}**: {t.measured:.2f}x, {(1 - t.measured / t.goal) * 100:.0f}% short of {t.goal:g}x "
                f"(goal: {ms('rawpy_process_ahd') / t.goal:.1f} ms, measured {ms('default'):.1f} ms).")
        elif t.what.startswith("default pipeline"):
            out.append(
                f"- **{t.what}**: {t.measured:.2f}x, {(1 - t.measured / t.goal) * 100:.0f}% short of {t.goal:g}x "
                f"(goal: {ms('cv_default') / t.goal:.1f} ms, measured {ms('default'):.1f} ms). The fused default "
                f"pipeline does the core chain's work ({ms('core'):.1f} ms) plus a 3x3 median on float32 rows "
                f"(stand-alone: {ms('median'):.1f} ms), the vignetting gain and the colour matrix.")
        elif t.what.startswith("demosaic"):
            out.append(
                f"- **{t.what}**: {t.measured:.2f}x. rawcv writes float32 RGB (12 bytes per pixel), cvtColor "
                f"uint16 RGB (6 bytes per pixel); a parallel copy of a float32 RGB frame alone takes "
                f"{bw['rgb_copy_s'] * 1e3:.1f} ms.")
        elif t.what.startswith("median"):
            vs_copy = ms("median_out") / (bw["rgb_copy_s"] * 1e3)
            out.append(
                f"- **{t.what}**: {t.measured:.2f}x, {(t.measured / t.goal - 1) * 100:.0f}% over. rawcv's median works "
                f"on float32 RGB, twice the bytes of OpenCV's 16-bit data: it reads and writes "
                f"{bw['rgb_bytes'] / 1e6:.0f} MB, which a plain parallel copy moves in {bw['rgb_copy_s'] * 1e3:.1f} ms "
                f"(cv2.medianBlur into its dst: {ms('cv_median_dst'):.1f} ms for the whole 16-bit median). The median "
                f"takes {vs_copy:.2f}x the float32 copy time"
                + (": it is bound by memory traffic, and the float32 data cannot be narrowed without changing "
                   "its results." if vs_copy <= 1.5 else ": the remaining cost is the min/max network itself.")
                + " Inside the default pipeline the median runs fused, on rows in cache, where the full-frame "
                  "traffic does not arise.")
        elif t.what.startswith("core chain peak RSS"):
            out.append(f"- **{t.what}**: {t.measured:.2f}x ({t.detail}).")
    if busy > 0.2:
        out.append(f"- Other processes used {busy:.2f} of the {os.cpu_count()} cores on average during this run; "
                   "every multi-threaded number (rawcv's included) is lower than on an idle machine.")
    return out


def render(args, res: Results, mem: dict, bw: dict, start: dict, env: dict, busy: float, load: tuple,
           path: Path) -> str:
    it = res.items
    h_w = args.size
    lines = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add(f"Written by `{env['command']}` on {env['date']}. Every number below comes from that one run; "
        "rerun the command to refresh them.")
    add("")
    add("## Machine")
    add("")
    add("| | |")
    add("|---|---|")
    for k, v in env["machine"].items():
        add(f"| {k} | {v} |")
    for k, v in env["versions"].items():
        add(f"| {k} | {v} |")
    add(f"| process priority (nice) | {env['nice']} |")
    add(f"| load average before / after | {load[0]} / {load[1]} |")
    add(f"| CPU used by other processes during the run | {busy:.2f} cores on average |")
    add("")
    if busy > 0.2:
        add(f"**Note:** other processes used {busy:.2f} cores on average while this ran, so the multi-threaded "
            "numbers (rawcv, OpenCV, kornia) are lower than on an idle machine.")
        add("")
    add("## Input")
    add("")
    add(f"`{path.relative_to(ROOT)}`: a {h_w[0]} x {h_w[1]} ({res.pixels / 1e6:.1f} MP) 14-bit RGGB DNG written by "
        f"`rawcv.write_dng` ({path.stat().st_size / 2 ** 20:.0f} MiB): four `skimage.data` colour photographs "
        f"({', '.join(scene.PHOTOS)}) upscaled bicubically into a 2 x 2 grid, lightly textured, decoded to linear with "
        "`rawcv.isp.srgb_decode`, divided by the as-shot white balance "
        f"(R {scene.AS_SHOT_WB[0]}, B {scene.AS_SHOT_WB[2]}), mosaicked with `rawcv.isp.mosaic_rgb`, "
        f"scaled to black {scene.BLACK} .. white {scene.WHITE} with mild shot and read noise "
        "(see `bench/scene.py`). Generated once and cached in `.bench/`.")
    add("")
    add(f"Timings: one warm-up run of everything, then {args.repeat} rounds in which every measurement runs once "
        "(so that load from other processes falls on all of them alike); the best of the rounds is reported, "
        "the median in brackets. All in one process. MP/s = megapixels of the mosaic per second.")
    add("")
    add("## Method")
    add("")
    add("- **rawcv core chain**: `load_pipeline(\"core\")` (black level, as-shot white balance, bilinear demosaic, "
        "sRGB curve, 8-bit) on the decoded uint16 mosaic, fused backend; its saturation mask is included. "
        "**default**: `load_pipeline(\"default\")`, which demosaics by Malvar-He-Cutler and adds a 3x3 median, "
        "vignetting (k = 0) and the colour matrix; it is also timed with each other demosaic method "
        "(`with_params(\"demosaic\", method=...)`). Both pipelines are checked bit for bit against the "
        "stage-by-stage (`numba`) backend below.")
    add("- **rawpy**: a fresh `rawpy.imread` + `unpack()` per run (decode), then `postprocess(demosaic_algorithm="
        "LINEAR, use_camera_wb=True, no_auto_bright=True, output_bps=8)` (processing), timed apart; the same with "
        "`AHD`, LibRaw's default demosaic, the yardstick of the default pipeline.")
    add("- **OpenCV + NumPy** (`bench/peers.py`): black level and white balance in one float32 NumPy broadcast "
        "over the 2x2 CFA tile, scaled to uint16; `cv2.cvtColor` bilinear Bayer (`COLOR_BayerRGGB2RGB`: OpenCV 5 "
        "names the literal top-left pattern); the sRGB curve + 8-bit quantisation as one lookup in a "
        "65536-entry table. The default-pipeline version adds `cv2.medianBlur` 3x3 on the uint16 RGB, the "
        "vignetting gain map multiply and `cv2.transform` with the colour matrix (float32). Tables and the gain "
        "map are built once, outside the timing.")
    add("- Peers run with their default thread counts (listed above); rawcv with Numba's.")
    add("")
    add("## Results")
    add("")
    add("| group | measurement | best ms (median) | MP/s |")
    add("|---|---|---:|---:|")
    for t in it.values():
        add(f"| {t.group} | {t.name} | {t.best * 1e3:.1f} ({t.median * 1e3:.1f}) | {t.mps:.0f} |")
    for why in res.skipped:
        add(f"| skipped | {why} | | |")
    add("")
    add("## Ratios")
    add("")
    for text in ratio_lines(res):
        add(f"- {text}")
    add("")
    add("## Targets")
    add("")
    add("| target | goal | measured | verdict | |")
    add("|---|---:|---:|---|---|")
    for t in targets(res, mem):
        goal = f"{'>=' if t.higher_is_better else '<='} {t.goal:g}{t.unit}"
        add(f"| {t.what} | {goal} | {t.measured:.2f}{t.unit} | {t.verdict()} | {t.detail} |")
    add("")
    why = analysis(res, mem, bw, env, busy)
    if why:
        add("Targets not met, and why (from this run's numbers):")
        add("")
        lines.extend(why)
        add("")
    add("## Checks")
    add("")
    for text, ok in res.checks:
        add(f"- {'OK' if ok else 'FAILED'}: {text}")
    add("")
    add("## Memory")
    add("")
    add("Peak resident memory (VmHWM, reset just before the run) minus the resident size before it, in a "
        "child process that has read the file and loaded the compiled kernels:")
    add("")
    add("| pipeline | peak increase | its output | float32 RGB of the frame | increase / float32 RGB |")
    add("|---|---:|---:|---:|---:|")
    for name, m in mem.items():
        if "increase" in m:
            add(f"| {name} | {m['increase'] / 2 ** 20:.0f} MiB | {m['output_bytes'] / 2 ** 20:.0f} MiB | "
                f"{m['float_rgb_bytes'] / 2 ** 20:.0f} MiB | {m['increase'] / m['float_rgb_bytes']:.2f}x |")
        else:
            add(f"| {name} | failed: {m.get('error')} | | | |")
    add("")
    add("## Memory bandwidth")
    add("")
    add(f"The core chain must at least read the uint16 mosaic and write the 8-bit RGB image and the saturation "
        f"mask: {bw['bytes'] / 1e6:.0f} MB per frame. Moving that takes {bw['bytes'] / bw['numpy_gbs'] / 1e6:.1f} ms "
        f"as a NumPy copy ({bw['numpy_gbs']:.1f} GB/s, one thread) and {bw['bytes'] / bw['parallel_gbs'] / 1e6:.1f} ms "
        f"as a parallel copy ({bw['parallel_gbs']:.1f} GB/s); the core chain takes {it['core'].best * 1e3:.1f} ms "
        f"({bw['core_gbs']:.1f} GB/s of those bytes), {it['core'].best / it['copy_parallel'].best:.1f}x the parallel "
        f"copy. A 3x3 filter from float32 RGB to float32 RGB moves at least {bw['rgb_bytes'] / 1e6:.0f} MB; "
        f"the parallel copy of that takes {bw['rgb_copy_s'] * 1e3:.1f} ms.")
    add("")
    add("## Start-up and the command line")
    add("")
    add(f"- `import rawcv`: {start['import_s'] * 1e3:.0f} ms (whole `python -c 'import rawcv'` process "
        f"{start['import_process_s'] * 1e3:.0f} ms); torch imported: {start['torch_after_import']}")
    add(f"- `rawcv --help`: {start['help_s'] * 1e3:.0f} ms (process wall time); torch imported: "
        f"{start['torch_after_help']}")
    for run in start["process"]:
        add(f"- `{run['cmd']}` ({run['files']} files): cold = first run with no compiled kernels on disk (a "
            "fresh, empty `NUMBA_CACHE_DIR`: the same as deleting rawcv's `__pycache__/*.nbi, *.nbc`, without "
            f"touching the checkout) {run['cold_s']:.1f} s, warm {run['warm_s']:.2f} s (process wall time; "
            f"goal < 1.5 s: {'met' if run['warm_s'] < 1.5 else 'NOT met'}); "
            f"{'ok' if run['ok'] else 'FAILED'}: {run['msg']}")
    for n, j in start["jobs"].items():
        if "error" in j:
            add(f"- `--jobs {n}`: failed: {j['error']}")
        else:
            add(f"- `rawcv process` on {j['files']} copies of a {args.jobs_size[0]} x {args.jobs_size[1]} DNG, "
                f"`--jobs {n}`: {j['files_per_s']:.2f} files/s ({j['seconds']:.2f} s in the batch, "
                f"{j['process_wall_s']:.2f} s process wall time)")
    add("")
    return "\n".join(lines)


def write_report(path, text: str) -> None:
    """Write the report to ``path``, carrying an existing demosaic-quality section (written by
    ``bench/demosaic_quality.py`` between its markers) over unchanged at the end."""
    from .demosaic_quality import extract_section

    path = Path(path)
    kept = extract_section(path.read_text()) if path.exists() else None
    path.write_text(text + "\n" + (f"\n{kept}\n" if kept else ""))


def environment(argv) -> dict:
    return {"machine": system.machine(), "versions": system.versions(),
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "command": (f"nice -n {os.nice(0)} " if os.nice(0) else "") + "python -m bench.isp_bench "
                       + " ".join(shlex.quote(a) for a in argv),
            "nice": os.nice(0)}


def frame_size(text: str, minimum: int = 16):
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if w < minimum or h < minimum or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"width and height must be even and >= {minimum}")
    return w, h


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m bench.isp_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=frame_size, default=(6000, 4000), metavar="WxH", help="frame size (default 6000x4000)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per measurement, best is reported (>= 5)")
    ap.add_argument("--write", metavar="FILE", help="write the report (Markdown) to FILE, e.g. BENCHMARKS.md")
    ap.add_argument("--jobs-size", type=frame_size, default=(3000, 2000), metavar="WxH",
                    help="size of the 12 DNG copies for --jobs 1 vs 2 (default 3000x2000)")
    ap.add_argument("--skip-startup", action="store_true", help="leave out the start-up / command-line part")
    ap.add_argument("--check-table", action="store_true",
                    help="also check the fused path's 8-bit sRGB level table against tone._lookup_level on all "
                         "2^32 float32 bit patterns (about a minute or two)")
    ap.add_argument("--child-peak", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_peak:
        child_peak(args.child_peak, args.input)
        return 0
    if args.repeat < 5:
        ap.error("--repeat must be >= 5 (targets are judged on the best of at least 5 runs)")

    load0 = system.loadavg()
    busy = system.BusyMonitor()
    w, h = args.size
    path = scene.cached_scene(CACHE, w, h)
    res, bw = measure(args, path)
    print("peak memory (child processes)")
    mem = peak_memory(path)
    for name, m in mem.items():
        print(f"  {name}: {json.dumps(m)}")
    start = {}
    if not args.skip_startup:
        print("start-up and rawcv process (subprocesses)")
        samples = [ROOT / "sample_data"]
        if SAMPLES.is_dir():
            samples.insert(0, SAMPLES)
        jobs_folder = scene.cached_copies(CACHE, args.jobs_size[0], args.jobs_size[1], 12)
        start = startup(args.repeat, jobs_folder, samples)
        print("  " + json.dumps(start))
    table_check = None
    if args.check_table:
        print("exhaustive check of the fused level table (2^32 float32 values)")
        table_check = check_level_table()
        print(f"  {table_check[0]} mismatches ({table_check[1]:.0f} s)")
        res.checks.append(("fused path's 8-bit sRGB level table == tone._lookup_level on all 2^32 float32 bit "
                           f"patterns ({table_check[0]} mismatches)", table_check[0] == 0))
    other = busy.other_cores()
    load1 = system.loadavg()
    env = environment(argv)

    print()
    print("ratios")
    for text in ratio_lines(res):
        print(f"  {text}")
    print("targets")
    for t in targets(res, mem):
        print(f"  [{'met' if t.met else 'NOT MET'}] {t.what}: {t.measured:.2f}{t.unit} "
              f"(goal {'>=' if t.higher_is_better else '<='} {t.goal:g}{t.unit}); {t.detail}")
    print(f"  checks: {', '.join(('OK' if ok else 'FAILED') for _, ok in res.checks)}")
    print(f"  other processes used {other:.2f} cores on average during the run (load {load0} -> {load1})")
    if start:
        assert not start["torch_after_import"], "import rawcv imported torch"
        assert not start["torch_after_help"], "rawcv --help imported torch"
        print(f"  import rawcv {start['import_s'] * 1e3:.0f} ms, rawcv --help {start['help_s'] * 1e3:.0f} ms; "
              "asserted: 'torch' not in sys.modules after either")
        for run in start["process"]:
            print(f"  {run['cmd']}: cold {run['cold_s']:.1f} s, warm {run['warm_s']:.2f} s")
        for n, j in start["jobs"].items():
            print(f"  --jobs {n}: {j.get('files_per_s', float('nan')):.2f} files/s")
    if args.write:
        if not start:
            ap.error("--write needs the start-up part (drop --skip-startup)")
        text = render(args, res, mem, bw, start, env, other, (load0, load1), path)
        write_report(args.write, text)
        print(f"wrote {args.write}")
    return 0 if all(ok for _, ok in res.checks) else 1


if __name__ == "__main__":
    sys.exit(main())
