"""GBTF demosaicing (``demosaic: {method: gbtf}``): against a slow float64 NumPy transcription of
the paper's steps (window sums, the 7 x 7 opposite-colour filter as a kernel, colours read off
the pattern string), and its quality against Malvar and colour-demosaicing's Menon 2007. The
checks every method shares (invariants, torch twin, pipelines) are in ``test_demosaic_methods.py``."""

from __future__ import annotations

import numpy as np
import pytest

from rawcv.isp import mosaic_rgb
from rawcv.isp.demosaic import demosaic_gbtf, demosaic_malvar
from rawcv.meta import BAYER_PATTERNS

MARGIN = 12
# the directional filter: a one-sided Gaussian, sigma 1, over distances 0..3
TAPS = np.exp(-0.5 * np.arange(4.0) ** 2) / np.exp(-0.5 * np.arange(4.0) ** 2).sum()
# Pekkucuksen and Altunbasak's 7 x 7 filter for R at B (B at R) on the G - R (G - B) differences
OPPOSITE = np.zeros((7, 7))
for _y, _x in ((0, 2), (0, 4), (2, 0), (2, 6), (4, 0), (4, 6), (6, 2), (6, 4)):
    OPPOSITE[_y, _x] = -1
for _y, _x in ((2, 2), (2, 4), (4, 2), (4, 4)):
    OPPOSITE[_y, _x] = 10
OPPOSITE /= OPPOSITE.sum()


def reference_gbtf(mosaic: np.ndarray, cfa: str) -> np.ndarray:
    """Slow GBTF, pixel by pixel in float64 on the mosaic padded by reflection; every plane
    starts as NaN, so a read outside where a step is defined shows up in the result."""
    p = np.pad(mosaic.astype(np.float64), MARGIN, mode="reflect")
    hp, wp = p.shape
    colour = np.array(list(cfa)).reshape(2, 2)
    site = lambda y, x: colour[y % 2, x % 2]     # noqa: E731  (MARGIN is even: the phase is kept)
    dh, dv = np.full((hp, wp), np.nan), np.full((hp, wp), np.nan)
    for y in range(2, hp - 2):
        for x in range(2, wp - 2):
            est_h = (p[y, x - 1] + p[y, x + 1]) / 2 + (2 * p[y, x] - p[y, x - 2] - p[y, x + 2]) / 4
            est_v = (p[y - 1, x] + p[y + 1, x]) / 2 + (2 * p[y, x] - p[y - 2, x] - p[y + 2, x]) / 4
            green = site(y, x) == "G"
            dh[y, x] = p[y, x] - est_h if green else est_h - p[y, x]     # always G minus the other
            dv[y, x] = p[y, x] - est_v if green else est_v - p[y, x]
    grad_h, grad_v = np.full((hp, wp), np.nan), np.full((hp, wp), np.nan)
    grad_h[:, 1:-1] = np.abs(dh[:, :-2] - dh[:, 2:])
    grad_v[1:-1, :] = np.abs(dv[:-2, :] - dv[2:, :])

    def weights(y, x):
        sums = (grad_v[y - 4:y + 1, x - 2:x + 3].sum(), grad_v[y:y + 5, x - 2:x + 3].sum(),
                grad_h[y - 2:y + 3, x - 4:x + 1].sum(), grad_h[y - 2:y + 3, x:x + 5].sum())
        return np.array([1 / max(s, 1e-10) ** 2 for s in sums])

    delta = np.full((hp, wp), np.nan)        # G minus the sampled colour, at red and blue sites
    for y in range(7, hp - 7):
        for x in range(7, wp - 7):
            if site(y, x) != "G":
                k = np.arange(4)
                estimates = np.array([TAPS @ dv[y - k, x], TAPS @ dv[y + k, x], TAPS @ dh[y, x - k], TAPS @ dh[y, x + k]])
                w = weights(y, x)
                delta[y, x] = w @ estimates / w.sum()
    out = np.empty(mosaic.shape + (3,))
    h, w = mosaic.shape
    for y in range(MARGIN, MARGIN + h):
        for x in range(MARGIN, MARGIN + w):
            c, s = p[y, x], site(y, x)
            value = {s: c}
            if s != "G":
                value["G"] = c + delta[y, x]
                other = "B" if s == "R" else "R"
                window = delta[y - 3:y + 4, x - 3:x + 4]
                value[other] = value["G"] - np.sum(OPPOSITE * np.where(OPPOSITE != 0, window, 0))
            else:
                # G minus each colour at the four neighbours (the opposite estimate where the
                # neighbour sampled the other colour), blended by the pixel's weights
                wts = weights(y, x)
                for name in "RB":
                    diffs = []
                    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                        ny, nx = y + dy, x + dx
                        if site(ny, nx) == name:
                            diffs.append(delta[ny, nx])
                        else:
                            window = delta[ny - 3:ny + 4, nx - 3:nx + 4]
                            diffs.append(np.sum(OPPOSITE * np.where(OPPOSITE != 0, window, 0)))
                    value[name] = c - wts @ np.array(diffs) / wts.sum()
            out[y - MARGIN, x - MARGIN] = [value["R"], value["G"], value["B"]]
    return out


