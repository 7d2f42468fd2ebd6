"""rawcv.torch.isp and rawcv.torch.backend against their Numba twins, analytic cases and gradcheck."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from rawcv import isp
from rawcv.meta import BAYER_PATTERNS, CameraMeta, RawImage
from rawcv.pipeline import Pipeline, load_pipeline, make_stage
from rawcv.torch import backend as tbackend
from rawcv.torch import isp as tisp
from rawcv.torch.isp import exposure as texposure
from rawcv.torch.tensors import RawBatch, meta_dict, sensor_tensor

TOL = 1e-5
SHAPES = [(12, 16), (11, 13)]   # even, and odd in both directions


@pytest.fixture(autouse=True, scope="module")
def _one_thread(single_threaded):
    """Tiny arrays: see ``single_threaded`` in conftest.py."""


# --------------------------------------------------------------------------- helpers


def mosaic_np(shape=(12, 16), seed=0, high=1.0):
    return np.random.default_rng(seed).uniform(0.0, high, shape).astype(np.float32)


def rgb_np(shape=(12, 16), seed=0, high=1.0):
    return np.random.default_rng(seed).uniform(0.0, high, shape + (3,)).astype(np.float32)


def t(a):
    """NumPy H x W or H x W x 3 -> torch 1 x C x H x W."""
    a = torch.from_numpy(np.ascontiguousarray(a))
    return a[None, None] if a.dim() == 2 else a.permute(2, 0, 1)[None]


def n(x):
    """torch N x C x H x W (N = 1) -> NumPy H x W or H x W x 3."""
    x = x.detach()[0]
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()


def assert_twin(torch_out, numpy_out, tol=TOL):
    numpy_out = np.asarray(numpy_out)
    got = n(torch_out) if torch_out.dim() == 4 else torch_out.detach().numpy()
    assert got.shape == numpy_out.shape
    np.testing.assert_allclose(got, numpy_out, rtol=0, atol=tol)


# --------------------------------------------------------------------------- black level


@pytest.mark.parametrize("shape", SHAPES)
def test_subtract_black_level_mosaic_matches_numba(shape):
    raw = np.random.default_rng(1).integers(0, 4096, shape).astype(np.uint16)
    black, white = (60.0, 64.0, 66.0, 70.0), 4000.0
    got = tisp.subtract_black_level(t(raw.astype(np.int32)), black=black, white=white)
    assert got.dtype == torch.float32
    assert_twin(got, isp.subtract_black_level(raw, black=black, white=white))


def test_subtract_black_level_rgb_and_per_sample_levels():
    raw = np.random.default_rng(2).integers(0, 1024, (2, 3, 6, 8)).astype(np.float32)
    black = torch.tensor([[10.0, 20.0, 30.0, 40.0], [0.0, 5.0, 7.0, 9.0]], dtype=torch.float64)
    white = torch.tensor([1000.0, 1023.0], dtype=torch.float64)
    got = tisp.subtract_black_level(torch.from_numpy(raw), black=black, white=white)
    for i in range(2):
        ref = isp.subtract_black_level(raw[i].transpose(1, 2, 0), black=black[i].tolist(), white=float(white[i]))
        np.testing.assert_allclose(got[i].permute(1, 2, 0).numpy(), ref, atol=TOL, rtol=0)
    # analytic: black maps to 0, white to 1
    x = torch.tensor([[[[10.0, 1000.0]]]])
    assert tisp.subtract_black_level(x, black=10, white=1000).flatten().tolist() == [0.0, 1.0]
    with pytest.raises(ValueError):
        tisp.subtract_black_level(x, black=10, white=5)


def test_saturation_mask_matches_numba():
    raw = np.random.default_rng(3).integers(0, 200, (6, 8)).astype(np.uint16)
    got = tisp.saturation_mask(torch.from_numpy(raw.astype(np.int32)), white=100)
    assert np.array_equal(got.numpy(), isp.saturation_mask(raw, white=100))


# --------------------------------------------------------------------------- white balance


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
@pytest.mark.parametrize("shape", SHAPES)
def test_white_balance_mosaic_matches_numba(cfa, shape):
    m = mosaic_np(shape, seed=4)
    gains = (2.1, 1.0, 1.6)
    assert_twin(tisp.white_balance(t(m), gains, cfa=cfa), isp.white_balance(m, gains, cfa=cfa))


def test_white_balance_rgb_matches_numba_and_rejects_bad_gains():
    img = rgb_np(seed=5)
    assert_twin(tisp.white_balance(t(img), torch.tensor([1.5, 1.0, 2.5])), isp.white_balance(img, (1.5, 1.0, 2.5)))
    with pytest.raises(ValueError):
        tisp.white_balance(t(img), (1.0, 0.0, 1.0))
    with pytest.raises(ValueError):
        tisp.white_balance(t(mosaic_np()), (1.0, 1.0, 1.0))   # a mosaic needs its cfa


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
@pytest.mark.parametrize("shape", SHAPES)
def test_gains_gray_world_mosaic_matches_numba(cfa, shape):
    m = mosaic_np(shape, seed=6, high=1.3)   # some values at or above saturation are left out
    got = tisp.gains_gray_world(t(m), cfa=cfa)
    assert got.shape == (1, 3)
    np.testing.assert_allclose(got[0].numpy(), isp.gains_gray_world(m, cfa=cfa), atol=TOL, rtol=0)


def test_gains_gray_world_rgb_and_analytic():
    img = rgb_np(seed=7, high=1.2)
    np.testing.assert_allclose(tisp.gains_gray_world(t(img))[0].numpy(), isp.gains_gray_world(img), atol=TOL)
    flat = torch.tensor([[0.2, 0.4], [0.4, 0.1]]).repeat(4, 4)
    assert tisp.gains_gray_world(flat, cfa="RGGB").tolist() == [[2.0, 1.0, 4.0]]
    with pytest.raises(ValueError):
        tisp.gains_gray_world(torch.zeros(1, 1, 4, 4), cfa="RGGB")


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
@pytest.mark.parametrize("percentile", [99.5, 90.0, 100.0])
def test_gains_white_world_mosaic_matches_numba(cfa, percentile):
    for shape in SHAPES:
        m = mosaic_np(shape, seed=8)
        got = tisp.gains_white_world(t(m), cfa=cfa, percentile=percentile)
        np.testing.assert_allclose(got[0].numpy(), isp.gains_white_world(m, cfa=cfa, percentile=percentile),
                                   atol=TOL, rtol=0)


def test_gains_white_world_rgb_and_percentile_agrees_with_torch_quantile():
    img = rgb_np(seed=9)
    np.testing.assert_allclose(tisp.gains_white_world(t(img))[0].numpy(), isp.gains_white_world(img), atol=TOL)
    v = torch.rand(3, 1001, generator=torch.Generator().manual_seed(0))
    for p in (0.5, 50.0, 99.5, 100.0):
        ours = sys.modules["rawcv.torch.isp.white_balance"]._percentile_rows(v, p)
        assert torch.allclose(ours, torch.quantile(v, p / 100, dim=1), atol=1e-7)
        assert np.allclose(ours.numpy(), np.percentile(v.numpy(), p, axis=1), atol=1e-7)
    with pytest.raises(ValueError):
        tisp.gains_white_world(t(img), percentile=0)


# --------------------------------------------------------------------------- demosaicing


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
@pytest.mark.parametrize("shape", SHAPES + [(3, 3)])
def test_demosaic_matches_numba(cfa, shape):
    m = mosaic_np(shape, seed=10)
    assert_twin(tisp.demosaic_bilinear(t(m), cfa=cfa), isp.demosaic_bilinear(m, cfa=cfa))


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_demosaic_analytic_flat_and_ramp(cfa):
    flat = tisp.demosaic_bilinear(torch.full((1, 1, 6, 8), 0.25), cfa=cfa)
    assert bool((flat == 0.25).all())
    # a linear ramp is reproduced exactly away from the mirrored border (dyadic values: exact sums)
    yy, xx = torch.meshgrid(torch.arange(10.0), torch.arange(12.0), indexing="ij")
    ramp = (yy * 2 + xx) / 64
    out = tisp.demosaic_bilinear(ramp[None, None], cfa=cfa)
    for c in range(3):
        assert torch.equal(out[0, c, 1:-1, 1:-1], ramp[1:-1, 1:-1])
    # the measured values pass through untouched
    back = tisp.mosaic_rgb(out, cfa=cfa)
    assert torch.equal(back[0, 0], ramp)


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_mosaic_rgb_matches_numba(cfa):
    img = rgb_np((7, 9), seed=11)
    assert_twin(tisp.mosaic_rgb(t(img), cfa=cfa), isp.mosaic_rgb(img, cfa=cfa), tol=0)


def test_per_sample_cfa_batch_matches_numba():
    ms = [mosaic_np((8, 10), seed=12 + i, high=1.2) for i in range(4)]
    x = torch.stack([t(m)[0] for m in ms])
    cfas = ["GBRG", "RGGB", "GBRG", "BGGR"]
    gains = torch.tensor([[2.0, 1.0, 1.5], [1.2, 1.0, 3.0], [1.0, 1.0, 1.0], [2.5, 1.0, 1.1]])
    demo = tisp.demosaic_bilinear(x, cfa=cfas)
    wb = tisp.white_balance(x, gains, cfa=cfas)
    gw = tisp.gains_gray_world(x, cfa=cfas)
    ww = tisp.gains_white_world(x, cfa=cfas)
    for i, (m, cfa) in enumerate(zip(ms, cfas)):
        np.testing.assert_allclose(demo[i].permute(1, 2, 0).numpy(), isp.demosaic_bilinear(m, cfa=cfa), atol=TOL)
        np.testing.assert_allclose(wb[i, 0].numpy(), isp.white_balance(m, gains[i].numpy(), cfa=cfa), atol=TOL)
        np.testing.assert_allclose(gw[i].numpy(), isp.gains_gray_world(m, cfa=cfa), atol=TOL)
        np.testing.assert_allclose(ww[i].numpy(), isp.gains_white_world(m, cfa=cfa), atol=TOL)


# --------------------------------------------------------------------------- denoising


@pytest.mark.parametrize("method", ["mean", "median"])
@pytest.mark.parametrize("size", [3, 5])
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_denoise_mosaic_matches_numba(method, size, cfa):
    for shape in SHAPES:
        m = mosaic_np(shape, seed=20)
        got = tisp.denoise(t(m), method=method, size=size, cfa=cfa)
        assert_twin(got, isp.denoise(m, method=method, size=size, cfa=cfa))


@pytest.mark.parametrize("method", ["mean", "median"])
@pytest.mark.parametrize("size", [3, 5])
@pytest.mark.parametrize("shape", SHAPES)
def test_denoise_rgb_matches_numba(method, size, shape):
    img = rgb_np(shape, seed=21)
    assert_twin(tisp.denoise(t(img), method=method, size=size), isp.denoise(img, method=method, size=size))


def test_denoise_analytic_and_median_banding(monkeypatch):
    img = torch.zeros(1, 3, 5, 5)
    img[..., 2, 2] = 9.0
    assert float(tisp.denoise_mean(img)[0, 0, 2, 2]) == 1.0
    assert float(tisp.denoise_median(img).abs().max()) == 0.0           # a hot pixel disappears
    m = torch.zeros(1, 1, 8, 8)
    m[0, 0, 4, 4] = 1.0
    assert float(tisp.denoise_median(m, cfa="RGGB").max()) == 0.0
    # row bands give the same median as one pass
    x = torch.rand(2, 3, 9, 10, generator=torch.Generator().manual_seed(3))
    whole = tisp.denoise_median(x, size=5)
    monkeypatch.setattr(sys.modules["rawcv.torch.isp.denoise"], "_MEDIAN_CHUNK", 1)
    assert torch.equal(tisp.denoise_median(x, size=5), whole)
    with pytest.raises(ValueError):
        tisp.denoise_mean(img, size=4)
    with pytest.raises(ValueError):
        tisp.denoise_median(torch.zeros(1, 1, 4, 4))   # a mosaic needs its cfa


# --------------------------------------------------------------------------- vignetting, colour, tone


@pytest.mark.parametrize("center", [(0.5, 0.5), (0.3, 0.7)])
def test_vignetting_matches_numba(center):
    ks = dict(k1=0.4, k2=-0.1, k3=0.05, center=center)
    for a in (mosaic_np((11, 14), seed=30), rgb_np((12, 9), seed=31)):
        assert_twin(tisp.correct_vignetting(t(a), **ks), isp.correct_vignetting(a, **ks))
    g = tisp.vignetting_gain((9, 13), **ks)
    np.testing.assert_allclose(g[0, 0].numpy(), isp.vignetting_gain((9, 13), **ks), atol=TOL, rtol=0)


def test_vignetting_analytic_and_per_sample_coefficients():
    g = tisp.vignetting_gain((5, 5), k1=0.5, k2=0.25, k3=0.125)
    assert float(g[0, 0, 2, 2]) == 1.0 and float(g[0, 0, 0, 0]) == 1.875   # r = 1 at the corners
    x = torch.ones(2, 3, 5, 5)
    out = tisp.correct_vignetting(x, k1=torch.tensor([0.0, 1.0]))
    assert float(out[0, :, 0, 0].max()) == 1.0 and bool((out[1, :, 0, 0] == 2.0).all())


def test_color_matrix_matches_numba():
    img = rgb_np(seed=32)
    mat = isp.camera_to_srgb_matrix(np.array([[0.7, -0.1, -0.05], [-0.3, 1.2, 0.1], [-0.05, 0.2, 0.6]]))
    assert_twin(tisp.apply_color_matrix(t(img), mat), isp.apply_color_matrix(img, mat))
    # per-sample matrices
    x = torch.stack([t(img)[0], t(img)[0]])
    mats = torch.stack([torch.eye(3, dtype=torch.float64), torch.from_numpy(mat)])
    out = tisp.apply_color_matrix(x, mats)
    assert torch.equal(out[0], x[0])
    np.testing.assert_allclose(out[1].permute(1, 2, 0).numpy(), isp.apply_color_matrix(img, mat), atol=TOL)


def test_tone_curves_match_numba():
    v = np.concatenate([np.linspace(-0.2, 1.2, 397), [0.0, 0.0031308, 0.04045, 1e-4]]).astype(np.float32)
    img = np.resize(v, (20, 20)).astype(np.float32)
    x = t(img)
    assert_twin(tisp.srgb_encode(x), isp.srgb_encode(img))
    assert_twin(tisp.srgb_decode(x), isp.srgb_decode(img))
    for gamma in (2.2, 2.0, 1.8):
        assert_twin(tisp.gamma_encode(x, gamma=gamma), isp.gamma_encode(img, gamma=gamma))
        assert_twin(tisp.gamma_decode(x, gamma=gamma), isp.gamma_decode(img, gamma=gamma))
    assert_twin(tisp.encode(x, curve="power", gamma=2.4), isp.encode(img, curve="power", gamma=2.4))
    u8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_allclose(tisp.srgb_decode(torch.from_numpy(u8)).numpy(), isp.srgb_decode(u8), atol=TOL)


def test_tone_curves_analytic():
    assert round(float(tisp.srgb_encode(torch.tensor(0.18))), 4) == 0.4614
    assert float(tisp.srgb_encode(torch.tensor(1.0))) == pytest.approx(1.0, abs=1e-6)
    assert float(tisp.srgb_encode(torch.tensor(0.001))) == pytest.approx(0.01292, abs=1e-8)
    x = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    assert torch.allclose(tisp.srgb_decode(tisp.srgb_encode(x)), x, atol=1e-12)
    assert torch.allclose(tisp.gamma_decode(tisp.gamma_encode(x - 0.5)), x - 0.5, atol=1e-12)
    assert tisp.gamma_encode(torch.tensor([0.25, -0.25]), gamma=2.0).tolist() == [0.5, -0.5]
    with pytest.raises(ValueError):
        tisp.gamma_encode(x, gamma=0)
    with pytest.raises(ValueError):
        tisp.encode(x, curve="log")


@pytest.mark.parametrize("bits", [8, 16])
def test_quantize_matches_numba(bits):
    v = np.concatenate([np.linspace(-0.5, 1.5, 399), [np.float32(0.5) / 255]]).astype(np.float32).reshape(20, 20)
    got = tisp.quantize(t(v), bits=bits, dtype=tisp.level_dtype(bits))
    ref = isp.quantize(v, bits=bits)
    assert got.dtype == (torch.uint8 if bits == 8 else torch.uint16)
    assert np.array_equal(n(got).astype(np.int64), ref.astype(np.int64))
    levels = tisp.quantize(t(v), bits=bits)   # float levels, same numbers
    assert levels.dtype == torch.float32 and np.array_equal(n(levels), ref.astype(np.float32))
    assert tisp.quantize(torch.tensor([float("nan"), 0.5]), dtype=torch.uint8).tolist() == [0, 128]
    with pytest.raises(ValueError):
        tisp.quantize(t(v), bits=12)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("curve,gamma", [("srgb", 2.2), ("power", 2.2), ("power", 1.8)])
def test_encode_quantize_equals_numba_chain_exactly(bits, curve, gamma):
    rng = np.random.default_rng(bits)
    v = np.concatenate([rng.uniform(-0.1, 1.1, 40000), rng.uniform(0, 0.01, 10000),
                        [0.0, -0.0, 1.0, 0.0031308, np.nan, np.inf, -np.inf]]).astype(np.float32)
    img = np.resize(v, (50010 // 30 + 1, 30)).astype(np.float32)
    ref = isp.quantize(isp.encode(np.nan_to_num(img, nan=-1.0), curve=curve, gamma=gamma), bits=bits)
    ref[np.isnan(img)] = 0
    got = tisp.encode_quantize(t(img), curve=curve, gamma=gamma, bits=bits, dtype=tisp.level_dtype(bits))
    assert np.array_equal(n(got).astype(np.int64), ref.astype(np.int64))
    # pow then round: within one level, nearly always the same
    pow_path = n(tisp.quantize(tisp.encode(t(img), curve=curve, gamma=gamma), bits=bits)).astype(np.int64)
    ok = ~np.isnan(img)
    diff = np.abs(pow_path - ref.astype(np.int64))[ok]
    assert diff.max() <= 1 and (diff == 0).mean() >= (0.999 if bits == 8 else 0.99)


# --------------------------------------------------------------------------- gradcheck


def _g(seed, *shape, lo=0.05, hi=0.95):
    gen = torch.Generator().manual_seed(seed)
    return (lo + (hi - lo) * torch.rand(*shape, generator=gen, dtype=torch.float64)).requires_grad_(True)


def _distinct(seed, *shape):
    """Values far apart relative to gradcheck's step, so order statistics stay put."""
    count = int(np.prod(shape))
    perm = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).to(torch.float64)
    return (0.05 + 0.9 * perm / count).reshape(shape).requires_grad_(True)


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_gradcheck_cfa_stages(cfa):
    gc = torch.autograd.gradcheck
    x = _g(1, 2, 1, 6, 6)
    assert gc(lambda a: tisp.demosaic_bilinear(a, cfa=cfa), (x,))
    assert gc(lambda a, g: tisp.white_balance(a, g, cfa=cfa), (x, _g(2, 2, 3, lo=0.5, hi=2.0)))
    assert gc(lambda a: tisp.gains_gray_world(a, cfa=cfa), (x,))
    assert gc(lambda a: tisp.gains_white_world(a, cfa=cfa, percentile=90.0), (_distinct(3, 2, 1, 6, 6),))
    assert gc(lambda a: tisp.denoise_mean(a, size=3, cfa=cfa), (_g(4, 1, 1, 6, 8),))


