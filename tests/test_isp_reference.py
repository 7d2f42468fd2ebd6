"""Every ISP stage of :mod:`rawcv.isp` against an independent reference.

References are OpenCV, SciPy, plain NumPy written here (slow, explicit loops), or analytic values.
The CFA layout is re-derived here from the pattern's letters (not through :mod:`rawcv.meta`), so a
wrong channel map in rawcv cannot hide behind the same wrong map in the test.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage

from rawcv import isp

LAYOUTS = ("RGGB", "BGGR", "GRBG", "GBRG")
LETTER = {"R": 0, "G": 1, "B": 2}
OPENCV_CODE = {
    "RGGB": cv2.COLOR_BayerRGGB2RGB,
    "BGGR": cv2.COLOR_BayerBGGR2RGB,
    "GRBG": cv2.COLOR_BayerGRBG2RGB,
    "GBRG": cv2.COLOR_BayerGBRG2RGB,
}
# Nikon D3200 ColorMatrix1 (XYZ D65 -> camera), from ../shared/raw-samples/README.md
NIKON_XYZ_TO_CAM = np.array([[0.9020, -0.2890, -0.0715],
                             [-0.4535, 1.2436, 0.2348],
                             [-0.0934, 0.1919, 0.7086]])


def channel_map(cfa: str) -> list:
    """2x2 list of channel ids, read from the letters in raster order."""
    return [[LETTER[cfa[0]], LETTER[cfa[1]]], [LETTER[cfa[2]], LETTER[cfa[3]]]]


def channel_at(cfa: str, shape) -> np.ndarray:
    """H x W array of the channel id of every pixel of a mosaic."""
    h, w = shape
    cm = np.array(channel_map(cfa))
    return cm[np.arange(h)[:, None] % 2, np.arange(w)[None, :] % 2]


def make_mosaic(rgb: np.ndarray, cfa: str) -> np.ndarray:
    """Sample an RGB image through a CFA (independent of ``isp.mosaic_rgb``)."""
    out = np.empty(rgb.shape[:2], dtype=rgb.dtype)
    cm = channel_map(cfa)
    for dy in range(2):
        for dx in range(2):
            out[dy::2, dx::2] = rgb[dy::2, dx::2, cm[dy][dx]]
    return out


def mirror(i: int, n: int) -> int:
    """Reflect-101 index: -1 reads 1, n reads n - 2."""
    if i < 0:
        return -i
    if i >= n:
        return 2 * n - 2 - i
    return i


def reference_bilinear(mosaic: np.ndarray, cfa: str) -> np.ndarray:
    """Slow bilinear demosaic: each missing colour is the mean of the 3x3 neighbours of that colour.

    Neighbours outside the image are read through a reflect-101 mirror (which keeps the CFA phase).
    At a red/blue pixel that is the 4 cross greens and the 4 diagonal blues/reds; at a green pixel
    the 2 horizontal and the 2 vertical neighbours.
    """
    m = mosaic.astype(np.float64)
    h, w = m.shape
    cm = channel_map(cfa)
    out = np.zeros((h, w, 3))
    for y in range(h):
        for x in range(w):
            own = cm[y % 2][x % 2]
            for c in range(3):
                if c == own:
                    out[y, x, c] = m[y, x]
                    continue
                vals = []
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        if dy == 0 and dx == 0:
                            continue
                        yy, xx = mirror(y + dy, h), mirror(x + dx, w)
                        if cm[yy % 2][xx % 2] == c:
                            vals.append(m[yy, xx])
                assert vals, "every colour has a neighbour in a Bayer 3x3 window"
                out[y, x, c] = sum(vals) / len(vals)
    return out


# ------------------------------------------------------------------------------------------------
# demosaic
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cfa", LAYOUTS)
def test_opencv_bayer_names_are_the_literal_top_left_pattern(cfa):
    """R, G, B planes of distinct constants: OpenCV (5.x) and rawcv both return them unchanged."""
    levels = {0: 1000, 1: 2000, 2: 3000}
    rgb = np.empty((10, 12, 3), np.uint16)
    for c in range(3):
        rgb[..., c] = levels[c]
    m = make_mosaic(rgb, cfa)
    ref = cv2.cvtColor(m, OPENCV_CODE[cfa])
    assert np.array_equal(ref[1:-1, 1:-1], rgb[1:-1, 1:-1])
    ours = isp.demosaic_bilinear(m, cfa=cfa)
    assert np.array_equal(ours, rgb.astype(np.float32))  # everywhere, borders included


@pytest.mark.parametrize("shape", [(37, 50), (64, 96), (33, 31)])
@pytest.mark.parametrize("cfa", LAYOUTS)
def test_demosaic_matches_opencv_away_from_border(cfa, shape):
    rng = np.random.default_rng(LAYOUTS.index(cfa) * 1000 + shape[0] * 31 + shape[1])
    m = rng.integers(0, 65536, shape).astype(np.uint16)
    ref = cv2.cvtColor(m, OPENCV_CODE[cfa]).astype(np.float64)
    ours = isp.demosaic_bilinear(m, cfa=cfa).astype(np.float64)
    assert ours.shape == shape + (3,)
    diff = np.abs(ours - ref)[1:-1, 1:-1]
    assert diff.max() <= 1.0  # OpenCV rounds the means to integers


@pytest.mark.parametrize("shape", [(13, 18), (16, 21), (3, 3), (4, 5)])
@pytest.mark.parametrize("cfa", LAYOUTS)
def test_demosaic_matches_numpy_reference_everywhere(cfa, shape):
    rng = np.random.default_rng(sum(map(ord, cfa)) + shape[0] * 100 + shape[1])
    m = rng.random(shape).astype(np.float32)
    ref = reference_bilinear(m, cfa)
    ours = isp.demosaic_bilinear(m, cfa=cfa)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cfa", LAYOUTS)
def test_demosaic_flat_mosaic_gives_flat_image_exactly(cfa):
    for value, dtype in ((1234, np.uint16), (0.5, np.float32), (0.0, np.float32), (65535, np.uint16)):
        flat = np.full((9, 14), value, dtype)
        out = isp.demosaic_bilinear(flat, cfa=cfa)
        assert np.all(out == np.float32(value)), (value, dtype)


@pytest.mark.parametrize("cfa", LAYOUTS)
def test_mosaic_rgb_samples_the_right_channel(cfa):
    rng = np.random.default_rng(5)
    rgb = rng.random((7, 10, 3)).astype(np.float32)
    assert np.array_equal(isp.mosaic_rgb(rgb, cfa=cfa), make_mosaic(rgb, cfa))


@pytest.mark.parametrize("shape", [(12, 16), (15, 19)])
@pytest.mark.parametrize("cfa", LAYOUTS)
def test_demosaic_reconstructs_linear_planes_exactly_in_interior(cfa, shape):
    """Bilinear interpolation is exact for functions linear in x and y (away from the mirror)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([100 + 3 * yy + 5 * xx, 2000 - 7 * yy + 2 * xx, 50 + 11 * yy - xx], axis=2)
    rgb = rgb.astype(np.float32)
    m = isp.mosaic_rgb(rgb, cfa=cfa)
    out = isp.demosaic_bilinear(m, cfa=cfa)
    assert np.array_equal(out[1:-1, 1:-1], rgb[1:-1, 1:-1])