# not 3 x 3: its reflected extension repeats every 4 pixels both ways, so gradient sums cancel to
# float32 rounding noise (1e-7) where float64 gives exactly 0, and the inverse-square weights of
# the two arithmetics part ways; the shared tester covers 3 x 3 (flat, samples kept, twin)
@pytest.mark.parametrize("shape", [(3, 8), (4, 7), (9, 6), (14, 17), (24, 20)])
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_matches_the_slow_reference(cfa, shape):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    mosaic = rng.random(shape).astype(np.float32)
    expected = reference_gbtf(mosaic, cfa)
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(demosaic_gbtf(mosaic, cfa=cfa), expected, rtol=0, atol=2e-5)


def test_matches_the_slow_reference_on_an_image_with_edges():
    """Random noise weighs every direction alike; a photograph crop exercises the weights."""
    data = pytest.importorskip("skimage.data", reason="scikit-image (skimage.data.astronaut) is not installed")
    rgb = data.astronaut()[180:212, 200:236].astype(np.float32) / 255
    for cfa in ("RGGB", "GBRG"):
        mosaic = mosaic_rgb(rgb, cfa=cfa)
        np.testing.assert_allclose(demosaic_gbtf(mosaic, cfa=cfa), reference_gbtf(mosaic, cfa), rtol=0, atol=2e-5)


def cpsnr(estimate: np.ndarray, truth: np.ndarray, border: int = 10) -> float:
    """Colour PSNR (dB, peak 1) over all three channels, clipped to [0, 1], ``border`` pixels left out."""
    crop = (slice(border, -border), slice(border, -border))
    err = np.clip(estimate[crop].astype(np.float64), 0, 1) - truth[crop].astype(np.float64)
    return float(10 * np.log10(1.0 / np.mean(err ** 2)))


def astronaut_256() -> np.ndarray:
    data = pytest.importorskip("skimage.data", reason="scikit-image (skimage.data.astronaut) is not installed")
    image = data.astronaut().astype(np.float32) / 255
    return image.reshape(256, 2, 256, 2, 3).mean(axis=(1, 3))     # 2 x 2 box downscale


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_beats_malvar_on_astronaut(cfa):
    rgb = astronaut_256()
    mosaic = mosaic_rgb(rgb, cfa=cfa)
    gbtf, malvar = cpsnr(demosaic_gbtf(mosaic, cfa=cfa), rgb), cpsnr(demosaic_malvar(mosaic, cfa=cfa), rgb)
    assert gbtf > malvar + 1.0, (cfa, gbtf, malvar)          # measured: about 2 dB


def test_beats_menon_2007_on_astronaut():
    """colour-demosaicing's Menon 2007 (DDFAPD with its refining step), the issue's yardstick."""
    colour = pytest.importorskip("colour_demosaicing", reason="colour-demosaicing is not installed")
    rgb = astronaut_256()
    mosaic = mosaic_rgb(rgb, cfa="RGGB")
    menon = cpsnr(colour.demosaicing_CFA_Bayer_Menon2007(mosaic.astype(np.float64), "RGGB"), rgb)
    gbtf = cpsnr(demosaic_gbtf(mosaic, cfa="RGGB"), rgb)
    assert gbtf > menon + 0.3, (gbtf, menon)
