"""Gray-world and white-world estimates leave clipped values out (their colour is the sensor's
white level, not the light's), and say so when nothing else is left; Numba and torch alike."""

from __future__ import annotations

import numpy as np
import pytest

from rawcv import isp
from rawcv.errors import PipelineError
from rawcv.meta import BAYER_PATTERNS, CameraMeta, RawImage
from rawcv.pipeline import Pipeline


def chart(cfa: str) -> np.ndarray:
    """A normalised mosaic of a neutral-ish light (R 0.4, G 0.5, B 0.25) with a clipped patch."""
    levels = np.array([0.4, 0.5, 0.25], np.float32)
    rgb = np.broadcast_to(levels, (16, 16, 3)).copy()
    rgb[:6, :6] = 1.0                          # blown in every channel
    return isp.mosaic_rgb(rgb, cfa=cfa)


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_clipped_values_do_not_decide_the_white_point(cfa):
    m = chart(cfa)
    expected = [0.5 / 0.4, 1.0, 0.5 / 0.25]    # the light's colour; with the clipped patch in: 1, 1, 1
    np.testing.assert_allclose(isp.gains_white_world(m, cfa=cfa), expected, rtol=1e-6)
    np.testing.assert_allclose(isp.gains_gray_world(m, cfa=cfa), expected, rtol=1e-6)
    torch = pytest.importorskip("torch")
    from rawcv.torch import isp as tisp

    t = torch.from_numpy(m)
    np.testing.assert_allclose(tisp.gains_white_world(t, cfa=cfa)[0].numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(tisp.gains_gray_world(t, cfa=cfa)[0].numpy(), expected, rtol=1e-6)


def test_rgb_pixels_clipped_in_one_channel_are_left_out():
    rgb = np.broadcast_to(np.array([0.4, 0.5, 0.25], np.float32), (8, 8, 3)).copy()
    rgb[:3, :, 0] = 1.0                        # red clipped: those pixels' green and blue go too
    rgb[:3, :, 1:] = 0.9
    np.testing.assert_allclose(isp.gains_white_world(rgb), [1.25, 1.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(isp.gains_gray_world(rgb), [1.25, 1.0, 2.0], rtol=1e-6)


@pytest.mark.parametrize("method", ["gray_world", "white_world"])
def test_an_image_clipped_everywhere_is_an_error_that_says_so(method):
    raw = RawImage(np.full((8, 8), 4095, np.uint16), CameraMeta("RGGB", black_level=64, white_level=4095))
    p = Pipeline(["black_level", {"stage": "white_balance", "method": method}, "demosaic"])
    for backend in ("numba", "fused"):
        with pytest.raises(PipelineError, match=f"method '{method}': cannot estimate white balance: every R "
                                                "value is clipped"):
            p.run(raw, backend=backend)
    torch = pytest.importorskip("torch")
    from rawcv.torch import isp as tisp

    with pytest.raises(ValueError, match="every R value is clipped"):
        getattr(tisp, f"gains_{method}")(torch.ones(1, 1, 8, 8), cfa="RGGB")