def test_gradcheck_other_stages():
    gc = torch.autograd.gradcheck
    raw = _g(5, 2, 1, 4, 6, lo=100, hi=900)
    black = torch.tensor([[10.0, 20.0, 30.0, 40.0], [50.0, 60.0, 70.0, 80.0]], dtype=torch.float64, requires_grad=True)
    assert gc(lambda r, b: tisp.subtract_black_level(r, black=b, white=1000.0), (raw, black))
    assert gc(lambda r: tisp.subtract_black_level(r, black=(1, 2, 3, 4), white=1000.0), (_g(6, 1, 3, 4, 5, hi=900),))
    assert gc(lambda a: tisp.demosaic_bilinear(a, cfa=["GRBG", "BGGR"]), (_g(11, 2, 1, 5, 7),))   # odd size
    assert gc(lambda a: tisp.denoise_mean(a, cfa="RGGB"), (_g(12, 1, 1, 7, 9),))
    rgb = _g(7, 2, 3, 5, 6)
    assert gc(lambda a: tisp.white_balance(a, (2.0, 1.0, 1.5)), (rgb,))
    assert gc(lambda a: tisp.gains_gray_world(a), (rgb,))
    assert gc(lambda a: tisp.gains_white_world(a, percentile=80.0), (_distinct(8, 1, 3, 5, 6),))
    assert gc(lambda a: tisp.denoise_mean(a, size=5), (_g(9, 1, 3, 6, 7),))
    ks = torch.tensor([0.3, -0.1, 0.05], dtype=torch.float64, requires_grad=True)
    assert gc(lambda a, k: tisp.correct_vignetting(a, k1=k[0], k2=k[1], k3=k[2], center=(0.4, 0.6)), (rgb, ks))
    mat = _g(10, 3, 3, lo=-0.5, hi=1.5)
    assert gc(lambda a, m: tisp.apply_color_matrix(a, m), (rgb, mat))
    # sRGB: both branches, away from 0 and from the joins where the derivative jumps
    lin = torch.tensor([0.0005, 0.001, 0.002, 0.01, 0.1, 0.5, 0.9], dtype=torch.float64, requires_grad=True)
    assert gc(tisp.srgb_encode, (lin,))
    enc = torch.tensor([0.005, 0.02, 0.03, 0.1, 0.5, 0.9], dtype=torch.float64, requires_grad=True)
    assert gc(tisp.srgb_decode, (enc,))
    signed = torch.tensor([-0.8, -0.3, 0.2, 0.6, 1.1], dtype=torch.float64, requires_grad=True)
    assert gc(lambda a: tisp.gamma_encode(a, gamma=2.2), (signed,))
    assert gc(lambda a: tisp.gamma_decode(a, gamma=2.2), (signed,))
    # the unselected sRGB branch must not poison gradients with NaN (pow of negatives)
    z = torch.tensor([-0.5, 0.0, 0.5], dtype=torch.float64, requires_grad=True)
    tisp.srgb_encode(z).sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad[0] == 12.92


