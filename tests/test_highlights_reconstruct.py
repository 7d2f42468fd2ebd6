"""``highlights: {method: reconstruct}``: the Numba kernel against a slow pure-NumPy reference, the
torch twin and the fused schedule against the kernel, and a synthetic scene with known truth
where it beats ``clip`` inside the clipped region."""

from __future__ import annotations

import numpy as np
import pytest

from rawcv.errors import PipelineError
from rawcv.isp import mosaic_rgb
from rawcv.isp.highlights import WHITE_POINT, clip_highlights, reconstruct_highlights
from rawcv.meta import BAYER_PATTERNS, CameraMeta, RawImage
from rawcv.pipeline import Pipeline
from rawcv.pipeline.schedule import plan

SHAPES = ((2, 2), (2, 3), (3, 5), (6, 8), (9, 12), (13, 18))
RECONSTRUCT = {"stage": "highlights", "method": "reconstruct"}
XYZ_TO_CAM = ((0.9020, -0.2890, -0.0715), (-0.4535, 1.2436, 0.2348), (-0.0934, 0.1919, 0.7086))


def reference(mosaic, cfa, saturation=None, white=1.0):
    """The algorithm written out photosite by photosite, in float32 where the kernel is."""
    m = np.asarray(mosaic, np.float32)
    h, w = m.shape
    white = np.float32(white)
    clipped = m >= white * np.float32(1 - 2 ** -20) if saturation is None else np.asarray(saturation, bool)

    def colour(y, x):
        return "RGB".index(cfa[2 * (y % 2) + x % 2])

    def mirror(i, n):
        return -i if i < 0 else 2 * n - 2 - i if i >= n else i

    def opposed(y, x):
        total, count = np.float32(0), 0
        for yy in (mirror(y - 1, h), y, mirror(y + 1, h)):
            for xx in (mirror(x - 1, w), x, mirror(x + 1, w)):
                if colour(yy, xx) != colour(y, x) and not clipped[yy, xx]:
                    total, count = np.float32(total + m[yy, xx]), count + 1
        return (np.float32(total / np.float32(count)) if count else None), count

    diffs = {0: [], 1: [], 2: []}
    for y in range(h):
        for x in range(w):
            near = clipped[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3].any()
            mean, count = opposed(y, x)
            if near and not clipped[y, x] and count:
                d = np.float32(m[y, x] - mean)
                if np.isfinite(d):
                    diffs[colour(y, x)].append(float(d))
    offsets = [np.float32(np.mean(diffs[c])) if diffs[c] else np.float32(0) for c in range(3)]
    out = m.copy()
    for y, x in zip(*np.nonzero(clipped)):
        mean, count = opposed(y, x)
        estimate = np.float32(mean + offsets[colour(y, x)]) if count else white
        out[y, x] = max(estimate, white)
    return out


