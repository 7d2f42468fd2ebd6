"""Malvar-He-Cutler demosaicing (``demosaic: {method: malvar}``): against a slow NumPy reference
built from the paper's published 5 x 5 filters, and its quality against bilinear. The checks
every method shares (invariants, torch twin, pipelines) are in ``test_demosaic_methods.py``."""

from __future__ import annotations

import numpy as np
import pytest

from rawcv.isp import mosaic_rgb
from rawcv.isp.demosaic import demosaic_bilinear, demosaic_malvar
from rawcv.meta import BAYER_PATTERNS

SHAPES = [(3, 3), (3, 4), (6, 8), (13, 18), (16, 16), (21, 11)]    # odd and even, and the smallest

# Malvar, He, Cutler, "High-quality linear interpolation for demosaicing of Bayer-patterned color
# images", ICASSP 2004, fig. 2, in eighths; rows are y, columns x.
G_AT_RED_OR_BLUE = np.array([[0, 0, -1, 0, 0],
                             [0, 0, 2, 0, 0],
                             [-1, 2, 4, 2, -1],
                             [0, 0, 2, 0, 0],
                             [0, 0, -1, 0, 0]]) / 8
# R at a green pixel of a red row (B at a green pixel of a blue row): the row neighbours' colour
ROW_COLOUR_AT_GREEN = np.array([[0, 0, 0.5, 0, 0],
                                [0, -1, 0, -1, 0],
                                [-1, 4, 5, 4, -1],
                                [0, -1, 0, -1, 0],
                                [0, 0, 0.5, 0, 0]]) / 8
COLUMN_COLOUR_AT_GREEN = ROW_COLOUR_AT_GREEN.T
# R at B, B at R
OPPOSITE_AT_RED_OR_BLUE = np.array([[0, 0, -1.5, 0, 0],
                                    [0, 2, 0, 2, 0],
                                    [-1.5, 0, 6, 0, -1.5],
                                    [0, 2, 0, 2, 0],
                                    [0, 0, -1.5, 0, 0]]) / 8


def correlate_reflect(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``sum(kernel[i, j] * image[y + i - 2, x + j - 2])`` with reflect-101 borders, in float64."""
    h, w = image.shape
    padded = np.pad(image.astype(np.float64), 2, mode="reflect")
    out = np.zeros((h, w))
    for i in range(5):
        for j in range(5):
            out += kernel[i, j] * padded[i:i + h, j:j + w]
    return out


def reference_malvar(mosaic: np.ndarray, cfa: str) -> np.ndarray:
    """Slow Malvar-He-Cutler: every filter over the whole mosaic, then per pixel the filter its
    CFA site calls for (read off the pattern string, not rawcv's pixel kinds)."""
    h, w = mosaic.shape
    filtered = {name: correlate_reflect(mosaic, k) for name, k in
                (("g", G_AT_RED_OR_BLUE), ("row", ROW_COLOUR_AT_GREEN), ("col", COLUMN_COLOUR_AT_GREEN),
                 ("opposite", OPPOSITE_AT_RED_OR_BLUE))}
    tile = np.array(list(cfa)).reshape(2, 2)
    out = np.empty((h, w, 3))
    for y in range(h):
        for x in range(w):
            site = tile[y % 2, x % 2]
            row_neighbour = tile[y % 2, 1 - x % 2]
            value = {site: mosaic[y, x]}
            if site == "G":
                column_neighbour = "B" if row_neighbour == "R" else "R"
                value[row_neighbour] = filtered["row"][y, x]
                value[column_neighbour] = filtered["col"][y, x]
            else:
                value["G"] = filtered["g"][y, x]
                value["B" if site == "R" else "R"] = filtered["opposite"][y, x]
            out[y, x] = [value["R"], value["G"], value["B"]]
    return out


# --- (a) the paper's filters ---------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_matches_reference_built_from_the_published_filters(cfa, shape):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    mosaic = rng.random(shape).astype(np.float32)
    out = demosaic_malvar(mosaic, cfa=cfa)
    assert out.dtype == np.float32 and out.shape == shape + (3,)
    np.testing.assert_allclose(out, reference_malvar(mosaic, cfa), rtol=0, atol=1e-5)


# --- (b) quality against bilinear ----------------------------------------------------------------

def cpsnr(estimate: np.ndarray, truth: np.ndarray, border: int = 10) -> float:
    """Colour PSNR (dB, peak 1) over all three channels, ``border`` pixels left out on each side."""
    crop = (slice(border, -border), slice(border, -border))
    mse = np.mean((estimate[crop].astype(np.float64) - truth[crop].astype(np.float64)) ** 2)
    return float(10 * np.log10(1.0 / mse))


def compare_methods(rgb: np.ndarray, cfa: str) -> tuple:
    mosaic = mosaic_rgb(rgb, cfa=cfa)
    return cpsnr(demosaic_malvar(mosaic, cfa=cfa), rgb), cpsnr(demosaic_bilinear(mosaic, cfa=cfa), rgb)


def smooth_colour_image(h: int = 96, w: int = 128) -> np.ndarray:
    """Detail shared by the channels (as in natural images) on slowly varying colour."""
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    detail = 0.25 * np.sin(2 * np.pi * (9 * xx + 4 * yy)) * np.cos(2 * np.pi * 6 * yy)
    tint = np.stack([0.5 + 0.2 * xx, 0.45 + 0.15 * yy, 0.4 + 0.1 * (xx - yy)], axis=2)
    return (tint + detail[..., None] * np.array([0.9, 1.0, 0.8])).astype(np.float32)


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_malvar_beats_bilinear_on_a_smooth_colour_image(cfa):
    malvar, bilinear = compare_methods(smooth_colour_image(), cfa)
    assert malvar > bilinear + 3, (malvar, bilinear)


def test_malvar_beats_bilinear_on_astronaut():
    data = pytest.importorskip("skimage.data", reason="scikit-image (skimage.data.astronaut) is not installed")
    image = data.astronaut().astype(np.float32) / 255
    rgb = image.reshape(256, 2, 256, 2, 3).mean(axis=(1, 3))     # 2 x 2 box downscale: 256 x 256
    for cfa in BAYER_PATTERNS:
        malvar, bilinear = compare_methods(rgb, cfa)
        assert malvar > bilinear + 2, (cfa, malvar, bilinear)
