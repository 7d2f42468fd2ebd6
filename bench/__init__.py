"""Benchmarks of rawcv's ISP against rawpy/LibRaw, OpenCV + NumPy, colour-demosaicing and kornia.

Run from the repository root: ``python -m bench.isp_bench [--size 6000x4000] [--repeat 5]
[--write BENCHMARKS.md]``. Inputs are generated and cached under ``.bench/`` (git-ignored).
"""