def random_mosaic(shape, seed, cfa="RGGB"):
    """A noisy bright blob whose red clips first, then green, with a patch blown in every colour and
    scattered photosites at exactly the white point (a random layout per seed)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    light = 0.1 + 1.1 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (max(h, w) / 3) ** 2))
    rgb = np.stack([1.6 * light, light, 0.7 * light], -1) * rng.uniform(0.8, 1.2, (h, w, 3))
    m = mosaic_rgb(rgb.astype(np.float32), cfa=cfa)
    m[-3:, -3:] = 1.5
    m[rng.random(shape) < 0.05] = 1.0
    return m


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_numba_equals_the_reference(cfa, shape):
    for seed in range(3):
        m = random_mosaic(shape, seed, cfa)
        got = reconstruct_highlights(m, cfa=cfa)
        np.testing.assert_allclose(got, reference(m, cfa), rtol=1e-6, atol=1e-6)
        # never below clip: the same where nothing clipped, at least the white point where it did
        assert np.all(got[m < 0.999] == m[m < 0.999]) and np.all(got >= clip_highlights(m))


def test_the_kernel_on_a_mosaic_computed_by_hand():
    # RGGB 5 x 5, red 0.9, green and blue 0.5, but a brighter spot of greens at 0.9 around the
    # clipped red photosite (2, 2). Its opposed mean: (4 x 0.9 + 4 x 0.5) / 8 = 0.7. The eight
    # other reds are within two photosites of it: the corners see only 0.5 around them (mirrored
    # borders), 0.9 - 0.5 = 0.4; the edge middles see two 0.9 greens, 0.9 - 4.8 / 8 = 0.3; so the
    # red offset is 0.35 and the clipped red becomes 0.7 + 0.35 = 1.05
    m = np.tile(np.array([[0.9, 0.5], [0.5, 0.5]], np.float32), (3, 3))[:5, :5]
    m[1:4, 1:4] = [[0.5, 0.9, 0.5], [0.9, 1.0, 0.9], [0.5, 0.9, 0.5]]
    got = reconstruct_highlights(m, cfa="RGGB")
    assert got[2, 2] == pytest.approx(1.05, abs=1e-6)
    assert np.array_equal(np.delete(got.ravel(), 12), np.delete(m.ravel(), 12))


def test_blown_everywhere_is_white_and_nothing_clipped_is_unchanged():
    assert np.all(reconstruct_highlights(np.full((5, 6), 1.9492, np.float32), cfa="GBRG") == WHITE_POINT)
    m = np.random.default_rng(0).uniform(0, 0.99, (7, 9)).astype(np.float32)
    assert np.array_equal(reconstruct_highlights(m, cfa="BGGR"), m)


def test_a_nan_stays_nan_and_poisons_nothing():
    m = random_mosaic((9, 12), 1)
    m[0, 0] = np.nan
    got = reconstruct_highlights(m, cfa="RGGB")
    assert np.isnan(got[0, 0]) and np.isfinite(got.ravel()[1:]).all()


def test_a_given_saturation_mask_decides_what_is_clipped():
    m = random_mosaic((9, 12), 2)
    mask = np.zeros(m.shape, bool)
    mask[4:6, 4:7] = True
    got = reconstruct_highlights(m, cfa="GRBG", saturation=mask)
    np.testing.assert_allclose(got, reference(m, "GRBG", saturation=mask), rtol=1e-6, atol=1e-6)
    assert np.array_equal(got[~mask], m[~mask])
    with pytest.raises(ValueError, match="saturation must be a mask of the mosaic's shape"):
        reconstruct_highlights(m, cfa="GRBG", saturation=mask[:-1])
    with pytest.raises(ValueError, match="2-D Bayer mosaic"):
        reconstruct_highlights(np.zeros((4, 4, 3), np.float32), cfa="RGGB")


# --- torch ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_torch_twin_equals_numba_for_every_layout(shape):
    torch = pytest.importorskip("torch")
    from rawcv.torch.isp.highlights import reconstruct_highlights as reconstruct_torch

    mosaics = [random_mosaic(shape, seed, cfa) for seed, cfa in enumerate(BAYER_PATTERNS)]
    batch = torch.from_numpy(np.stack(mosaics))[:, None]
    got = reconstruct_torch(batch, cfa=list(BAYER_PATTERNS))           # one batch, a layout per sample
    for m, cfa, out in zip(mosaics, BAYER_PATTERNS, got):
        ref = reconstruct_highlights(m, cfa=cfa)
        np.testing.assert_allclose(out[0].numpy(), ref, rtol=1e-6, atol=1e-6, err_msg=cfa)
        alone = reconstruct_torch(torch.from_numpy(m), cfa=cfa)         # H x W in, H x W out
        np.testing.assert_allclose(alone.numpy(), ref, rtol=1e-6, atol=1e-6, err_msg=cfa)
    mask = mosaics[0] > 1.2
    np.testing.assert_allclose(
        reconstruct_torch(torch.from_numpy(mosaics[0]), cfa="RGGB", saturation=torch.from_numpy(mask)).numpy(),
        reconstruct_highlights(mosaics[0], cfa="RGGB", saturation=mask), rtol=1e-6, atol=1e-6)


def test_torch_twin_gradcheck_through_the_estimates():
    torch = pytest.importorskip("torch")
    from rawcv.torch.isp.highlights import reconstruct_highlights as reconstruct_torch

    # no value near the white point, where a step of eps would change what counts as clipped
    cfas = ["RGGB", "GBRG"]
    m = np.stack([random_mosaic((6, 8), 2, cfa) for cfa in cfas]).astype(np.float64)[:, None]
    m = np.where(m >= 1.0, 1.2 + m, np.minimum(m, 0.9))
    x = torch.from_numpy(m).requires_grad_(True)
    rebuilt = reconstruct_torch(x, cfa=cfas).detach().numpy()
    assert ((m >= 1) & (rebuilt > 1)).sum() >= 6          # estimates above the white point: the path under test
    assert torch.autograd.gradcheck(lambda a: reconstruct_torch(a, cfa=cfas), (x,), eps=1e-6, atol=1e-4)


# --- in pipelines -----------------------------------------------------------------------------------

def sensor_raw(cfa, shape=(37, 50), seed=0) -> RawImage:
    """Sensor values with a bright orange blob: red clips first, then green, in the middle all three."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    light = 0.1 + 1.6 * np.exp(-((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (2 * (w / 6) ** 2))
    rgb = np.stack([light, 0.6 * light, 0.35 * light], -1) * rng.uniform(0.95, 1.05, (h, w, 1))
    levels = np.clip(600 + rgb * (15520 - 600), 0, 16383).astype(np.float32)
    data = mosaic_rgb(levels, cfa=cfa).astype(np.uint16)
    return RawImage(data, CameraMeta(cfa, black_level=600, white_level=15520, as_shot_wb=(1.9, 1.0, 1.4),
                                     xyz_to_cam=XYZ_TO_CAM))


