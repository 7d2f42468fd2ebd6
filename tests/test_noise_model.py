"""Tests of rawcv.synth.noise: the Brooks et al. (2019) noise model, sampling and estimation."""

import numpy as np
import pytest

from rawcv.meta import CameraMeta, RawImage
from rawcv.synth import generate_scene
from rawcv.synth.noise import (NOISE_PRESETS, NoiseEstimate, NoiseParams, add_noise, estimate, mean_read_noise,
                               noise_params_from_iso, noise_variance_map, parse_noise, sample_noise_params)

SHOT_LEVELS = (1e-3, 4e-3, 1.2e-2)


def _read_of(shot):
    """Brooks et al.'s mean read noise for a shot level, written out independently."""
    return float(np.exp(2.18 * np.log(shot) + 1.20))


def _mosaic_rggb(rgb):
    h, w, _ = rgb.shape
    m = np.empty((h, w), np.float32)
    m[0::2, 0::2] = rgb[0::2, 0::2, 0]
    m[0::2, 1::2] = rgb[0::2, 1::2, 1]
    m[1::2, 0::2] = rgb[1::2, 0::2, 1]
    m[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return m


def _patch_chart(rng, size=512, patch=32, lo=3e-4, hi=0.95):
    """Piecewise-constant mosaic: square patches with log-uniform levels (a step chart)."""
    n = size // patch
    levels = np.exp(rng.uniform(np.log(lo), np.log(hi), (n, n)))
    return np.kron(levels, np.ones((patch, patch))).astype(np.float32)


def _scene_mosaic(seed, size=512, falloff_decades=3.0):
    """A generate_scene() radiance, mosaiced, exposed so the top 1 % is near white.

    Read noise is only observable where it is a sizeable part of the variance, i.e. in deep
    shadows; a smooth illumination fall-off across the frame (``falloff_decades`` decades
    from left to right, like a light source off to one side) guarantees such regions.
    """
    s = generate_scene(np.random.default_rng(seed), size=size)
    m = _mosaic_rggb(s.radiance)
    m = m / np.percentile(m, 99) * 0.9
    if falloff_decades:
        m = m * (10.0 ** (-falloff_decades * (np.arange(size) + 0.5) / size))[None, :]
    return m.astype(np.float32)


# --------------------------------------------------------------------------- params


def test_noise_params_round_trip_and_validation():
    p = NoiseParams(4e-3, 2e-5, row_sigma=1e-3)
    assert NoiseParams.from_dict(p.to_dict()) == p
    assert p.to_dict() == {"lambda_shot": 4e-3, "lambda_read": 2e-5, "row_sigma": 1e-3}
    np.testing.assert_allclose(p.variance([-1.0, 0.0, 0.5]), [2e-5, 2e-5, 2e-3 + 2e-5])
    with pytest.raises(ValueError):
        NoiseParams(-1e-3, 0.0)
    with pytest.raises(ValueError):
        NoiseParams(1e-3, float("nan"))
    with pytest.raises(ValueError, match="unknown"):
        NoiseParams.from_dict({"lambda_shot": 1e-3, "lambda_read": 1e-6, "shot": 1.0})


def test_mean_read_noise_and_presets():
    for shot in SHOT_LEVELS:
        assert mean_read_noise(shot) == pytest.approx(_read_of(shot), rel=1e-12)
    assert NOISE_PRESETS["high"].lambda_shot == 0.012
    assert NOISE_PRESETS["high"].lambda_read == pytest.approx(_read_of(0.012), rel=1e-12)
    assert NOISE_PRESETS["low"].lambda_shot < NOISE_PRESETS["high"].lambda_shot
    assert NOISE_PRESETS["low"].lambda_read == pytest.approx(_read_of(NOISE_PRESETS["low"].lambda_shot))


def test_sample_noise_params_follows_brooks_distribution():
    rng = np.random.default_rng(2019)
    ps = [sample_noise_params(rng) for _ in range(5000)]
    shot = np.array([p.lambda_shot for p in ps])
    read = np.array([p.lambda_read for p in ps])
    assert shot.min() >= 1e-4 and shot.max() <= 1.2e-2
    ls, lr = np.log(shot), np.log(read)
    # log(shot) uniform on [log 1e-4, log 1.2e-2]: mean and standard deviation of a uniform
    # (standard errors 0.02 and 0.01) and its quartiles.
    lo, hi = np.log(1e-4), np.log(1.2e-2)
    assert ls.mean() == pytest.approx((lo + hi) / 2, abs=0.08)
    assert ls.std() == pytest.approx((hi - lo) / np.sqrt(12), rel=0.03)
    np.testing.assert_allclose(np.quantile(ls, [0.25, 0.75]), [lo + (hi - lo) / 4, lo + 3 * (hi - lo) / 4],
                               atol=0.12)
    # Regression of log(read) on log(shot): slope 2.18 (s.e. 0.003), intercept 1.20
    # (s.e. 0.02), residual standard deviation 0.26.
    slope, intercept = np.polyfit(ls, lr, 1)
    assert slope == pytest.approx(2.18, abs=0.015)
    assert intercept == pytest.approx(1.20, abs=0.1)
    assert np.std(lr - (slope * ls + intercept)) == pytest.approx(0.26, rel=0.05)

    narrow = [sample_noise_params(rng, shot_range=(1e-3, 2e-3)).lambda_shot for _ in range(500)]
    assert min(narrow) >= 1e-3 and max(narrow) <= 2e-3
    with pytest.raises(ValueError):
        sample_noise_params(rng, shot_range=(1e-2, 1e-3))


def test_noise_params_from_iso_is_linear_in_iso():
    assert noise_params_from_iso(100).lambda_shot == pytest.approx(1e-4)
    assert noise_params_from_iso(3200).lambda_shot == pytest.approx(3.2e-3)
    assert noise_params_from_iso(800, base_iso=200, base_shot=2e-4).lambda_shot == pytest.approx(8e-4)
    p = noise_params_from_iso(1600)
    assert p.lambda_read == pytest.approx(_read_of(1.6e-3), rel=1e-12)
    assert noise_params_from_iso(0).lambda_shot == 0.0


def test_parse_noise():
    assert parse_noise("low") == NOISE_PRESETS["low"]
    assert parse_noise(" HIGH ") == NOISE_PRESETS["high"]
    p = parse_noise("0.004")
    assert p.lambda_shot == 0.004 and p.lambda_read == pytest.approx(_read_of(0.004))
    assert parse_noise(0.004) == p
    assert parse_noise("none") == NoiseParams(0.0, 0.0)
    fixed = NoiseParams(1e-3, 1e-6)
    assert parse_noise(fixed) is fixed

    for spec in ("1e-3:4e-3", (1e-3, 4e-3)):
        sampler = parse_noise(spec)
        assert callable(sampler) and not isinstance(sampler, NoiseParams)
        shots = np.array([sampler(np.random.default_rng(i)).lambda_shot for i in range(400)])
        assert shots.min() >= 1e-3 and shots.max() <= 4e-3
        # log-uniform: the geometric midpoint splits the samples in half.
        assert np.mean(shots < np.sqrt(1e-3 * 4e-3)) == pytest.approx(0.5, abs=0.08)
        assert sampler(np.random.default_rng(5)) == sampler(np.random.default_rng(5))

    for bad in ("loud", "4e-3:1e-3", "-1", "a:b", "1:2:3", ""):
        with pytest.raises(ValueError):
            parse_noise(bad)


# --------------------------------------------------------------------------- synthesis


@pytest.mark.parametrize("shot,read", [(1.2e-2, 2.2e-4), (1e-3, 1e-6)])
def test_add_noise_variance_matches_model_on_flat_patches(shot, read):
    rng = np.random.default_rng(11)
    params = NoiseParams(shot, read)
    for level in (0.0, 0.02, 0.25, 0.8):
        clean = np.full((500, 400), level, np.float32)
        noisy = add_noise(clean, params, rng)
        assert noisy.dtype == np.float32 and noisy.shape == clean.shape
        expected = shot * level + read
        # 2e5 samples: the variance has a relative standard error of 0.3 %.
        assert np.var(noisy.astype(np.float64)) == pytest.approx(expected, rel=0.05)
        assert abs(noisy.mean() - level) < 5 * np.sqrt(expected / clean.size)


def test_add_noise_shapes_seeds_and_samplers():
    clean = np.random.default_rng(0).uniform(0, 1, (16, 24, 3)).astype(np.float32)
    p = NoiseParams(4e-3, 2e-5)
    a = add_noise(clean, p, np.random.default_rng(3))
    b = add_noise(clean, p, np.random.default_rng(3))
    assert a.shape == clean.shape and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.array_equal(a, add_noise(clean, p, np.random.default_rng(4)))
    # A sampler is called with the generator, then used like fixed parameters.
    sampler = parse_noise("1e-3:1.2e-2")
    c = add_noise(clean, sampler, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    drawn = sampler(rng)
    np.testing.assert_array_equal(c, add_noise(clean, drawn, rng))


def test_row_noise_adds_one_offset_per_row():
    p = NoiseParams(0.0, 0.0, row_sigma=0.01)
    clean = np.full((4000, 64), 0.3, np.float32)
    noisy = add_noise(clean, p, np.random.default_rng(1), row_noise=True)
    offsets = noisy - clean
    # Constant along each row; across rows a Gaussian with sigma row_sigma (s.e. 1.1 %).
    assert np.ptp(offsets, axis=1).max() < 1e-6
    assert offsets[:, 0].std() == pytest.approx(0.01, rel=0.05)
    # Without the flag, row_sigma is ignored.
    np.testing.assert_array_equal(add_noise(clean, p, np.random.default_rng(1)), clean)


def test_noise_variance_map():
    noisy = np.array([[-0.2, 0.0], [0.5, 1.5]], np.float32)
    v = noise_variance_map(noisy, NoiseParams(1e-2, 1e-4))
    assert v.dtype == np.float32
    np.testing.assert_allclose(v, [[1e-4, 1e-4], [5e-3 + 1e-4, 1.5e-2 + 1e-4]], rtol=1e-6)


# --------------------------------------------------------------------------- estimation


def _check(est, shot, read, tol):
    assert isinstance(est, NoiseEstimate)
    assert est.lambda_shot == pytest.approx(shot, rel=tol)
    assert est.lambda_read == pytest.approx(read, rel=tol)


def test_estimate_is_unbiased_on_flat_fields():
    # 64 flat patches of known levels spanning 1e-3..0.8 on a 1024x1024 mosaic: the pooled
    # fit has about 1 % statistical error, so a 4 % tolerance checks the calibration.
    levels = np.geomspace(1e-3, 0.8, 64).reshape(8, 8)
    clean = np.kron(levels, np.ones((128, 128))).astype(np.float32)
    shot, read = 4e-3, 2e-5
    est = estimate(add_noise(clean, NoiseParams(shot, read), np.random.default_rng(0)))
    _check(est, shot, read, 0.04)
    # Nearly every block of the four CFA planes is flat and used (the truncation at 1.5x
    # the model drops about 6 % of pure-noise blocks).
    assert est.n_samples > 0.85 * 4 * (1024 // 16) ** 2


@pytest.mark.parametrize("shot", SHOT_LEVELS)
def test_estimate_on_piecewise_constant_mosaic(shot):
    rng = np.random.default_rng(int(shot * 1e5))
    clean = _patch_chart(rng)
    read = _read_of(shot)
    noisy = np.minimum(add_noise(clean, NoiseParams(shot, read), rng), 1.0)  # saturates at white
    _check(estimate(noisy), shot, read, 0.2)


@pytest.mark.parametrize("shot", SHOT_LEVELS)
@pytest.mark.parametrize("seed", [3, 17])
def test_estimate_on_generated_scene(shot, seed):
    clean = _scene_mosaic(seed)
    read = _read_of(shot)
    rng = np.random.default_rng(seed)
    noisy = np.minimum(add_noise(clean, NoiseParams(shot, read), rng), 1.0)
    _check(estimate(noisy), shot, read, 0.2)


@pytest.mark.parametrize("shot", SHOT_LEVELS)
def test_estimate_shot_noise_on_textured_scene_without_shadows(shot):
    # Without deep shadows the read noise is unidentifiable, but the shot noise (the slope)
    # must still come out right despite textures, clutter and edges.
    clean = _scene_mosaic(5, falloff_decades=0.0)
    noisy = add_noise(clean, NoiseParams(shot, _read_of(shot)), np.random.default_rng(1))
    assert estimate(noisy).lambda_shot == pytest.approx(shot, rel=0.1)


@pytest.mark.parametrize("shot", SHOT_LEVELS)
def test_estimate_from_raw_image_normalises_itself(shot):
    rng = np.random.default_rng(42)
    clean = _patch_chart(rng)
    read = _read_of(shot)
    noisy = np.minimum(add_noise(clean, NoiseParams(shot, read), rng), 1.0)
    black = np.array([2048.0, 2050.0, 2047.0, 2049.0])
    white = 16383.0
    bmap = np.tile(black.reshape(2, 2), (clean.shape[0] // 2, clean.shape[1] // 2))
    data = np.clip(np.round(bmap + noisy * (white - bmap)), 0, white).astype(np.uint16)
    raw = RawImage(data, CameraMeta(cfa="GRBG", black_level=tuple(black), white_level=white))
    est = estimate(raw)
    _check(est, shot, read, 0.2)
    assert [c.name for c in est.per_channel] == ["R", "G", "B"]
    # Green has two CFA positions, so twice the samples of red or blue.
    r, g, b = est.per_channel
    assert g.n_samples == pytest.approx(r.n_samples + b.n_samples, rel=0.15)
    for c in est.per_channel:
        assert c.lambda_shot == pytest.approx(shot, rel=0.25)
        assert c.lambda_read == pytest.approx(read, rel=0.25)
    # The same numbers when the caller normalises the array and passes black / white.
    est2 = estimate(data, cfa="GRBG", black=black, white=white)
    assert est2.lambda_shot == pytest.approx(est.lambda_shot, rel=1e-9)
    assert est2.lambda_read == pytest.approx(est.lambda_read, rel=1e-9)


def test_estimate_ignores_clipped_pixels():
    # Half the frame is blown out at white; the other half carries the information.
    rng = np.random.default_rng(8)
    clean = _patch_chart(rng, hi=0.6)
    clean[:, 256:] = 1.3
    shot, read = 4e-3, _read_of(4e-3)
    noisy = np.minimum(add_noise(clean, NoiseParams(shot, read), rng), 1.0)
    est = estimate(noisy)
    _check(est, shot, read, 0.2)
    blocks = 4 * (512 // 16) ** 2  # four CFA planes of 8x8 blocks
    assert est.n_samples < 0.55 * blocks


@pytest.mark.parametrize("shot", SHOT_LEVELS)
def test_estimate_shot_noise_with_float_data_clipped_at_zero_and_one(shot):
    # Clipping at 0 erases the deep shadows (so lambda_read is not asserted), but the
    # clipped pixels are detected and dropped, and the slope stays right.
    rng = np.random.default_rng(4)
    clean = _patch_chart(rng)
    noisy = np.clip(add_noise(clean, NoiseParams(shot, _read_of(shot)), rng), 0.0, 1.0)
    assert estimate(noisy).lambda_shot == pytest.approx(shot, rel=0.1)


def test_estimate_rejects_bad_input():
    with pytest.raises(ValueError):
        estimate(np.zeros((16, 16), np.float32))
    with pytest.raises(ValueError):
        estimate(np.zeros((64, 64, 3), np.float32))
    lin = RawImage(np.zeros((64, 64, 3), np.uint16), CameraMeta(cfa=None, linear=True))
    with pytest.raises(ValueError, match="linear"):
        estimate(lin)