# ------------------------------------------------------------------------------------------------
# denoise
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(23, 30), (16, 17)])
@pytest.mark.parametrize("size", [3, 5])
def test_denoise_rgb_matches_scipy(size, shape):
    rng = np.random.default_rng(size * 1000 + shape[0])
    img = rng.random(shape + (3,)).astype(np.float32)
    mean_ref = ndimage.uniform_filter(img.astype(np.float64), size=(size, size, 1), mode="mirror")
    np.testing.assert_allclose(isp.denoise_mean(img, size=size), mean_ref, rtol=0, atol=1e-6)
    median_ref = ndimage.median_filter(img, size=(size, size, 1), mode="mirror")
    med = isp.denoise_median(img, size=size)
    assert med.dtype == np.float32
    assert np.array_equal(med, median_ref)
    # the dispatcher gives the same
    assert np.array_equal(isp.denoise(img, method="median", size=size), med)


@pytest.mark.parametrize("shape", [(37, 50), (24, 31)])
@pytest.mark.parametrize("size", [3, 5])
@pytest.mark.parametrize("cfa", LAYOUTS)
def test_denoise_mosaic_filters_each_cfa_plane_alone(cfa, size, shape):
    rng = np.random.default_rng(size * 7 + shape[1])
    m = rng.random(shape).astype(np.float32)
    mean_ref = np.empty(shape)
    median_ref = np.empty(shape, np.float32)
    for dy in range(2):
        for dx in range(2):
            plane = m[dy::2, dx::2]
            mean_ref[dy::2, dx::2] = ndimage.uniform_filter(plane.astype(np.float64), size=size, mode="mirror")
            median_ref[dy::2, dx::2] = ndimage.median_filter(plane, size=size, mode="mirror")
    np.testing.assert_allclose(isp.denoise_mean(m, size=size, cfa=cfa), mean_ref, rtol=0, atol=1e-6)
    assert np.array_equal(isp.denoise_median(m, size=size, cfa=cfa), median_ref)


