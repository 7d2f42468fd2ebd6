"""One tester over every demosaic method the stage declares (``DEMOSAIC_METHODS``): the same
input checks, invariants, torch twin and pipeline checks for each, so a new method is covered by
adding it to the mapping. Method-specific references live in ``test_demosaic_<method>.py``."""

from __future__ import annotations

import numpy as np
import pytest

from rawcv.errors import PipelineError
from rawcv.isp import Fusion, mosaic_rgb
from rawcv.isp.demosaic import DEMOSAIC_METHODS, Demosaic
from rawcv.isp.frame import MOSAIC
from rawcv.meta import BAYER_PATTERNS, CameraMeta, RawImage
from rawcv.pipeline import Pipeline

METHODS = tuple(DEMOSAIC_METHODS)
SHAPES = [(3, 3), (3, 4), (6, 8), (13, 18), (16, 16), (21, 11), (40, 29)]    # odd and even, and the smallest
# how far in from the border each method is exact on affine colour planes (its reach; reflection
# at the border bends a plane), and whether float32 rounding in its arithmetic allows equality
AFFINE_EXACT = {"bilinear": (1, True), "malvar": (2, True), "gbtf": (12, False), "half": None}
# the methods that keep the mosaic's size (and every sample where it was)
FULL_SIZE = tuple(m for m in METHODS if DEMOSAIC_METHODS[m].shrink == 1)


