"""Benchmarks of rawcv's ISP against rawpy/LibRaw, OpenCV + NumPy, colour-demosaicing and kornia.

Run from the repository root: ``python -m bench.isp_bench [--size 6000x4000] [--repeat 5]
[--write BENCHMARKS.md]`` (speed), ``python -m bench.demosaic_quality [--images DIR] [--write
BENCHMARKS.md]`` (demosaic CPSNR and speed against OpenCV, colour-demosaicing and LibRaw; its own
section of BENCHMARKS.md, which the speed benchmark keeps). Inputs are generated and cached under
``.bench/`` (git-ignored).
"""