def test_denoise_median_3x3_matches_opencv_interior():
    rng = np.random.default_rng(11)
    img = rng.integers(0, 256, (29, 41, 3)).astype(np.uint8)
    ref = cv2.medianBlur(img, 3)  # BORDER_REPLICATE at the border: interior only
    ours = isp.denoise_median(img, size=3)
    assert np.array_equal(ours[1:-1, 1:-1], ref[1:-1, 1:-1].astype(np.float32))


def test_denoise_median_removes_isolated_hot_pixel_in_mosaic():
    m = np.full((12, 12), 0.25, np.float32)
    m[6, 6] = 1.0
    out = isp.denoise_median(m, size=3, cfa="RGGB")
    assert np.all(out == np.float32(0.25))


def test_denoise_rejects_bad_arguments():
    img = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(ValueError, match="3 or 5"):
        isp.denoise_mean(img, size=4)
    with pytest.raises(ValueError, match="cfa"):
        isp.denoise_median(np.zeros((8, 8), np.float32))


# ------------------------------------------------------------------------------------------------
# black level
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(10, 14), (11, 15)])
def test_subtract_black_level_per_position(shape):
    blacks = [60.0, 64.0, 68.0, 72.0]
    white = 4000.0
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 4500, shape).astype(np.uint16)
    out = isp.subtract_black_level(raw, black=blacks, white=white)
    assert out.dtype == np.float32 and out.shape == shape
    h, w = shape
    expected = np.empty(shape)
    for y in range(h):
        for x in range(w):
            b = blacks[2 * (y % 2) + (x % 2)]
            expected[y, x] = (float(raw[y, x]) - b) / (white - b)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)
    # not clipped: below black stays negative, above white exceeds 1
    assert out.min() < 0 and out.max() > 1


def test_subtract_black_level_scalar_black_and_exact_points():
    raw = np.array([[600, 15520], [1000, 8060]], np.uint16)
    out = isp.subtract_black_level(raw, black=600, white=15520)
    np.testing.assert_allclose(out, [[0.0, 1.0], [400 / 14920, 0.5]], rtol=0, atol=1e-7)


def test_subtract_black_level_linear_uses_first_three_blacks():
    blacks = [10.0, 20.0, 30.0, 40.0]
    rng = np.random.default_rng(4)
    raw = rng.integers(0, 1100, (6, 7, 3)).astype(np.uint16)
    out = isp.subtract_black_level(raw, black=blacks, white=1000)
    expected = (raw.astype(np.float64) - np.array(blacks[:3])) / (1000 - np.array(blacks[:3]))
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


def test_saturation_mask_at_and_above_white():
    raw = np.array([[0, 3999, 4000], [4001, 65535, 2000]], np.uint16)
    mask = isp.saturation_mask(raw, white=4000)
    assert mask.dtype == np.bool_
    assert mask.tolist() == [[False, False, True], [True, True, False]]
    rng = np.random.default_rng(5)
    big = rng.integers(3900, 4100, (9, 13, 3)).astype(np.uint16)
    assert np.array_equal(isp.saturation_mask(big, white=4000), big >= 4000)


def test_black_level_rejects_white_below_black():
    with pytest.raises(ValueError, match="exceed"):
        isp.subtract_black_level(np.zeros((4, 4), np.uint16), black=100, white=50)


# ------------------------------------------------------------------------------------------------
# white balance
# ------------------------------------------------------------------------------------------------

def channel_values(mosaic, cfa, channel):
    return mosaic[channel_at(cfa, mosaic.shape) == channel].astype(np.float64)


