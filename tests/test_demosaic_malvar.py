"""Malvar-He-Cutler demosaicing (``demosaic: {method: malvar}``): against a slow NumPy reference
built from the paper's published 5 x 5 filters, its invariants, its torch twin, its quality
against bilinear, and its place in a pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from rawcv.errors import PipelineError
from rawcv.isp import Fusion, mosaic_rgb
from rawcv.isp.demosaic import MALVAR_MIN_SIDE, Demosaic, demosaic_bilinear, demosaic_malvar
from rawcv.isp.frame import MOSAIC
from rawcv.meta import BAYER_PATTERNS, CameraMeta, RawImage
from rawcv.pipeline import Pipeline

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


def cfa_colour_index(shape, cfa: str) -> np.ndarray:
    """Per pixel, the channel (0 R, 1 G, 2 B) its CFA site samples."""
    tile = np.array(["RGB".index(c) for c in cfa]).reshape(2, 2)
    return np.tile(tile, ((shape[0] + 1) // 2, (shape[1] + 1) // 2))[:shape[0], :shape[1]]


# --- (a) the paper's filters ---------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_matches_reference_built_from_the_published_filters(cfa, shape):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    mosaic = rng.random(shape).astype(np.float32)
    out = demosaic_malvar(mosaic, cfa=cfa)
    assert out.dtype == np.float32 and out.shape == shape + (3,)
    np.testing.assert_allclose(out, reference_malvar(mosaic, cfa), rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 5), (13, 18)])
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_integer_mosaics_convert_row_by_row_to_the_same_result(cfa, shape):
    rng = np.random.default_rng(1)
    for dtype, top in ((np.uint16, 65535), (np.uint8, 255)):
        mosaic = rng.integers(0, top + 1, shape).astype(dtype)
        expected = demosaic_malvar(mosaic.astype(np.float32), cfa=cfa)
        assert np.array_equal(demosaic_malvar(mosaic, cfa=cfa), expected)
        non_contiguous = np.asfortranarray(mosaic)
        assert np.array_equal(demosaic_malvar(non_contiguous, cfa=cfa), expected)


def test_rejects_what_it_cannot_demosaic():
    with pytest.raises(ValueError, match="at least 3 x 3"):
        demosaic_malvar(np.zeros((2, 8), np.float32), cfa="RGGB")
    with pytest.raises(ValueError, match="at least 3 x 3"):
        demosaic_malvar(np.zeros((8, 2), np.uint16), cfa="RGGB")
    with pytest.raises(ValueError, match="2-D"):
        demosaic_malvar(np.zeros((4, 4, 3), np.float32), cfa="RGGB")
    with pytest.raises(ValueError):
        demosaic_malvar(np.zeros((4, 4), np.float32), cfa="RGBG")
    assert MALVAR_MIN_SIDE == 3


# --- (b) invariants ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_flat_mosaic_stays_flat(cfa, shape):
    assert np.all(demosaic_malvar(np.full(shape, 0.375, np.float32), cfa=cfa) == np.float32(0.375))


@pytest.mark.parametrize("slope", [(0, 1), (1, 0), (3, -2), (-5, 7)], ids=["x", "y", "diagonal", "other"])
@pytest.mark.parametrize("shape", [(12, 16), (15, 19)])
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_affine_colour_planes_are_reproduced_exactly_away_from_the_border(cfa, shape, slope):
    """Each filter's taps on the wanted colour sum to 1 and on the sampled colour to 0, both
    symmetric: exact for any affine plane per channel (integer planes keep float32 exact)."""
    dy, dx = slope
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    rgb = np.stack([100 + dy * yy + dx * xx, 2000 - 2 * dy * yy + 3 * dx * xx, 50 + 5 * dy * yy - dx * xx], axis=2)
    out = demosaic_malvar(mosaic_rgb(rgb, cfa=cfa), cfa=cfa)
    assert np.array_equal(out[2:-2, 2:-2], rgb[2:-2, 2:-2])
    grey = 7 + dy * yy + dx * xx                  # one ramp in every channel
    assert np.array_equal(demosaic_malvar(grey, cfa=cfa)[2:-2, 2:-2], np.repeat(grey[2:-2, 2:-2, None], 3, axis=2))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_raw_samples_are_preserved_exactly(cfa, shape):
    mosaic = np.random.default_rng(3).random(shape).astype(np.float32) * 4000
    out = demosaic_malvar(mosaic, cfa=cfa)
    site = cfa_colour_index(shape, cfa)
    assert np.array_equal(np.take_along_axis(out, site[..., None], axis=2)[..., 0], mosaic)


# --- (c) the torch twin --------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
def test_torch_twin_equals_numba_for_every_layout_and_a_mixed_batch(shape):
    torch = pytest.importorskip("torch")
    from rawcv.torch.isp.demosaic import DemosaicMalvar
    from rawcv.torch.isp.demosaic import demosaic_malvar as torch_malvar

    rng = np.random.default_rng(7)
    mosaics = rng.random((len(BAYER_PATTERNS),) + shape).astype(np.float32)
    expected = np.stack([demosaic_malvar(m, cfa=cfa).transpose(2, 0, 1) for m, cfa in zip(mosaics, BAYER_PATTERNS)])
    batch = torch.from_numpy(mosaics)[:, None]
    got = torch_malvar(batch, cfa=list(BAYER_PATTERNS))          # a different layout per sample
    assert got.shape == (len(BAYER_PATTERNS), 3) + shape and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)
    for i, cfa in enumerate(BAYER_PATTERNS):
        alone = DemosaicMalvar(cfa)(batch[i:i + 1])
        np.testing.assert_allclose(alone[0].numpy(), expected[i], rtol=1e-5, atol=1e-5)
    assert torch_malvar(batch[0, 0], cfa="RGGB").shape == (3,) + shape     # H x W in, 3 x H x W out


def test_torch_twin_rejects_small_or_multichannel_input():
    torch = pytest.importorskip("torch")
    from rawcv.torch.isp.demosaic import demosaic_malvar as torch_malvar

    with pytest.raises(ValueError, match="at least 3 x 3"):
        torch_malvar(torch.zeros(1, 1, 2, 6), cfa="RGGB")
    with pytest.raises(ValueError, match="channels"):
        torch_malvar(torch.zeros(1, 3, 6, 6), cfa="RGGB")


def test_torch_twin_gradcheck():
    torch = pytest.importorskip("torch")
    from rawcv.torch.isp.demosaic import demosaic_malvar as torch_malvar

    x = torch.rand(2, 1, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: torch_malvar(a, cfa=["GRBG", "BGGR"]), (x,), eps=1e-6, atol=1e-6)


# --- (d) quality against bilinear ----------------------------------------------------------------

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


# --- (e) the stage and a pipeline ----------------------------------------------------------------

def test_stage_declares_malvar_as_a_stand_alone_method():
    assert "malvar" in next(p for p in Demosaic.params if p.name == "method").choices
    malvar, bilinear = Demosaic(method="malvar"), Demosaic()
    assert malvar.fusion(MOSAIC) is None and bilinear.fusion(MOSAIC) is Fusion.DEMOSAIC
    assert malvar.min_side(MOSAIC) == MALVAR_MIN_SIDE
    with pytest.raises(PipelineError, match="'method'"):
        Demosaic(method="ahd")


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_pipeline_with_malvar_gives_the_same_image_on_fused_and_numba(cfa):
    rng = np.random.default_rng(11)
    data = rng.integers(0, 4096, (37, 50)).astype(np.uint16)
    meta = CameraMeta(cfa, black_level=(60.0, 64.0, 58.0, 62.0), white_level=4000.0, as_shot_wb=(1.9, 1.0, 1.4))
    raw = RawImage(data, meta)
    pipeline = Pipeline(["black_level", {"stage": "demosaic", "method": "malvar"}, "gamma", "quantize"])
    assert ("stage", ["demosaic"]) in pipeline.fused_plan()
    fused, numba = pipeline.run(raw, backend="fused"), pipeline.run(raw, backend="numba")
    assert fused.image.dtype == numba.image.dtype and fused.image.shape == (37, 50, 3)
    assert np.array_equal(fused.image, numba.image)
    assert fused.record == numba.record
    bilinear = Pipeline(["black_level", "demosaic", "gamma", "quantize"]).run(raw, backend="numba")
    assert not np.array_equal(bilinear.image, numba.image)          # the method did something