def test_float64_stays_float64():
    x = torch.rand(1, 1, 6, 6, dtype=torch.float64)
    assert tisp.demosaic_bilinear(x, cfa="RGGB").dtype == torch.float64
    assert tisp.subtract_black_level(x, black=0.0, white=2.0).dtype == torch.float64
    assert tisp.gains_gray_world(x, cfa="RGGB").dtype == torch.float64


# --------------------------------------------------------------------------- modules


def test_modules_agree_with_functions():
    m = torch.from_numpy(mosaic_np((8, 10), seed=40))[None, None]
    rgb = torch.from_numpy(rgb_np((8, 10), seed=41)).permute(2, 0, 1)[None]
    raw = (m * 4000 + 64).round()
    mat = np.array([[1.5, -0.3, -0.2], [-0.2, 1.4, -0.2], [0.0, -0.5, 1.5]])
    cases = [
        (tisp.SubtractBlackLevel(black=(60, 62, 64, 66), white=4095), raw,
         tisp.subtract_black_level(raw, black=(60, 62, 64, 66), white=4095)),
        (tisp.WhiteBalance((2.0, 1.0, 1.5), cfa="GRBG"), m, tisp.white_balance(m, (2.0, 1.0, 1.5), cfa="GRBG")),
        (tisp.GainsGrayWorld(cfa="BGGR"), m, tisp.gains_gray_world(m, cfa="BGGR")),
        (tisp.GainsWhiteWorld(cfa="BGGR", percentile=95.0), m, tisp.gains_white_world(m, cfa="BGGR", percentile=95.0)),
        (tisp.DemosaicBilinear("GBRG"), m, tisp.demosaic_bilinear(m, cfa="GBRG")),
        (tisp.Denoise("mean", 5), rgb, tisp.denoise(rgb, method="mean", size=5)),
        (tisp.DenoiseMean(3, cfa="RGGB"), m, tisp.denoise_mean(m, size=3, cfa="RGGB")),
        (tisp.DenoiseMedian(5), rgb, tisp.denoise_median(rgb, size=5)),
        (tisp.CorrectVignetting(0.3, 0.1, 0.0, (0.4, 0.5)), rgb,
         tisp.correct_vignetting(rgb, k1=0.3, k2=0.1, center=(0.4, 0.5))),
        (tisp.ApplyColorMatrix(mat), rgb, tisp.apply_color_matrix(rgb, mat)),
        (tisp.SRGBEncode(), rgb, tisp.srgb_encode(rgb)),
        (tisp.SRGBDecode(), rgb, tisp.srgb_decode(rgb)),
        (tisp.GammaEncode(2.4), rgb, tisp.gamma_encode(rgb, gamma=2.4)),
        (tisp.GammaDecode(2.4), rgb, tisp.gamma_decode(rgb, gamma=2.4)),
        (tisp.Encode("power", 1.8), rgb, tisp.encode(rgb, curve="power", gamma=1.8)),
        (tisp.Quantize(16, torch.uint16), rgb, tisp.quantize(rgb, bits=16, dtype=torch.uint16)),
        (tisp.EncodeQuantize("power", 2.0, 8), rgb, tisp.encode_quantize(rgb, curve="power", gamma=2.0, bits=8)),
        (texposure.ApplyExposure(0.7), rgb, texposure.apply_exposure(rgb, stops=0.7)),
    ]
    for module, inp, expected in cases:
        got = module(inp)
        assert got.dtype == expected.dtype and torch.equal(got, expected), type(module).__name__
    assert torch.equal(tisp.DemosaicBilinear("RGGB")(m, cfa="GBRG"), tisp.demosaic_bilinear(m, cfa="GBRG"))