STEPS = ["black_level", "white_balance", RECONSTRUCT, "demosaic", "color_matrix", "gamma"]


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_fused_equals_numba_and_reconstruct_runs_on_its_own(cfa):
    raw = sensor_raw(cfa)
    pipeline = Pipeline(STEPS + ["quantize"])
    numba, fused = (pipeline.run(raw, backend=b) for b in ("numba", "fused"))
    assert np.array_equal(fused.image, numba.image) and fused.record == numba.record
    # white balance does not take reconstruct into its loop as it takes clip
    assert [g.names for g in plan(pipeline.stages, "raw")][:2] == [["black_level", "white_balance"], ["highlights"]]
    clip = Pipeline([s if s != RECONSTRUCT else "highlights" for s in STEPS + ["quantize"]])(raw)
    assert not np.array_equal(numba.image, clip)


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_torch_backend_equals_numba_in_a_pipeline(cfa):
    pytest.importorskip("torch")
    from rawcv.torch.backend import run_pipeline_torch

    raws = [sensor_raw(cfa, seed=i) for i in range(2)]
    pipeline = Pipeline(STEPS)
    got = run_pipeline_torch(pipeline, raws, device="cpu")
    for raw, out in zip(raws, got):
        np.testing.assert_allclose(out.permute(1, 2, 0).numpy(), pipeline(raw), rtol=1e-5, atol=1e-5)


def test_linear_raw_falls_back_to_clip_and_says_so():
    rng = np.random.default_rng(5)
    data = rng.integers(0, 4096, (9, 12, 3)).astype(np.uint16)
    raw = RawImage(data, CameraMeta(None, black_level=64, white_level=4000, as_shot_wb=(1.9, 1.0, 1.4), linear=True))
    result = Pipeline(["black_level", "white_balance", RECONSTRUCT]).run(raw)
    assert np.array_equal(result.image, Pipeline(["black_level", "white_balance", "highlights"])(raw))
    record = [r for r in result.record if r["stage"] == "highlights"][0]
    assert record["method"] == "reconstruct" and record["fallback"].startswith("clip")


def test_an_unknown_method_names_the_stage_and_the_choices():
    with pytest.raises(PipelineError, match="stage 'highlights': parameter 'method' must be one of clip, reconstruct"):
        Pipeline(["black_level", {"stage": "highlights", "method": "inpaint"}])


# --- a scene with known truth ------------------------------------------------------------------------

def psnr(estimate, truth, where) -> float:
    """PSNR in dB against the white point (1.0) as the peak, over ``where``."""
    return float(10 * np.log10(1.0 / np.mean((estimate[where] - truth[where]) ** 2)))


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_reconstruct_beats_clip_inside_the_clipped_region(cfa):
    # a smooth linear scene: two blobs of light on a ramp, red 1.9 times the light (so it clips
    # first), green and blue below it with hues that drift across the frame; the sensor clips at
    # 1.0, which only red reaches (up to 1.77, on 174-184 photosites). Measured inside them, PSNR
    # with the white point as peak: clip 8.9-9.1 dB, reconstruct 10.1-10.2 dB (RGGB 8.97 -> 10.16,
    # BGGR 9.12 -> 10.11, GRBG 8.87 -> 10.16, GBRG 9.04 -> 10.13): a fifth less squared error
    h, w = 64, 96
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)

    def blob(cy, cx, s):
        return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s))

    light = 0.1 + 0.8 * blob(24, 30, 10) + 0.6 * blob(40, 70, 9) + 0.1 * x / w
    truth_rgb = np.stack([1.9 * light, (0.55 + 0.25 * x / w) * light, (0.3 + 0.5 * y / h) * light], -1)
    truth = mosaic_rgb(truth_rgb.astype(np.float32), cfa=cfa)
    recorded = np.minimum(truth, 1.0)
    clipped = truth >= 1.0
    assert 100 < clipped.sum() and truth_rgb[..., 1:].max() < 1.0          # only red clipped
    rebuilt = reconstruct_highlights(recorded, cfa=cfa)
    clip, ours = psnr(clip_highlights(recorded), truth, clipped), psnr(rebuilt, truth, clipped)
    assert ours > clip + 0.5, (clip, ours)
    assert np.array_equal(rebuilt[~clipped], truth[~clipped])              # the rest is left alone
