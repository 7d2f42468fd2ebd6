"""A synthetic lens and sensor with the flaws DNG opcode lists describe, and those lists.

The camera (:func:`rawcv.synth.camera.capture`) sees the scene through the lens: its distortion
and lateral chromatic aberration (undone by ``WarpRectilinear`` in list 3), its colour shading per
CFA position (``GainMap`` in list 2, four maps with pitch 2, as phones write them) and its radial
falloff (``FixVignetteRadial`` in list 2); the sensor has stuck pixels (``FixBadPixelsList`` in
list 1). Each flaw is the exact inverse of the correction the ISP's opcode stages apply, so a
pipeline reading the DNG undoes what was done (to the resampling of the warp).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dng_opcodes as dng
from ..isp.opcodes import apply_gain_map, warp_source

SHADING_POINTS = (9, 13)      # gain map rows and columns over the frame


@dataclass
class LensFlaws:
    """What the lens and sensor do: ``shading`` (rows x columns x 4 correction gains, one plane per
    CFA position in raster order), ``distortion`` (``kr0, kr1, kr2, kr3, kt0, kt1`` per R, G, B
    plane: the correction's coefficients), ``center`` (x, y fractions) and ``bad_pixels``
    ((row, col, value as a fraction of white), ...)."""

    shading: np.ndarray
    distortion: tuple
    center: tuple = (0.5, 0.5)
    bad_pixels: tuple = ()

    def to_dict(self) -> dict:
        return {"shading": np.asarray(self.shading).tolist(), "distortion": [list(k) for k in self.distortion],
                "center": list(self.center), "bad_pixels": [list(p) for p in self.bad_pixels]}

    @classmethod
    def from_dict(cls, d: dict) -> "LensFlaws":
        return cls(np.asarray(d["shading"], dtype=np.float32), tuple(tuple(k) for k in d["distortion"]),
                   tuple(d["center"]), tuple(tuple(p) for p in d["bad_pixels"]))


def random_lens(rng, shape, *, bad_pixels: int = 8) -> LensFlaws:
    """Plausible flaws for a frame of ``shape``: shading up to about 1.6x in the corners with a
    colour tilt, barrel or pincushion distortion of a few percent, red and blue magnified apart by
    up to 0.2 %, and ``bad_pixels`` stuck pixels (half hot, half dead) away from each other.

    Examples
    --------
    >>> lens = random_lens(np.random.default_rng(0), (64, 96))
    >>> lens.shading.shape, len(lens.distortion), len(lens.bad_pixels)
    ((9, 13, 4), 3, 8)
    """
    rng = np.random.default_rng(rng)
    rows, cols = SHADING_POINTS
    v, u = np.meshgrid(np.linspace(-1, 1, rows), np.linspace(-1, 1, cols), indexing="ij")
    r2 = (u * u + v * v) / 2.0
    falloff = rng.uniform(0.2, 0.5)
    tilt = rng.uniform(-0.08, 0.08, size=4)
    shading = np.stack([1.0 + falloff * r2 * (1.0 + tilt[p]) + 0.03 * tilt[p] * u for p in range(4)], -1)
    k1 = rng.uniform(-0.06, 0.04)
    ca = rng.uniform(-0.002, 0.002)
    distortion = tuple((1.0 + s, k1, 0.0, 0.0, 0.0, 0.0) for s in (ca, 0.0, -ca))
    h, w = shape[:2]
    picked: list = []
    while len(picked) < bad_pixels:
        y, x = int(rng.integers(4, h - 4)), int(rng.integers(4, w - 4))
        if all(abs(y - py) > 4 or abs(x - px) > 4 for py, px, _ in picked):
            picked.append((y, x, 1.0 if len(picked) % 2 == 0 else 0.0))
    return LensFlaws(shading.astype(np.float32), distortion, (0.5, 0.5), tuple(picked))


def shading_gain(flaws: LensFlaws, shape) -> np.ndarray:
    """The H x W correction gain of the shading maps on a mosaic of ``shape`` (the GainMap stages'
    own values, so dividing by it is what they undo)."""
    mosaic = np.ones(shape[:2], np.float32)
    for dy in range(2):
        for dx in range(2):
            plane = flaws.shading[..., 2 * dy + dx:2 * dy + dx + 1]
            mosaic = apply_gain_map(mosaic, gains=plane, spacing=_spacing(), origin=(0.0, 0.0),
                                    area=[dy, dx, shape[0], shape[1], 0, 1, 2, 2])
    return mosaic


def _spacing() -> tuple:
    rows, cols = SHADING_POINTS
    return (1.0 / (rows - 1), 1.0 / (cols - 1))


def distort(camera_rgb: np.ndarray, flaws: LensFlaws) -> np.ndarray:
    """The image the lens forms: at each output pixel ``y``, the scene at the point ``x`` the
    correction maps to ``y`` (found by fixed-point iteration of the correction's mapping), sampled
    with cubic splines."""
    from scipy import ndimage

    h, w, _ = camera_rgb.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ty, tx = yy.ravel(), xx.ravel()
    out = np.empty_like(camera_rgb)
    for p in range(3):
        py, px = ty.copy(), tx.copy()
        for _ in range(30):
            sy, sx = warp_source((h, w), py, px, coefficients=flaws.distortion[p], center=flaws.center)
            py, px = py + (ty - sy), px + (tx - sx)
        out[..., p] = ndimage.map_coordinates(camera_rgb[..., p].astype(np.float64), [py, px], order=3,
                                              mode="nearest").reshape(h, w)
    return out


def opcode_lists(flaws: LensFlaws, shape, *, vignetting=(0.0, 0.0, 0.0)) -> dict:
    """``{list number: bytes}`` that undo ``flaws`` (and the camera's radial ``vignetting`` k1..k3)
    for a frame of ``shape``."""
    h, w = shape[:2]
    rows, cols = SHADING_POINTS
    maps = [dng.GainMap(dng.Area(dy, dx, h, w, 0, 1, 2, 2), (rows, cols), _spacing(), (0.0, 0.0), 1,
                        tuple(float(g) for g in flaws.shading[..., 2 * dy + dx].ravel()))
            for dy in range(2) for dx in range(2)]
    list2 = list(maps)
    if any(vignetting):
        list2.append(dng.FixVignetteRadial(tuple(vignetting) + (0.0,) * (5 - len(vignetting)), (0.5, 0.5)))
    lists = {2: dng.encode_opcode_list(list2),
             3: dng.encode_opcode_list([dng.WarpRectilinear(tuple(flaws.distortion), tuple(flaws.center))])}
    if flaws.bad_pixels:
        points = tuple((int(y), int(x)) for y, x, _ in flaws.bad_pixels)
        lists[1] = dng.encode_opcode_list([dng.FixBadPixelsList(points)])
    return lists


__all__ = ["LensFlaws", "random_lens", "shading_gain", "distort", "opcode_lists"]