def test_defaults_and_modules_come_from_the_stage_registry():
    from rawcv.pipeline import STAGES

    defaults = {(s, p.name): p.default for s, cls in STAGES.items() for p in cls.params}
    assert tisp.GAMMA == defaults[("gamma", "gamma")] and tisp.CURVE == defaults[("gamma", "curve")]
    assert tisp.DENOISE_SIZE == defaults[("denoise", "size")]
    assert tisp.DENOISE_METHOD == defaults[("denoise", "method")]
    assert tisp.PERCENTILE == defaults[("white_balance", "percentile")]
    assert tisp.BITS == defaults[("quantize", "bits")]
    assert list(tisp.CENTER) == defaults[("vignetting", "center")]
    assert tisp.Encode().curve == tisp.CURVE and tisp.Denoise().size == tisp.DENOISE_SIZE

    enc = tisp.Encode.from_stage(make_stage({"stage": "gamma", "curve": "power", "gamma": 1.7}))
    assert (enc.curve, enc.gamma) == ("power", 1.7)
    den = tisp.Denoise.from_stage(make_stage({"stage": "denoise", "method": "mean", "size": 5}))
    assert (den.method, den.size) == ("mean", 5)
    vig = tisp.CorrectVignetting.from_stage(make_stage({"stage": "vignetting", "k1": 0.2, "center": [0.1, 0.9]}))
    assert (vig.k1, vig.k2, vig.center) == (0.2, 0.0, (0.1, 0.9))
    assert tisp.Quantize.from_stage(make_stage({"stage": "quantize", "bits": 16})).bits == 16
    eq = tisp.EncodeQuantize.from_stages(make_stage({"stage": "gamma", "curve": "power", "gamma": 2.4}),
                                         make_stage({"stage": "quantize", "bits": 16}))
    assert (eq.curve, eq.gamma, eq.bits) == ("power", 2.4, 16)
    meta = CameraMeta("RGGB", black_level=(1, 2, 3, 4), white_level=100)
    blk = tisp.SubtractBlackLevel.from_stage(make_stage("black_level"), meta)
    assert (tuple(blk.black), blk.white) == ((1, 2, 3, 4), 100)
    blk = tisp.SubtractBlackLevel.from_stage(make_stage({"stage": "black_level", "white": 50.0}), meta)
    assert blk.white == 50.0


