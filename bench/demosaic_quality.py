"""Demosaic quality: CPSNR and speed of rawcv's demosaic methods against OpenCV, colour-demosaicing
and LibRaw (through rawpy), side by side in one process, on the same mosaics.

Run from the repository root::

    python -m bench.demosaic_quality [--images DIR] [--write BENCHMARKS.md] [--repeat N]

Protocol (the usual one for demosaicing on 8-bit test photographs): each image, an 8-bit sRGB
photograph taken as float in [0, 1] (no linearisation), cropped to even size, is sampled through an
RGGB CFA (``rawcv.isp.mosaic_rgb``) and demosaiced by every method; CPSNR = 10 log10(1 / MSE), the
MSE over all three channels, with a 10-pixel border left out and the result clipped to [0, 1] before
the error. A perfect reconstruction has CPSNR = inf (no cap). The images are the colour photographs
``skimage.data`` holds locally, plus every 8-bit PNG / JPEG in ``--images DIR``.

Speed: MP/s of mosaic on a 24 MP (6000 x 4000) mosaic tiled from one image, best of ``--repeat``
runs after a warm-up (all fast methods run once per round); colour-demosaicing Menon2007 and LibRaw
are timed once. ``--write FILE`` puts the report between the markers below in FILE, replacing an
earlier section or appending one (``bench/isp_bench.py`` carries the section over when it rewrites
the file).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from . import system
from .isp_bench import frame_size

START = "<!-- demosaic_quality:start -->"
END = "<!-- demosaic_quality:end -->"
CFA = "RGGB"
BORDER = 10
# the colour photographs skimage ships: (column name, skimage.data loader, files it reads, item)
SKIMAGE_PHOTOS = (("astronaut", "astronaut", ("astronaut.png",), None),
                  ("coffee", "coffee", ("coffee.png",), None),
                  ("chelsea", "chelsea", ("chelsea.png",), None),
                  ("rocket", "rocket", ("rocket.jpg",), None),
                  ("hubble", "hubble_deep_field", ("hubble_deep_field.jpg",), None),
                  ("ihc", "immunohistochemistry", ("ihc.png",), None),
                  ("retina", "retina", ("retina.jpg",), None),
                  ("motorcycle", "stereo_motorcycle",
                   ("motorcycle_left.png", "motorcycle_right.png", "motorcycle_disp.npz"), 0))
SKIMAGE_LEFT_OUT = "skimage.data colorwheel (synthetic) and logo (RGBA graphic): not photographs"
SPEED_IMAGE = "astronaut"
FLAT_LEVELS = ((128, 128, 128), (230, 230, 230), (204, 128, 51))   # /255; 230: above LibRaw's 0.75 max-adjust


# --- the measure -----------------------------------------------------------------------------------

def cpsnr(reference, estimate, border: int = BORDER) -> float:
    """Colour PSNR in dB of ``estimate`` against ``reference`` (H x W x 3, [0, 1] scale).

    ``estimate`` is clipped to [0, 1]; ``border`` pixels on every side are left out; the MSE is
    over all three channels. A perfect reconstruction gives ``inf`` (not capped).

    >>> ref = np.full((24, 24, 3), 0.25)
    >>> cpsnr(ref, ref + 0.1)          # MSE 0.01 -> 20 dB
    20.0
    >>> cpsnr(ref, ref)
    inf
    """
    ref = np.asarray(reference, np.float64)
    est = np.clip(np.asarray(estimate, np.float64), 0.0, 1.0)
    if border:
        ref, est = ref[border:-border, border:-border], est[border:-border, border:-border]
    mse = float(np.mean((est - ref) ** 2))
    return math.inf if mse == 0 else round(10 * math.log10(1 / mse), 12)


def mosaic_of(image: np.ndarray) -> np.ndarray:
    """The float32 RGGB mosaic of an H x W x 3 image in [0, 1]."""
    from rawcv import isp

    return isp.mosaic_rgb(np.ascontiguousarray(image, np.float32), cfa=CFA)


def demosaic_cpsnr(method: "Method", image: np.ndarray, border: int = BORDER) -> float:
    """CPSNR of ``method`` on ``image`` (float in [0, 1], even size) under the protocol above."""
    return cpsnr(image, method.run(mosaic_of(image)), border)


# --- the methods -----------------------------------------------------------------------------------

@dataclass
class Method:
    """``prepare(mosaic) -> state`` (untimed: conversions, writing a DNG), ``call(state) -> out``
    (timed), ``to_float(out) -> H x W x 3 in [0, 1] scale``, ``close(state)`` (optional)."""

    name: str
    family: str
    prepare: Callable
    call: Callable
    to_float: Callable = lambda out: out
    close: Optional[Callable] = None
    slow: bool = False                   # timed once (no warm-up, no repeats)

    def run(self, mosaic: np.ndarray) -> np.ndarray:
        state = self.prepare(mosaic)
        try:
            return self.to_float(self.call(state))
        finally:
            if self.close:
                self.close(state)


def _u16(mosaic):
    return np.round(np.clip(mosaic, 0, 1) * 65535).astype(np.uint16)


def _u8(mosaic):
    return np.round(np.clip(mosaic, 0, 1) * 255).astype(np.uint8)


def rawcv_methods() -> list:
    from rawcv.isp.demosaic import DEMOSAIC_METHODS

    # half-size output is not a reconstruction of the full image: it has no CPSNR to compare
    return [Method(f"rawcv {key}", "rawcv", lambda m: m, (lambda fn: lambda m: fn(m, cfa=CFA))(dm.function))
            for key, dm in DEMOSAIC_METHODS.items() if dm.shrink == 1]


def opencv_methods(skipped: list) -> list:
    try:
        import cv2

        from .peers import OPENCV_BAYER, opencv_bayer_code
    except Exception as exc:  # pragma: no cover - optional dependency
        skipped.append(f"OpenCV: not importable ({type(exc).__name__}: {exc})")
        return []
    # the VNG / EA codes follow the plain code's name (OpenCV 5: the literal top-left 2 x 2 pattern)
    codes = {"": opencv_bayer_code(CFA), "_VNG": getattr(cv2, OPENCV_BAYER[CFA] + "_VNG"),
             "_EA": getattr(cv2, OPENCV_BAYER[CFA] + "_EA")}
    to16 = lambda out: out.astype(np.float32) / np.float32(65535)   # noqa: E731
    to8 = lambda out: out.astype(np.float32) / np.float32(255)      # noqa: E731
    call = lambda code: lambda m: cv2.cvtColor(m, code)             # noqa: E731
    # OpenCV's VNG takes only 8-bit: lossless here, the images are 8-bit
    return [Method("OpenCV bilinear", "OpenCV", _u16, call(codes[""]), to16),
            Method("OpenCV VNG", "OpenCV", _u8, call(codes["_VNG"]), to8),
            Method("OpenCV EA", "OpenCV", _u16, call(codes["_EA"]), to16)]


def colour_methods(skipped: list) -> list:
    try:
        import colour_demosaicing as cd
    except Exception as exc:  # pragma: no cover - optional dependency
        skipped.append(f"colour-demosaicing: not importable ({type(exc).__name__}: {exc})")
        return []
    out = []
    for short in ("bilinear", "Malvar2004", "Menon2007"):
        fn = getattr(cd, f"demosaicing_CFA_Bayer_{short}")
        out.append(Method(f"colour-demosaicing {short}", "colour-demosaicing", lambda m: m,
                          (lambda f: lambda m: f(m, CFA))(fn), slow=short == "Menon2007"))
    return out


class LibRawDNG:
    """The mosaic written as a 16-bit DNG (black 0, white 65535, unit white balance, identity colour
    matrix), opened and unpacked by rawpy: the state of a LibRaw method."""

    PARAMS = dict(gamma=(1, 1), no_auto_bright=True, use_camera_wb=False,
                  user_wb=[1, 1, 1, 1], output_bps=16, user_flip=0,
                  adjust_maximum_thr=0.0)   # else LibRaw rescales a mosaic whose max is > 0.75 of white

    def __init__(self, mosaic, folder):
        import rawpy

        from rawcv import write_dng

        fd, self.path = tempfile.mkstemp(suffix=".dng", dir=folder)
        os.close(fd)
        write_dng(self.path, _u16(mosaic), cfa=CFA, black=0, white=65535, as_shot_wb=(1.0, 1.0, 1.0),
                  color_matrix=np.eye(3), overwrite=True)
        self.raw = rawpy.imread(self.path)
        self.raw.unpack()
        s = self.raw.sizes
        self.offset = (s.top_margin, s.left_margin)     # where LibRaw's image sits in the mosaic

    def process(self, algorithm):
        import rawpy

        p = dict(self.PARAMS, output_color=rawpy.ColorSpace.raw)
        return self.raw.postprocess(demosaic_algorithm=algorithm, **p)

    def close(self):
        self.raw.close()
        os.unlink(self.path)


def libraw_methods(folder: str, skipped: list) -> list:
    try:
        import rawpy
    except Exception as exc:  # pragma: no cover - optional dependency
        skipped.append(f"LibRaw: rawpy not importable ({type(exc).__name__}: {exc})")
        return []
    out, unsupported = [], [a.name for a in rawpy.DemosaicAlgorithm if not a.isSupported]
    if unsupported:
        skipped.append(f"LibRaw {', '.join(unsupported)}: not in this LibRaw build (the GPL2/GPL3 demosaic packs)")
    for alg in (a for a in rawpy.DemosaicAlgorithm if a.isSupported):
        out.append(Method(f"LibRaw {alg.name}", "LibRaw", lambda m: LibRawDNG(m, folder),
                          (lambda a: lambda s: (s, s.process(a)))(alg), _libraw_float,
                          lambda s: s.close(), slow=True))
    return out


def _libraw_float(out):
    state, rgb = out
    rgb = rgb.astype(np.float32) / np.float32(65535)
    top, left = state.offset
    if top or left:                    # not seen with rawcv's DNGs; kept aligned if LibRaw crops
        full = np.zeros(state.raw.raw_image_visible.shape + (3,), np.float32)
        full[top:top + rgb.shape[0], left:left + rgb.shape[1]] = rgb
        rgb = full
    return rgb


def all_methods(folder: str, skipped: list) -> list:
    return rawcv_methods() + opencv_methods(skipped) + colour_methods(skipped) + libraw_methods(folder, skipped)


# --- the images ------------------------------------------------------------------------------------

def _even(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return np.ascontiguousarray(img[:h - h % 2, :w - w % 2, :3], np.float32) / np.float32(255)


def load_images(folder=None) -> tuple:
    """``([(name, H x W x 3 float32 in [0, 1], even size)], [skipped reasons])``."""
    import skimage.data

    images, skipped = [], [SKIMAGE_LEFT_OUT]
    for name, loader, files, item in SKIMAGE_PHOTOS:
        missing = [f for f in files if not os.path.exists(os.path.join(skimage.data.data_dir, f))]
        if missing or not hasattr(skimage.data, loader):
            skipped.append(f"skimage.data.{loader}: not shipped with this scikit-image ({', '.join(missing)})")
            continue
        img = getattr(skimage.data, loader)()
        img = img[item] if item is not None else img
        images.append((name, _even(img)))
    if folder:
        import cv2

        for path in sorted(Path(folder).iterdir()):
            if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
                continue
            img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if img is None or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (3, 4):
                why = "unreadable" if img is None else f"not 8-bit colour ({img.dtype}, shape {img.shape})"
                skipped.append(f"{path}: {why}")
                continue
            if min(img.shape[:2]) < 4 * BORDER:
                skipped.append(f"{path}: smaller than {4 * BORDER} pixels")
                continue
            images.append((path.name, _even(img[..., 2::-1])))          # BGR(A) -> RGB
    return images, skipped


def speed_mosaic(image: np.ndarray, width: int = 6000, height: int = 4000) -> np.ndarray:
    """A ``height x width`` RGGB mosaic tiling ``image`` (even size, so the CFA phase is kept)."""
    h, w = image.shape[:2]
    m = mosaic_of(image)
    return np.ascontiguousarray(np.tile(m, (-(-height // h), -(-width // w)))[:height, :width])


# --- measuring -------------------------------------------------------------------------------------

def flat_checks(methods: list) -> dict:
    """Each method on flat mosaics (two greys, one colour): the interior must come back flat at the
    same level. ``{name: error text or ''}``."""
    out = {}
    for m in methods:
        errs = []
        for level in FLAT_LEVELS:
            rgb = np.empty((64, 96, 3), np.float32)
            rgb[...] = np.asarray(level, np.float32) / 255
            res = m.run(mosaic_of(rgb))
            if res.shape != rgb.shape:
                errs.append(f"shape {res.shape} for {rgb.shape}")
                continue
            err = float(np.abs(res[8:-8, 8:-8] - rgb[8:-8, 8:-8]).max())
            if err > 1e-3:
                errs.append(f"level {level}/255 off by {err:.4f}")
        out[m.name] = "; ".join(errs)
    return out


def measure_quality(methods: list, images: list) -> dict:
    """``{method name: [CPSNR per image]}``, every method on the same mosaics."""
    res = {m.name: [] for m in methods}
    for name, img in images:
        mosaic = mosaic_of(img)
        for m in methods:
            res[m.name].append(cpsnr(img, m.run(mosaic)))
        print(f"  {name:<12s} {img.shape[1]} x {img.shape[0]}: "
              + ", ".join(f"{m.name} {res[m.name][-1]:.2f}" for m in methods if m.family == "rawcv"), flush=True)
    return res


def measure_speed(methods: list, mosaic: np.ndarray, repeat: int) -> dict:
    """``{method name: (best seconds, runs)}``: the fast methods in rounds (warm-up, then ``repeat``
    rounds in which each runs once), the slow ones once."""
    fast = [(m, m.prepare(mosaic)) for m in methods if not m.slow]
    runs = {m.name: [] for m, _ in fast}
    for m, state in fast:
        m.call(state)
    for _ in range(repeat):
        for m, state in fast:
            t0 = time.perf_counter()
            m.call(state)
            runs[m.name].append(time.perf_counter() - t0)
    out = {m.name: (min(runs[m.name]), repeat) for m, _ in fast}
    for m, state in fast:
        if m.close:
            m.close(state)
    del fast
    for m in methods:
        if m.slow:
            state = m.prepare(mosaic)
            try:
                t0 = time.perf_counter()
                m.call(state)
                out[m.name] = (time.perf_counter() - t0, 1)
            finally:
                if m.close:
                    m.close(state)
        print(f"  {m.name:<32s} {out[m.name][0] * 1e3:9.0f} ms  {mosaic.size / out[m.name][0] / 1e6:8.1f} MP/s"
              f"  ({out[m.name][1]} run{'s' if out[m.name][1] > 1 else ''})", flush=True)
    return out


# --- targets ---------------------------------------------------------------------------------------

@dataclass
class Target:
    what: str
    met: Optional[bool]               # None: not measured
    detail: str

    def verdict(self) -> str:
        return "not measured" if self.met is None else ("met" if self.met else "NOT MET")


def targets(mean: dict, mps: dict) -> list:
    """The issue's targets, from the run's mean CPSNR (dB) and speed (MP/s) per method."""
    out = []
    have = lambda *names: all(n in mean and n in mps for n in names)   # noqa: E731
    mal, bil = "rawcv malvar", "rawcv bilinear"
    cdm, men = "colour-demosaicing Malvar2004", "colour-demosaicing Menon2007"
    what = "rawcv malvar within 0.1 dB of colour-demosaicing Malvar2004"
    d = round(mean[mal] - mean[cdm], 6) + 0.0 if have(mal, cdm) else None
    out.append(Target(what, None, "a method is missing") if d is None else
               Target(what, abs(d) <= 0.1, f"{mean[mal]:.3f} vs {mean[cdm]:.3f} dB: {d:+.3f} dB"))
    what = "rawcv malvar at least half the speed of rawcv bilinear"
    r = mps[mal] / mps[bil] if have(mal, bil) else None
    out.append(Target(what, None, "a method is missing") if r is None else
               Target(what, r >= 0.5, f"{mps[mal]:.0f} vs {mps[bil]:.0f} MP/s: {r:.2f}x"
                      + ("" if r >= 0.5 else f", short by {0.5 / r:.2f}x")))
    rawcv = [n for n in mean if n.startswith("rawcv ")]
    best = max(rawcv, key=lambda n: mean[n]) if rawcv else None
    if best and have(best, men):
        d = mean[best] - mean[men]
        out.append(Target("best rawcv method at least 0.5 dB above Menon2007", d >= 0.5,
                          f"{best} {mean[best]:.2f} vs {mean[men]:.2f} dB: {d:+.2f} dB"
                          + ("" if d >= 0.5 else f", short by {0.5 - d:.2f} dB")))
        r = mps[best] / mps[men]
        out.append(Target("best rawcv method at least 50x faster than Menon2007", r >= 50,
                          f"{best} {mps[best]:.0f} vs {mps[men]:.1f} MP/s: {r:.0f}x"
                          + ("" if r >= 50 else f", short by {50 / r:.2f}x")))
    else:
        out += [Target("best rawcv method at least 0.5 dB above Menon2007", None, "a method is missing"),
                Target("best rawcv method at least 50x faster than Menon2007", None, "a method is missing")]
    libraw = [n for n in mean if n.startswith("LibRaw ")]
    if best and libraw:
        top = max(libraw, key=lambda n: mean[n])
        d = mean[best] - mean[top]
        worse = [n for n in libraw if mean[n] >= mean[best]]
        out.append(Target("best rawcv method better than every LibRaw method", not worse,
                          f"{best} {mean[best]:.2f} dB vs best LibRaw ({top.split()[1]}) {mean[top]:.2f} dB: "
                          f"{d:+.2f} dB"
                          + (f"; behind {len(worse)} of {len(libraw)} ({', '.join(n.split()[1] for n in worse)})"
                             if worse else "")))
    else:
        out.append(Target("best rawcv method better than every LibRaw method", None, "no LibRaw method measured"))
    return out


# --- the report ------------------------------------------------------------------------------------

@dataclass
class Report:
    methods: list
    images: list                       # [(name, shape)]
    quality: dict                      # name -> [CPSNR per image]
    speed: dict                        # name -> (seconds, runs)
    pixels: int
    checks: dict
    skipped: list
    env: dict = field(default_factory=dict)
    busy: float = float("nan")

    def mean(self) -> dict:
        return {n: float(np.mean(v)) for n, v in self.quality.items()}

    def mps(self) -> dict:
        return {n: self.pixels / s / 1e6 for n, (s, _) in self.speed.items()}

    def rows(self) -> list:
        """[(method, mean, [per image], MP/s, runs, check)] in the order run."""
        mean, mps = self.mean(), self.mps()
        return [(m.name, mean[m.name], self.quality[m.name], mps.get(m.name, float("nan")),
                 self.speed.get(m.name, (0, 0))[1], self.checks.get(m.name, "")) for m in self.methods]


def text_table(rep: Report) -> list:
    names = [n for n, _ in rep.images]
    head = f"{'method':<32s} {'mean':>6s} " + " ".join(f"{n[:10]:>10s}" for n in names) + f" {'MP/s':>8s} runs"
    lines = [head, "-" * len(head)]
    for name, mean, per, mps, runs, check in rep.rows():
        lines.append(f"{name:<32s} {mean:6.2f} " + " ".join(f"{v:10.2f}" for v in per)
                     + f" {mps:8.1f} {runs:4d}" + (f"  CHECK FAILED: {check}" if check else ""))
    return lines


def render_section(rep: Report) -> str:
    """The Markdown section, markers included."""
    env = rep.env
    lines = [START, "## Demosaic quality", ""]
    add = lines.append
    add(f"Written by `{env.get('command', 'python -m bench.demosaic_quality')}` on {env.get('date', '?')}. "
        "Every number below comes from that one run.")
    add("")
    add("| machine | |")
    add("|---|---|")
    for k, v in {**env.get("machine", {}), **env.get("versions", {})}.items():
        add(f"| {k} | {v} |")
    add(f"| CPU used by other processes during the run | {rep.busy:.2f} cores on average |")
    add("")
    if rep.busy > 0.2:
        add(f"**Note:** other processes used {rep.busy:.2f} cores on average while this ran, so the multi-threaded "
            "speeds (rawcv, OpenCV, LibRaw) are lower than on an idle machine.")
        add("")
    add(f"**Protocol**: each image, the 8-bit sRGB photograph as float in [0, 1] (no linearisation), cropped to "
        f"even size, sampled through an {CFA} CFA (`rawcv.isp.mosaic_rgb`) and demosaiced by every method from "
        f"the same mosaic; CPSNR = 10 log10(1 / MSE), MSE over all three channels, a {BORDER}-pixel border left "
        "out, results clipped to [0, 1] before the error. Images: "
        + ", ".join(f"{n} ({s[1]} x {s[0]})" for n, s in rep.images) + ". "
        "OpenCV bilinear and EA run on the mosaic as uint16 (x 65535), VNG on uint8 (x 255; OpenCV's VNG takes "
        "only 8-bit), both exact for 8-bit images; results are scaled back. colour-demosaicing gets the float "
        "mosaic. LibRaw (rawpy) reads the mosaic written as a 16-bit DNG (black 0, white 65535, unit white "
        "balance, identity colour matrix) and runs `postprocess(output_color=raw, gamma=(1, 1), "
        "no_auto_bright=True, use_camera_wb=False, user_wb=[1, 1, 1, 1], output_bps=16, user_flip=0, "
        "adjust_maximum_thr=0)`: without the last, LibRaw rescales any mosaic whose maximum is above 0.75 of "
        "white. Every method is checked first on flat grey (128/255, 230/255) and flat colour mosaics: the "
        "interior must come back at the same level and size"
        + (" (all did: LibRaw returns the mosaic's own scale, uncropped and unflipped)." if not any(rep.checks.values())
           else "; failures are marked in the table."))
    add("")
    add(f"**Speed**: MP/s of mosaic on a {rep.pixels / 1e6:.0f} MP mosaic tiled from `{SPEED_IMAGE}`. "
        "runs = how many timed runs the number is the best of: the fast methods after a warm-up, in rounds "
        "(every method once per round); colour-demosaicing Menon2007 and LibRaw once, no warm-up. rawcv and "
        "colour-demosaicing take the float32 mosaic (rawcv writes float32 RGB, colour-demosaicing float64), "
        "OpenCV its uint16 / uint8 copy (the conversions not timed); LibRaw's number is `postprocess` alone "
        "(its demosaic plus its scaling and output passes; reading the DNG not timed). Multi-threaded: rawcv "
        "(Numba), OpenCV, LibRaw (OpenMP); colour-demosaicing is NumPy/SciPy on one thread.")
    add("")
    add("| method | mean CPSNR (dB) | " + " | ".join(n for n, _ in rep.images) + " | MP/s | runs |")
    add("|---|---:|" + "---:|" * len(rep.images) + "---:|---:|")
    for name, mean, per, mps, runs, check in rep.rows():
        add(f"| {name}{' (check FAILED: ' + check + ')' if check else ''} | {mean:.2f} | "
            + " | ".join(f"{v:.2f}" for v in per) + f" | {mps:.1f} | {runs} |")
    add("")
    if rep.skipped:
        add("Skipped: " + "; ".join(rep.skipped) + ".")
        add("")
    add("**Targets**")
    add("")
    add("| target | verdict | measured |")
    add("|---|---|---|")
    for t in targets(rep.mean(), rep.mps()):
        add(f"| {t.what} | {t.verdict()} | {t.detail} |")
    add("")
    add(END)
    return "\n".join(lines)


def extract_section(text: str) -> Optional[str]:
    """The demosaic-quality section of ``text`` (markers included), or None."""
    i = text.find(START)
    j = text.find(END, i + len(START)) if i >= 0 else -1
    return text[i:j + len(END)] if i >= 0 and j >= 0 else None


def replace_section(text: str, section: str) -> str:
    """``text`` with its demosaic-quality section replaced by ``section``, or ``section`` appended."""
    old = extract_section(text)
    if old is not None:
        return text.replace(old, section, 1)
    if START in text:
        raise ValueError(f"{START} without {END}")
    return (text.rstrip("\n") + "\n\n" if text.strip() else "") + section + "\n"


def write_section(path, section: str) -> None:
    path = Path(path)
    path.write_text(replace_section(path.read_text() if path.exists() else "", section))


# --- main ------------------------------------------------------------------------------------------

def _size(text: str):
    return frame_size(text, minimum=64)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m bench.demosaic_quality", description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", metavar="DIR", help="also every 8-bit PNG / JPEG in DIR")
    ap.add_argument("--write", metavar="FILE", help="write the section into FILE, e.g. BENCHMARKS.md")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of the fast methods, best reported (default 3)")
    ap.add_argument("--size", type=_size, default=(6000, 4000), metavar="WxH",
                    help="speed mosaic size (default 6000x4000, 24 MP)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")

    busy = system.BusyMonitor()
    images, skipped = load_images(args.images)
    if not images:
        ap.error("no images")
    with tempfile.TemporaryDirectory(prefix="rawcv-demosaic-") as folder:
        methods = all_methods(folder, skipped)
        for why in skipped:
            print(f"skipped: {why}")
        print(f"{len(methods)} methods, {len(images)} images; flat-field checks")
        checks = flat_checks(methods)
        for name, err in checks.items():
            print(f"  {'OK' if not err else 'FAILED'}: {name}{': ' + err if err else ''}")
        print(f"CPSNR (dB; RGGB, {BORDER}-pixel border left out, results clipped to [0, 1] before the error)")
        quality = measure_quality(methods, images)
        w, h = args.size
        speed_img = dict(images).get(SPEED_IMAGE, images[0][1])
        print(f"speed on a {w} x {h} mosaic ({w * h / 1e6:.0f} MP): warm-up + best of {args.repeat} "
              "(Menon2007 and LibRaw: one run)")
        mosaic = speed_mosaic(speed_img, w, h)
        speed = measure_speed(methods, mosaic, args.repeat)
        del mosaic
    env = {"machine": system.machine(), "versions": system.versions(),
           "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
           "command": "python -m bench.demosaic_quality " + " ".join(shlex.quote(a) for a in argv)}
    rep = Report(methods, [(n, img.shape) for n, img in images], quality, speed, w * h, checks, skipped,
                 env, busy.other_cores())
    print()
    print("mean CPSNR over the images, per image, and MP/s (runs = timed runs, best reported)")
    for line in text_table(rep):
        print("  " + line)
    print("targets")
    for t in targets(rep.mean(), rep.mps()):
        print(f"  [{t.verdict()}] {t.what}: {t.detail}")
    print(f"  other processes used {rep.busy:.2f} cores on average during the run")
    if args.write:
        write_section(args.write, render_section(rep))
        print(f"wrote the demosaic_quality section of {args.write}")
    return 0 if not any(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
