"""The torch twins of the demosaic and highlights stages on a GPU: equal to Numba, and how fast.

Run from the repository root on a machine with CUDA::

    python -m bench.torch_isp_gpu [--write FILE]

Checks, each against the Numba implementation on the same input (printed as ``ok``/``MISMATCH``
with the largest difference): every demosaic method's twin for the four Bayer layouts and odd
sizes, a batch mixing layouts, ``reconstruct_highlights``, and the ``default`` and ``core``
pipelines (with each demosaic method and each highlights method) through the torch backend, to
the 8-bit level. Speed: each twin on a 24 MP float32 mosaic already on the device, and each
pipeline from a 24 MP uint16 mosaic in host memory to 8-bit RGB back in host memory, best of
``--repeat`` after a warm-up, with the Numba time on this machine's CPU cores beside it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time

import numpy as np


def _best(fn, repeat: int, sync=lambda: None) -> float:
    fn()
    sync()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    import numba
    import torch

    from rawcv.isp.demosaic import DEMOSAIC_METHODS
    from rawcv.isp.highlights import reconstruct_highlights
    from rawcv.meta import BAYER_PATTERNS, CameraMeta, RawImage
    from rawcv.pipeline import load_pipeline
    from rawcv.torch.backend import run_pipeline_torch
    from rawcv.torch.isp.demosaic import DEMOSAIC_TWINS
    from rawcv.torch.isp.highlights import reconstruct_highlights as torch_reconstruct

    ap = argparse.ArgumentParser(prog="python -m bench.torch_isp_gpu", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--size", default="6000x4000", help="WxH of the speed mosaic")
    ap.add_argument("--write", metavar="FILE", help="write the report (Markdown) to FILE")
    ap.add_argument("--device", default="cuda", help="cuda (the point), or cpu for a dry run of the script")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return 1
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "CPU (dry run)"
    lines = [f"# torch twins on {name}", "",
             f"Written by `python -m bench.torch_isp_gpu` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
             f"torch {torch.__version__}, numba {numba.__version__} with {numba.get_num_threads()} threads on "
             f"{os.cpu_count()} CPU cores.", "", "## Equality with Numba", "", "| check | result |", "|---|---|"]
    failures = 0

    def check(what, a, b):
        nonlocal failures
        a, b = np.asarray(a), np.asarray(b)
        same = a.shape == b.shape and np.array_equal(a, b)
        diff = "" if same or a.shape != b.shape else f", max difference {np.abs(a.astype(np.float64) - b).max():.3g}"
        failures += not same
        lines.append(f"| {what} | {'equal' if same else 'MISMATCH' + diff} |")
        print(f"  {what}: {'equal' if same else 'MISMATCH' + diff}", flush=True)

    rng = np.random.default_rng(0)
    for method, dm in DEMOSAIC_METHODS.items():
        for shape in ((3, 3), (13, 18), (41, 37), (256, 384)):
            mosaics = rng.random((4,) + shape, dtype=np.float32)
            want = np.stack([dm.function(m, cfa=c).transpose(2, 0, 1) for m, c in zip(mosaics, BAYER_PATTERNS)])
            got = DEMOSAIC_TWINS[method](torch.from_numpy(mosaics)[:, None].to(dev), cfa=list(BAYER_PATTERNS))
            check(f"demosaic {method}, 4 layouts in one batch, {shape[0]} x {shape[1]}", got.cpu().numpy(), want)
    for cfa in BAYER_PATTERNS:
        m = rng.random((37, 50), dtype=np.float32) * 1.6            # a third of it above the white point
        check(f"reconstruct_highlights {cfa} 37 x 50", torch_reconstruct(torch.from_numpy(m).to(dev), cfa=cfa)
              .cpu().numpy().reshape(m.shape), reconstruct_highlights(m, cfa=cfa))
    meta = CameraMeta("GRBG", black_level=(600.0, 604.0, 598.0, 602.0), white_level=15520.0,
                      as_shot_wb=(1.95, 1.0, 1.34),
                      xyz_to_cam=((0.902, -0.289, -0.0715), (-0.4535, 1.2436, 0.2348), (-0.0934, 0.1919, 0.7086)))
    raw = RawImage(rng.integers(0, 16000, (123, 171)).astype(np.uint16), meta)
    for name in ("default", "core"):
        for method in DEMOSAIC_METHODS:
            for hl in ("clip", "reconstruct"):
                p = load_pipeline(name).with_params("demosaic", method=method).with_params("highlights", method=hl)
                got = run_pipeline_torch(p, raw, device=dev)[0].permute(1, 2, 0).cpu().numpy()
                check(f"pipeline {name}, demosaic {method}, highlights {hl} (8-bit)", got, p.run(raw).image)

    w, h = (int(v) for v in args.size.split("x"))
    big = rng.random((h, w), dtype=np.float32)
    big_dev = torch.from_numpy(big)[None, None].to(dev)
    lines += ["", f"## Speed ({w} x {h}, best of {args.repeat})", "",
              "| what | torch ms | MP/s | Numba (CPU) ms | MP/s | Numba / torch time |", "|---|---:|---:|---:|---:|---:|"]

    def row(what, t_cuda, t_cpu):
        mp = w * h / 1e6
        lines.append(f"| {what} | {t_cuda * 1e3:.1f} | {mp / t_cuda:.0f} | {t_cpu * 1e3:.1f} | {mp / t_cpu:.0f} | "
                     f"{t_cpu / t_cuda:.1f}x |")
        print(f"  {what}: torch {t_cuda * 1e3:.1f} ms, Numba {t_cpu * 1e3:.1f} ms", flush=True)

    with torch.no_grad():
        for method, dm in DEMOSAIC_METHODS.items():
            t_cuda = _best(lambda: DEMOSAIC_TWINS[method](big_dev, cfa="RGGB"), args.repeat, sync)
            t_cpu = _best(lambda: dm.function(big, cfa="RGGB"), args.repeat)
            row(f"demosaic {method} (float32 mosaic on the device)", t_cuda, t_cpu)
        counts = RawImage(rng.integers(600, 15520, (h, w)).astype(np.uint16), meta)
        for name, method in (("core", "bilinear"), ("default", "malvar"), ("default", "gbtf")):
            p = load_pipeline(name).with_params("demosaic", method=method)
            t_cuda = _best(lambda: run_pipeline_torch(p, counts, device=dev).cpu(), args.repeat, sync)
            t_cpu = _best(lambda: p.run(counts), args.repeat)
            row(f"pipeline {name} with {method} (uint16 in host memory -> uint8 RGB in host memory; "
                "CPU: fused)", t_cuda, t_cpu)
    text = "\n".join(lines) + "\n"
    if args.write:
        with open(args.write, "w") as f:
            f.write(text)
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