# --------------------------------------------------------------------------- the torch backend


XYZ_TO_CAM = ((0.6722, -0.0635, -0.0963), (-0.4287, 1.2460, 0.2028), (-0.0908, 0.2162, 0.5668))


def make_raw(cfa, shape=(48, 64), seed=0, *, black=(64, 66, 62, 65), white=4095, wb=(2.1, 1.0, 1.6),
             matrix=XYZ_TO_CAM, linear=False):
    """A smooth scene with texture and some clipped highlights, mosaiced and noised, as sensor values."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.15 + 0.6 * xx + 0.3 * np.sin(6 * yy + 2 * xx) ** 2
    scene = np.stack([base * 0.5, base, base * 0.7], axis=-1)
    scene *= 1 + 0.05 * rng.standard_normal(scene.shape)
    scene[h // 3: h // 3 + 4, w // 2: w // 2 + 5] = 1.5   # clipped highlight
    b = np.asarray(black, dtype=np.float64)
    if linear:
        vals = b[:3] + scene * (white - b[:3])
    else:
        mos = isp.mosaic_rgb(scene.astype(np.float32), cfa=cfa).astype(np.float64)
        bmap = np.tile(b.reshape(2, 2), (h // 2 + 1, w // 2 + 1))[:h, :w]
        vals = bmap + mos * (white - bmap)
    data = np.clip(np.round(vals), 0, white).astype(np.uint16)
    meta = CameraMeta(None if linear else cfa, black_level=black, white_level=white, as_shot_wb=wb,
                      xyz_to_cam=matrix, linear=linear)
    return RawImage(data, meta)


def assert_pipeline_close(got, ref, *, min_equal=0.999):
    """Floats within 1e-5; levels within one, and identical for at least ``min_equal`` of the values."""
    if ref.dtype in (torch.uint8, torch.uint16):
        assert got.dtype == ref.dtype and got.shape == ref.shape
        diff = (got.to(torch.int64) - ref.to(torch.int64)).abs()
        assert int(diff.max()) <= 1
        assert float((diff == 0).double().mean()) >= min_equal
    else:
        assert got.dtype == torch.float32 and got.shape == ref.shape
        assert float((got - ref).abs().max()) <= TOL


@pytest.mark.parametrize("name", ["default", "linear", "core"])
def test_backend_matches_numpy_pipeline(name):
    pipeline = load_pipeline(name)
    # one image per Bayer layout, each with its own levels, gains and colour matrix (one without)
    raws = [make_raw(cfa, seed=i, black=(60 + i, 62, 64, 66 - i), white=4095 - 10 * i,
                     wb=(2.0 + 0.1 * i, 1.0, 1.5 - 0.1 * i), matrix=None if i == 3 else XYZ_TO_CAM)
            for i, cfa in enumerate(BAYER_PATTERNS)]
    got = tbackend.run_pipeline_torch(pipeline, raws, device="cpu")
    ref = tbackend.run_numpy_reference(pipeline, raws)
    assert got.shape == (4, 3, 48, 64)
    assert_pipeline_close(got, ref)
    if ref.dtype == torch.uint8:
        # every float op before the tone curve is the Numba one, and the levels come from rawcv's
        # exact table: identical; with pow + rounding, within one level
        assert torch.equal(got, ref)
        assert_pipeline_close(tbackend.run_pipeline_torch(pipeline, raws, device="cpu", exact_levels=False), ref)
    # one image at a time, and on the NumPy per-stage backend, gives the same
    single = tbackend.run_pipeline_torch(pipeline, raws[1], device="cpu")
    assert torch.equal(single[0], got[1])
    np_stages = np.asarray(pipeline.run(raws[2], backend="numba").image)
    assert_pipeline_close(got[2:3], torch.from_numpy(np_stages.transpose(2, 0, 1).copy())[None])


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_backend_other_stages_match_numpy(cfa):
    stages = [
        "black_level",
        {"stage": "white_balance", "method": "gray_world"},
        {"stage": "denoise", "method": "mean", "size": 5},
        "demosaic",
        {"stage": "vignetting", "k1": 0.3, "k2": 0.1, "center": [0.45, 0.55]},
        "color_matrix",
        {"stage": "gamma", "curve": "power", "gamma": 2.4},
        {"stage": "quantize", "bits": 16},
    ]
    raw = make_raw(cfa, shape=(30, 34), seed=5)
    for wb in ({"stage": "white_balance", "method": "gray_world"},
               {"stage": "white_balance", "method": "white_world", "percentile": 97.0},
               {"stage": "white_balance", "method": "manual", "gains": [1.7, 1.0, 2.2]}):
        stages[1] = wb
        for pipeline in (Pipeline(stages[:-1]), Pipeline(stages[:5])):
            got = tbackend.run_pipeline_torch(pipeline, raw, device="cpu")
            assert_pipeline_close(got, tbackend.run_numpy_reference(pipeline, raw))
        full = Pipeline(stages)
        ref = tbackend.run_numpy_reference(full, raw)
        assert_pipeline_close(tbackend.run_pipeline_torch(full, raw, device="cpu"), ref)
        pow_levels = tbackend.run_pipeline_torch(full, raw, device="cpu", exact_levels=False)
        assert_pipeline_close(pow_levels, ref, min_equal=0.99)   # 16 bits: pow's last-place differences show


def test_backend_linear_raw_and_raw_batch_input():
    raw = make_raw(None, shape=(20, 26), seed=7, linear=True)
    for name in ("linear", "default"):
        got = tbackend.run_pipeline_torch(name, raw, device="cpu")
        assert_pipeline_close(got, tbackend.run_numpy_reference(name, raw))
    raws = [make_raw(c, shape=(16, 20), seed=i) for i, c in enumerate(("RGGB", "GRBG"))]
    batch = RawBatch(torch.stack([sensor_tensor(r) for r in raws]), [meta_dict(r) for r in raws])
    got = tbackend.run_pipeline_torch("core", batch, device="cpu")
    assert_pipeline_close(got, tbackend.run_numpy_reference("core", raws))
    with pytest.raises(ValueError):
        tbackend.run_pipeline_torch("core", [raws[0], make_raw("RGGB", shape=(8, 8))], device="cpu")


def test_resolve_device():
    assert tbackend.resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert tbackend.resolve_device("auto").type == expected
    assert tbackend.resolve_device(torch.device("cpu")).type == "cpu"