@pytest.mark.parametrize("cfa", LAYOUTS)
def test_gray_world_gains_are_ratio_of_channel_means(cfa):
    rng = np.random.default_rng(21)
    scene = np.stack([rng.uniform(0.05, 0.3, (24, 34)), rng.uniform(0.2, 0.8, (24, 34)),
                      rng.uniform(0.1, 0.5, (24, 34))], axis=2).astype(np.float32)
    m = make_mosaic(scene, cfa)
    means = [channel_values(m, cfa, c).mean() for c in range(3)]
    expected = [means[1] / means[0], 1.0, means[1] / means[2]]
    gains = isp.gains_gray_world(m, cfa=cfa)
    np.testing.assert_allclose(gains, expected, rtol=1e-6)


@pytest.mark.parametrize("cfa", LAYOUTS)
def test_gray_world_gains_on_constant_planes_are_exact(cfa):
    scene = np.empty((8, 10, 3), np.float32)
    scene[..., 0], scene[..., 1], scene[..., 2] = 0.2, 0.4, 0.1
    gains = isp.gains_gray_world(make_mosaic(scene, cfa), cfa=cfa)
    assert gains.tolist() == [2.0, 1.0, 4.0]


def test_gray_world_leaves_gray_scene_unchanged():
    rng = np.random.default_rng(22)
    # RGB: R = G = B at every pixel
    gray = np.repeat(rng.uniform(0.05, 0.9, (20, 26, 1)), 3, axis=2).astype(np.float32)
    balanced, gains = isp.white_balance_gray_world(gray)
    np.testing.assert_allclose(gains, [1, 1, 1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(balanced, gray, rtol=0, atol=1e-6)
    # mosaic of a gray scene constant over each 2x2 tile: every CFA position sees the same values
    tiles = rng.uniform(0.05, 0.9, (10, 13)).astype(np.float32)
    mosaic = np.kron(tiles, np.ones((2, 2), np.float32))
    for cfa in LAYOUTS:
        balanced, gains = isp.white_balance_gray_world(mosaic, cfa=cfa)
        np.testing.assert_allclose(gains, [1, 1, 1], rtol=0, atol=1e-6)
        np.testing.assert_allclose(balanced, mosaic, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cfa", LAYOUTS)
def test_gray_world_excludes_saturated_values(cfa):
    rng = np.random.default_rng(23)
    m = rng.uniform(0.1, 0.6, (20, 24)).astype(np.float32)
    chan = channel_at(cfa, m.shape)
    # clip a third of the red values (and a few blue ones) at or above 1
    red = np.argwhere(chan == 0)
    for y, x in red[::3]:
        m[y, x] = 1.0 if (y + x) % 2 else 1.7
    m[np.argwhere(chan == 2)[0][0], np.argwhere(chan == 2)[0][1]] = 1.0
    keep = m < 1.0
    means = [m[(chan == c) & keep].astype(np.float64).mean() for c in range(3)]
    expected = [means[1] / means[0], 1.0, means[1] / means[2]]
    np.testing.assert_allclose(isp.gains_gray_world(m, cfa=cfa), expected, rtol=1e-6)
    # and the saturated values do change the gains if the threshold is raised above them
    means_all = [m[chan == c].astype(np.float64).mean() for c in range(3)]
    np.testing.assert_allclose(isp.gains_gray_world(m, cfa=cfa, saturation=10.0),
                               [means_all[1] / means_all[0], 1.0, means_all[1] / means_all[2]], rtol=1e-6)


def test_gray_world_excludes_saturated_rgb_pixels():
    rng = np.random.default_rng(24)
    img = rng.uniform(0.1, 0.6, (12, 14, 3)).astype(np.float32)
    clipped = img.copy()
    clipped[3, 4, :] = 1.0
    clipped[7, 9, :] = 1.5
    keep = np.ones((12, 14), bool)
    keep[3, 4] = keep[7, 9] = False
    means = img[keep].astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(isp.gains_gray_world(clipped), [means[1] / means[0], 1, means[1] / means[2]],
                               rtol=1e-6)


@pytest.mark.parametrize("cfa", LAYOUTS)
def test_white_world_uses_the_percentile(cfa):
    rng = np.random.default_rng(25)
    m = rng.uniform(0.05, 0.7, (48, 64)).astype(np.float32)
    highs = [np.percentile(channel_values(m, cfa, c), 99.5) for c in range(3)]
    gains = isp.gains_white_world(m, cfa=cfa)
    np.testing.assert_allclose(gains, [highs[1] / highs[0], 1.0, highs[1] / highs[2]], rtol=1e-6)
    highs90 = [np.percentile(channel_values(m, cfa, c), 90.0) for c in range(3)]
    np.testing.assert_allclose(isp.gains_white_world(m, cfa=cfa, percentile=90.0),
                               [highs90[1] / highs90[0], 1.0, highs90[1] / highs90[2]], rtol=1e-6)


@pytest.mark.parametrize("cfa", LAYOUTS)
def test_white_world_ignores_a_single_hot_pixel(cfa):
    rng = np.random.default_rng(26)
    m = rng.uniform(0.05, 0.7, (48, 64)).astype(np.float32)
    chan = channel_at(cfa, m.shape)
    without = isp.gains_white_world(m, cfa=cfa)
    # the hot pixel replaces the brightest red value: every order statistic below it is unchanged
    red_idx = np.argwhere(chan == 0)
    brightest = red_idx[np.argmax(m[chan == 0])]
    hot = m.copy()
    hot[tuple(brightest)] = 0.999           # hot, yet below the white level (clipped values are left out)
    with_hot = isp.gains_white_world(hot, cfa=cfa)
    assert np.array_equal(with_hot, without)
    # whereas a max-based white point would be thrown off by it
    assert hot[chan == 0].max() / m[chan == 0].max() > 1.4


@pytest.mark.parametrize("shape", [(6, 8), (7, 9)])
@pytest.mark.parametrize("cfa", LAYOUTS)
def test_manual_gains_multiply_the_right_positions(cfa, shape):
    rng = np.random.default_rng(27)
    m = rng.uniform(0.1, 0.9, shape).astype(np.float32)
    gains = (2.0, 1.0, 3.0)
    out = isp.white_balance(m, gains, cfa=cfa)
    expected = m.astype(np.float64) * np.array(gains)[channel_at(cfa, shape)]
    np.testing.assert_allclose(out, expected, rtol=1e-7, atol=0)
    # RGB images multiply each channel
    rgb = rng.uniform(0.1, 0.9, shape + (3,)).astype(np.float32)
    np.testing.assert_allclose(isp.white_balance(rgb, gains), rgb * np.array(gains), rtol=1e-7)


def test_white_balance_rejects_bad_gains_and_missing_cfa():
    with pytest.raises(ValueError, match="positive"):
        isp.white_balance(np.ones((4, 4, 3), np.float32), (1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="cfa"):
        isp.white_balance(np.ones((4, 4), np.float32), (1.0, 1.0, 1.0))


def test_normalize_gains_sets_green_to_one():
    np.testing.assert_allclose(isp.normalize_gains([2.0, 0.5, 1.0]), [4.0, 1.0, 2.0], rtol=1e-7)


# ------------------------------------------------------------------------------------------------
# vignetting
# ------------------------------------------------------------------------------------------------

def true_gain(shape, k1, k2, k3, center=(0.5, 0.5)):
    h, w = shape
    cx, cy = center[0] * (w - 1), center[1] * (h - 1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rmax2 = max((y - cy) ** 2 + (x - cx) ** 2 for y in (0, h - 1) for x in (0, w - 1))
    r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / rmax2
    return 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3


def test_vignetting_gain_analytic_values():
    g = isp.vignetting_gain((9, 13), k1=0.3, k2=0.2, k3=0.1)
    assert g.shape == (9, 13) and g.dtype == np.float32
    assert g[4, 6] == 1.0                                   # centre
    for y, x in ((0, 0), (0, 12), (8, 0), (8, 12)):         # corners: r = 1
        assert abs(g[y, x] - 1.6) < 1e-6
    r2 = 16 / (16 + 36)                                     # top edge midpoint: dy = 4, rmax^2 = 4^2 + 6^2
    assert abs(g[0, 6] - (1 + 0.3 * r2 + 0.2 * r2 ** 2 + 0.1 * r2 ** 3)) < 1e-6
    np.testing.assert_allclose(g, true_gain((9, 13), 0.3, 0.2, 0.1), rtol=0, atol=1e-6)
    off = isp.vignetting_gain((10, 16), k1=0.5, center=(0.25, 0.75))
    np.testing.assert_allclose(off, true_gain((10, 16), 0.5, 0, 0, (0.25, 0.75)), rtol=0, atol=1e-6)


def test_correct_vignetting_multiplies_every_channel_by_the_gain():
    rng = np.random.default_rng(31)
    img = rng.random((9, 11, 3)).astype(np.float32)
    g = true_gain((9, 11), 0.4, 0.1, 0.05)
    np.testing.assert_allclose(isp.correct_vignetting(img, k1=0.4, k2=0.1, k3=0.05), img * g[:, :, None],
                               rtol=1e-6)
    np.testing.assert_allclose(isp.apply_vignetting(img, k1=0.4, k2=0.1, k3=0.05), img / g[:, :, None],
                               rtol=1e-6)


K_SETS = [(0.4, 0.1, 0.0), (0.3, -0.2, 0.15), (0.6, 0.2, 0.1), (0.05, 0.0, 0.0)]


@pytest.mark.parametrize("ks", K_SETS)
def test_fit_vignetting_recovers_coefficients_rgb(ks):
    shape = (48, 64)
    levels = np.array([0.3, 0.5, 0.2], np.float32)
    flat = np.broadcast_to(levels, shape + (3,)).astype(np.float32)
    vignetted = isp.apply_vignetting(flat, k1=ks[0], k2=ks[1], k3=ks[2])
    model = isp.fit_vignetting(vignetted)
    np.testing.assert_allclose([model.k1, model.k2, model.k3], ks, rtol=0, atol=1e-4)
    corrected = isp.correct_vignetting(vignetted, k1=model.k1, k2=model.k2, k3=model.k3)
    assert np.max(np.abs(corrected / levels - 1)) < 0.01


@pytest.mark.parametrize("ks", K_SETS)
@pytest.mark.parametrize("cfa", ["RGGB", "GBRG"])
def test_fit_vignetting_recovers_coefficients_mosaic(ks, cfa):
    shape = (48, 64)
    levels = np.array([0.25, 0.6, 0.15], np.float32)   # different level per channel
    scene = np.broadcast_to(levels, shape + (3,)).astype(np.float32)
    mosaic = isp.apply_vignetting(make_mosaic(scene, cfa), k1=ks[0], k2=ks[1], k3=ks[2])
    model = isp.fit_vignetting(mosaic, cfa=cfa)
    np.testing.assert_allclose([model.k1, model.k2, model.k3], ks, rtol=0, atol=1e-4)
    corrected = isp.correct_vignetting(mosaic, k1=model.k1, k2=model.k2, k3=model.k3)
    expected = make_mosaic(scene, cfa)
    assert np.max(np.abs(corrected / expected - 1)) < 0.01


@pytest.mark.parametrize("center", [(0.3, 0.7), (0.0, 1.0)])
def test_fit_vignetting_off_centre(center):
    shape = (41, 57)   # odd sizes
    levels = np.array([0.3, 0.5, 0.2], np.float32)
    flat = np.broadcast_to(levels, shape + (3,)).astype(np.float32)
    vignetted = isp.apply_vignetting(flat, k1=0.4, k2=0.1, k3=0.05, center=center)
    np.testing.assert_allclose(vignetted, flat / true_gain(shape, 0.4, 0.1, 0.05, center)[:, :, None], rtol=1e-6)
    model = isp.fit_vignetting(vignetted, center=center)
    np.testing.assert_allclose([model.k1, model.k2, model.k3], [0.4, 0.1, 0.05], rtol=0, atol=1e-4)
    assert tuple(model.center) == center


@pytest.mark.parametrize("ks", [(0.4, 0.1, 0.0), (0.3, -0.2, 0.15)])
def test_fit_vignetting_with_noise(ks):
    """With Gaussian noise (sigma 0.002) the fitted gain map is within 1% of the true one everywhere,
    so the noise-free falloff is removed to within 1%; and the corrected noisy flat has its mean per
    ring (10 radial bins) within 1% of the true level in every channel."""
    shape = (64, 96)
    levels = np.array([0.3, 0.5, 0.2], np.float32)
    flat = np.broadcast_to(levels, shape + (3,)).astype(np.float32)
    vignetted = isp.apply_vignetting(flat, k1=ks[0], k2=ks[1], k3=ks[2])
    rng = np.random.default_rng(32)
    noisy = (vignetted + rng.normal(0, 0.002, vignetted.shape)).astype(np.float32)
    model = isp.fit_vignetting(noisy)
    fitted = true_gain(shape, model.k1, model.k2, model.k3)
    truth = true_gain(shape, *ks)
    assert np.max(np.abs(fitted / truth - 1)) < 0.01
    corrected = isp.correct_vignetting(noisy, k1=model.k1, k2=model.k2, k3=model.k3).astype(np.float64)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    r = r / r.max()
    bins = np.minimum((r * 10).astype(int), 9)
    for b in range(10):
        ring = corrected[bins == b]
        assert ring.shape[0] > 0
        np.testing.assert_array_less(np.abs(ring.mean(axis=0) / levels - 1), 0.01)


# ------------------------------------------------------------------------------------------------
# colour
# ------------------------------------------------------------------------------------------------

def test_camera_to_srgb_maps_camera_white_to_srgb_white():
    m = isp.camera_to_srgb_matrix(NIKON_XYZ_TO_CAM)
    np.testing.assert_allclose(m @ np.ones(3), np.ones(3), rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.inv(m).sum(axis=1), np.ones(3), rtol=0, atol=1e-6)


def test_camera_to_srgb_recovers_srgb_colours_from_white_balanced_camera_response():
    """An sRGB colour s seen by the camera is c = xyz_to_cam @ SRGB_TO_XYZ @ s; white balancing
    divides by the camera's response to sRGB white; the matrix must then give back s."""
    a = NIKON_XYZ_TO_CAM @ isp.SRGB_TO_XYZ
    cam_white = a @ np.ones(3)
    m = isp.camera_to_srgb_matrix(NIKON_XYZ_TO_CAM)
    rng = np.random.default_rng(41)
    for s in rng.random((10, 3)):
        c = (a @ s) / cam_white
        np.testing.assert_allclose(m @ c, s, rtol=0, atol=1e-9)


def test_camera_to_srgb_is_identity_for_srgb_camera():
    m = isp.camera_to_srgb_matrix(np.linalg.inv(isp.SRGB_TO_XYZ))
    np.testing.assert_allclose(m, np.eye(3), rtol=0, atol=1e-6)


def test_camera_to_srgb_rejects_singular_matrix():
    with pytest.raises(ValueError, match="singular"):
        isp.camera_to_srgb_matrix(np.zeros((3, 3)))


def test_apply_color_matrix_matches_einsum():
    rng = np.random.default_rng(42)
    img = rng.random((11, 13, 3)).astype(np.float32)
    mat = rng.uniform(-1, 2, (3, 3))
    ref = np.einsum("ij,hwj->hwi", mat, img.astype(np.float64))
    out = isp.apply_color_matrix(img, mat)
    assert out.dtype == np.float32 and out.shape == img.shape
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# tone
# ------------------------------------------------------------------------------------------------

def srgb_encode_ref(x):
    x = np.asarray(x, dtype=np.float64)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.abs(x) ** (1 / 2.4) - 0.055)


def srgb_decode_ref(v):
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def unit_samples():
    """[0, 1] densely, plus the neighbourhood of the linear/power switch, as an N x 2 float32 array."""
    x = np.concatenate([np.linspace(0, 1, 20000), np.linspace(0.0031308 - 1e-5, 0.0031308 + 1e-5, 40)])
    return x.astype(np.float32).reshape(-1, 2)


def test_srgb_encode_matches_iec_formula():
    x = unit_samples()
    out = isp.srgb_encode(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, srgb_encode_ref(x), rtol=0, atol=1e-6)
    np.testing.assert_allclose(isp.encode(x, curve="srgb"), out, rtol=0, atol=0)


def test_srgb_decode_matches_iec_formula():
    v = np.concatenate([np.linspace(0, 1, 20000), np.linspace(0.04045 - 1e-4, 0.04045 + 1e-4, 40)])
    v = v.astype(np.float32).reshape(-1, 2)
    np.testing.assert_allclose(isp.srgb_decode(v), srgb_decode_ref(v), rtol=0, atol=1e-6)
    # integer input is scaled to [0, 1] first
    k8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_allclose(isp.srgb_decode(k8), srgb_decode_ref(k8 / 255.0), rtol=0, atol=1e-6)
    k16 = np.arange(0, 65536, 64, dtype=np.uint16).reshape(32, 32)
    np.testing.assert_allclose(isp.srgb_decode(k16), srgb_decode_ref(k16 / 65535.0), rtol=0, atol=1e-6)


@pytest.mark.parametrize("gamma", [2.2, 2.0, 1.8])
def test_power_gamma_matches_formula_and_keeps_sign(gamma):
    x = np.linspace(0, 1, 10001).astype(np.float32).reshape(-1, 1).repeat(2, axis=1)
    np.testing.assert_allclose(isp.gamma_encode(x, gamma=gamma), x.astype(np.float64) ** (1 / gamma),
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(isp.gamma_decode(x, gamma=gamma), x.astype(np.float64) ** gamma,
                               rtol=0, atol=1e-6)
    neg = -x
    np.testing.assert_allclose(isp.gamma_encode(neg, gamma=gamma), -(x.astype(np.float64) ** (1 / gamma)),
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(isp.encode(x, curve="power", gamma=gamma), isp.gamma_encode(x, gamma=gamma),
                               rtol=0, atol=0)


def test_tone_curves_invert():
    x = np.linspace(0, 1, 20001).astype(np.float32).reshape(-1, 1).repeat(2, axis=1)
    np.testing.assert_allclose(isp.srgb_decode(isp.srgb_encode(x)), x, rtol=0, atol=1e-6)
    for gamma in (2.2, 2.4):
        np.testing.assert_allclose(isp.gamma_decode(isp.gamma_encode(x, gamma=gamma), gamma=gamma), x,
                                   rtol=0, atol=1e-6)


def test_tone_rejects_bad_arguments():
    with pytest.raises(ValueError, match="gamma"):
        isp.gamma_encode(np.ones((2, 2), np.float32), gamma=0)
    with pytest.raises(ValueError, match="tone curve"):
        isp.encode(np.ones((2, 2), np.float32), curve="log")
    with pytest.raises(ValueError, match="bits"):
        isp.quantize(np.ones((2, 2), np.float32), bits=12)


@pytest.mark.parametrize("bits", [8, 16])
def test_quantize_rounds_to_nearest_and_clips(bits):
    maxval = (1 << bits) - 1
    rng = np.random.default_rng(bits)
    k = rng.integers(0, maxval + 1, (40, 50))
    frac = rng.uniform(-0.45, 0.45, k.shape)
    x = np.clip((k + frac) / maxval, 0, None).astype(np.float32)
    q = isp.quantize(x, bits=bits)
    assert q.dtype == (np.uint8 if bits == 8 else np.uint16)
    assert q.shape == x.shape
    assert np.array_equal(q.astype(np.int64), k)
    # clipping, and the exact ends
    edge = np.array([[-5.0, -1e-9, 0.0, 1.0], [1.0 + 1e-6, 3.0, np.float32(0.5 / maxval) * 0.98, 1 - 0.4 / maxval]],
                    np.float32)
    assert isp.quantize(edge, bits=bits).tolist() == [[0, 0, 0, maxval], [maxval, maxval, 0, maxval]]
    # RGB input keeps its shape
    rgb = ((k[:5, :6, None] + frac[:5, :6, None] * np.array([1, -1, 0.5])) / maxval).clip(0).astype(np.float32)
    assert np.array_equal(isp.quantize(rgb, bits=bits).astype(np.int64), np.repeat(k[:5, :6, None], 3, axis=2))


def test_quantize_half_rounds_up():
    assert isp.quantize(np.array([[0.0, 0.5], [1.0, 2.0]], np.float32)).tolist() == [[0, 128], [255, 255]]


@pytest.mark.parametrize("method", ["median", "mean"])
@pytest.mark.parametrize("size", [3, 5])
def test_denoise_into_a_reused_output_equals_a_fresh_one(method, size):
    rng = np.random.default_rng(3)
    buffer = np.full((20, 22, 3), np.nan, np.float32)
    for _ in range(2):                       # the second image overwrites every value of the first
        img = rng.random((20, 22, 3), dtype=np.float32)
        got = isp.denoise(img, method=method, size=size, out=buffer)
        assert got is buffer
        np.testing.assert_array_equal(buffer, isp.denoise(img, method=method, size=size))
    mosaic = rng.random((20, 22), dtype=np.float32)
    plane_buffer = np.empty_like(mosaic)
    isp.denoise(mosaic, method=method, size=size, cfa="RGGB", out=plane_buffer)
    np.testing.assert_array_equal(plane_buffer, isp.denoise(mosaic, method=method, size=size, cfa="RGGB"))


def test_denoise_out_is_validated():
    img = np.random.default_rng(4).random((12, 12, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="must not overlap"):
        isp.denoise_median(img, out=img)
    with pytest.raises(ValueError, match=r"float32 array of shape \(12, 12, 3\), got float64"):
        isp.denoise_median(img, out=np.empty((12, 12, 3)))
    with pytest.raises(ValueError, match="got float32 \\(12, 12\\)"):
        isp.denoise_mean(img, out=np.empty((12, 12), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        isp.denoise_mean(img, out=np.empty((12, 12, 6), np.float32)[:, :, ::2])