def out_shape(method: str, shape) -> tuple:
    k = DEMOSAIC_METHODS[method].shrink
    return (shape[0] // k, shape[1] // k)


def demosaic(method: str, mosaic, cfa: str) -> np.ndarray:
    return DEMOSAIC_METHODS[method].function(mosaic, cfa=cfa)


def cfa_colour_index(shape, cfa: str) -> np.ndarray:
    """Per pixel, the channel (0 R, 1 G, 2 B) its CFA site samples."""
    tile = np.array(["RGB".index(c) for c in cfa]).reshape(2, 2)
    return np.tile(tile, ((shape[0] + 1) // 2, (shape[1] + 1) // 2))[:shape[0], :shape[1]]


def test_every_method_has_a_twin_and_a_row_in_this_tester():
    torch_demosaic = pytest.importorskip("rawcv.torch.isp.demosaic")
    assert set(METHODS) == set(AFFINE_EXACT) == set(torch_demosaic.DEMOSAIC_TWINS)
    assert Demosaic.param("method").choices == METHODS


# --- input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(3, 5), (13, 18), (30, 41)])
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_integer_mosaics_give_the_float_result(method, cfa, shape):
    rng = np.random.default_rng(1)
    for dtype, top in ((np.uint16, 65535), (np.uint8, 255)):
        mosaic = rng.integers(0, top + 1, shape).astype(dtype)
        expected = demosaic(method, mosaic.astype(np.float32), cfa)
        assert np.array_equal(demosaic(method, mosaic, cfa), expected)
        assert np.array_equal(demosaic(method, np.asfortranarray(mosaic), cfa), expected)


@pytest.mark.parametrize("method", METHODS)
def test_rejects_what_it_cannot_demosaic(method):
    side = DEMOSAIC_METHODS[method].min_side
    with pytest.raises(ValueError, match=f"at least {side} x {side}"):
        demosaic(method, np.zeros((side - 1, 8), np.float32), "RGGB")
    with pytest.raises(ValueError, match=f"at least {side} x {side}"):
        demosaic(method, np.zeros((8, side - 1), np.uint16), "RGGB")
    with pytest.raises(ValueError, match="2-D"):
        demosaic(method, np.zeros((4, 4, 3), np.float32), "RGGB")
    with pytest.raises(ValueError):
        demosaic(method, np.zeros((4, 4), np.float32), "RGBG")


# --- invariants ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_flat_mosaic_stays_flat(method, cfa, shape):
    assert np.all(demosaic(method, np.full(shape, 0.375, np.float32), cfa) == np.float32(0.375))


@pytest.mark.parametrize("method", FULL_SIZE)
@pytest.mark.parametrize("slope", [(0, 1), (1, 0), (3, -2), (-5, 7)], ids=["x", "y", "diagonal", "other"])
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_affine_colour_planes_are_reproduced_away_from_the_border(method, cfa, slope):
    """Every method interpolates colour (differences) with symmetric filters that are exact on
    any affine plane per channel; integer planes keep float32 sums exact where the method only
    adds and halves."""
    border, exact = AFFINE_EXACT[method]
    shape = (2 * border + 14, 2 * border + 17)
    dy, dx = slope
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    rgb = np.stack([100 + dy * yy + dx * xx, 2000 - 2 * dy * yy + 3 * dx * xx, 50 + 5 * dy * yy - dx * xx], axis=2)
    grey = 7 + dy * yy + dx * xx                  # one ramp in every channel
    inner = (slice(border, -border), slice(border, -border))
    for truth in (rgb, np.repeat(grey[..., None], 3, axis=2)):
        out = demosaic(method, mosaic_rgb(truth, cfa=cfa), cfa)
        if exact:
            assert np.array_equal(out[inner], truth[inner])
        else:
            np.testing.assert_allclose(out[inner], truth[inner], rtol=0, atol=2e-3)   # 1e-6 of the range


@pytest.mark.parametrize("method", FULL_SIZE)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_raw_samples_are_preserved_exactly(method, cfa, shape):
    mosaic = np.random.default_rng(3).random(shape).astype(np.float32) * 4000
    out = demosaic(method, mosaic, cfa)
    assert out.dtype == np.float32 and out.shape == shape + (3,)
    site = cfa_colour_index(shape, cfa)
    assert np.array_equal(np.take_along_axis(out, site[..., None], axis=2)[..., 0], mosaic)


@pytest.mark.parametrize("method", METHODS)
def test_transposing_the_mosaic_transposes_the_result(method):
    """Rows and columns play symmetric roles: the transpose of an RGGB mosaic is RGGB, of GRBG
    is GBRG; the result must be the transpose (exactly, as each method's sums are symmetric in
    order only up to rounding: to 1e-6)."""
    mosaic = np.random.default_rng(5).random((26, 34)).astype(np.float32)
    for cfa, transposed in (("RGGB", "RGGB"), ("GRBG", "GBRG"), ("BGGR", "BGGR")):
        a = demosaic(method, mosaic, cfa).transpose(1, 0, 2)
        b = demosaic(method, np.ascontiguousarray(mosaic.T), transposed)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


# --- the torch twin ------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", SHAPES)
def test_torch_twin_equals_numba_for_every_layout_and_a_mixed_batch(method, shape):
    torch = pytest.importorskip("torch")
    from rawcv.torch.isp.demosaic import DEMOSAIC_TWINS

    twin = DEMOSAIC_TWINS[method]
    rng = np.random.default_rng(7)
    mosaics = rng.random((len(BAYER_PATTERNS),) + shape).astype(np.float32)
    expected = np.stack([demosaic(method, m, cfa).transpose(2, 0, 1) for m, cfa in zip(mosaics, BAYER_PATTERNS)])
    batch = torch.from_numpy(mosaics)[:, None]
    got = twin(batch, cfa=list(BAYER_PATTERNS))          # a different layout per sample
    assert got.shape == (len(BAYER_PATTERNS), 3) + out_shape(method, shape) and got.dtype == torch.float32
    assert np.array_equal(got.numpy(), expected)
    assert twin(batch[0, 0], cfa="RGGB").shape == (3,) + out_shape(method, shape)   # H x W in, 3 x H x W out


@pytest.mark.parametrize("method", METHODS)
def test_torch_module_forms_delegate(method):
    torch = pytest.importorskip("torch")
    from rawcv.torch.isp import demosaic as torch_demosaic

    module = {"bilinear": torch_demosaic.DemosaicBilinear, "malvar": torch_demosaic.DemosaicMalvar,
              "gbtf": torch_demosaic.DemosaicGBTF, "half": torch_demosaic.DemosaicHalf}[method]
    x = torch.rand(2, 1, 9, 12, generator=torch.Generator().manual_seed(2))
    twin = torch_demosaic.DEMOSAIC_TWINS[method]
    assert torch.equal(module("GRBG")(x), twin(x, cfa="GRBG"))
    assert torch.equal(module("GRBG")(x, cfa="BGGR"), twin(x, cfa="BGGR"))


@pytest.mark.parametrize("method", METHODS)
def test_torch_twin_rejects_small_or_multichannel_input(method):
    torch = pytest.importorskip("torch")
    from rawcv.torch.isp.demosaic import DEMOSAIC_TWINS

    side = DEMOSAIC_METHODS[method].min_side
    with pytest.raises(ValueError, match=f"at least {side} x {side}"):
        DEMOSAIC_TWINS[method](torch.zeros(1, 1, side - 1, 6), cfa="RGGB")
    with pytest.raises(ValueError, match="channels"):
        DEMOSAIC_TWINS[method](torch.zeros(1, 3, 6, 6), cfa="RGGB")


@pytest.mark.parametrize("method", METHODS)
def test_torch_twin_gradcheck(method):
    torch = pytest.importorskip("torch")
    from rawcv.torch.isp.demosaic import DEMOSAIC_TWINS

    x = torch.rand(2, 1, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: DEMOSAIC_TWINS[method](a, cfa=["GRBG", "BGGR"]), (x,),
                                    eps=1e-6, atol=1e-5)


# --- the stage and a pipeline --------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_stage_declares_each_method_with_its_trait(method):
    stage = Demosaic(method=method)
    fused = DEMOSAIC_METHODS[method].fused_row is not None
    assert (stage.fusion(MOSAIC) is Fusion.DEMOSAIC) == fused
    assert stage.min_side(MOSAIC) == DEMOSAIC_METHODS[method].min_side
    with pytest.raises(PipelineError, match="'method'"):
        Demosaic(method="ahd")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_pipeline_gives_the_same_image_on_fused_numba_and_torch(method, cfa):
    rng = np.random.default_rng(11)
    data = rng.integers(0, 4096, (37, 50)).astype(np.uint16)
    meta = CameraMeta(cfa, black_level=(60.0, 64.0, 58.0, 62.0), white_level=4000.0, as_shot_wb=(1.9, 1.0, 1.4))
    raw = RawImage(data, meta)
    pipeline = Pipeline(["black_level", {"stage": "demosaic", "method": method}, "gamma", "quantize"])
    fused, numba = pipeline.run(raw, backend="fused"), pipeline.run(raw, backend="numba")
    assert fused.image.dtype == numba.image.dtype and fused.image.shape == out_shape(method, (37, 50)) + (3,)
    assert np.array_equal(fused.image, numba.image)
    assert fused.record == numba.record
    pytest.importorskip("torch")
    from rawcv.torch.backend import run_pipeline_torch

    on_torch = run_pipeline_torch(pipeline, raw, device="cpu")[0].permute(1, 2, 0).numpy()
    assert np.array_equal(on_torch, numba.image)
    if method != "bilinear":
        bilinear = Pipeline(["black_level", "demosaic", "gamma", "quantize"]).run(raw, backend="numba")
        assert not np.array_equal(bilinear.image, numba.image)          # the method did something
