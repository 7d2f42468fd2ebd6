"""Nothing clipped turns a colour: the ``highlights`` stage caps white-balanced values at the white
point (``clip``) or rebuilds them from the unclipped colours (``reconstruct``), so blown areas come
out white and a neutral running into clipping stays neutral, on every backend of the pipelines
that output display values."""

from __future__ import annotations

import numpy as np
import pytest

import rawcv
from rawcv.meta import BAYER_PATTERNS, CameraMeta, RawImage
from rawcv.pipeline import Pipeline, load_pipeline

DISPLAY_PIPELINES = ("default", "core")
XYZ_TO_CAM = ((0.9020, -0.2890, -0.0715), (-0.4535, 1.2436, 0.2348), (-0.0934, 0.1919, 0.7086))
META = dict(black_level=600, white_level=15520, as_shot_wb=(1.9492, 1.0, 1.3437), xyz_to_cam=XYZ_TO_CAM)


def run_all_backends(pipeline, raw):
    outs = [pipeline.run(raw, backend=b).image for b in ("numba", "fused")]
    torch = pytest.importorskip("torch")
    from rawcv.torch.backend import run_pipeline_torch

    outs.append(run_pipeline_torch(pipeline, raw, device="cpu")[0].permute(1, 2, 0).numpy())
    assert all(np.array_equal(o, outs[0]) for o in outs[1:])
    return outs[0]


@pytest.mark.parametrize("method", ("clip", "reconstruct"))
@pytest.mark.parametrize("name", DISPLAY_PIPELINES)
def test_a_blown_dng_is_white_not_magenta(name, method, tmp_path):
    path = tmp_path / "blown.dng"
    rawcv.write_dng(path, np.full((32, 48), 15520, np.uint16), cfa="RGGB", black=600, white=15520,
                    as_shot_wb=(1.9492, 1.0, 1.3437), color_matrix=np.array(XYZ_TO_CAM))
    raw = rawcv.read(path)
    out = run_all_backends(load_pipeline(name).with_params("highlights", method=method), raw)
    assert out.dtype == np.uint8 and np.all(out == 255)
    # without the stage the white-balanced file is magenta (gain_R, 1, gain_B): what the stage is for
    unclipped = Pipeline(["black_level", "white_balance", "demosaic"])(raw)
    np.testing.assert_allclose(unclipped[16, 24], [1.9492, 1.0, 1.3437], rtol=1e-4)


@pytest.mark.parametrize("method", ("clip", "reconstruct"))
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_a_neutral_ramp_into_clipping_stays_neutral(cfa, method):
    # a grey wedge from mid-grey to four times the white level, as the camera records it: each
    # channel divided by its white-balance gain, then clipped at the white level
    h, w = 8, 64
    light = np.linspace(0.3, 4.0, w)[None, :].repeat(h, 0)
    gains = np.array(META["as_shot_wb"])
    rgb = np.clip(light[..., None] / gains, 0, 1)
    levels = np.round(600 + rgb * (15520 - 600)).astype(np.uint16)
    raw = RawImage(rawcv.isp.mosaic_rgb(levels.astype(np.float32), cfa=cfa).astype(np.uint16), CameraMeta(cfa, **META))
    steps = ["black_level", "white_balance", {"stage": "highlights", "method": method}, "demosaic", "color_matrix",
             "gamma", "quantize"]
    out = run_all_backends(Pipeline(steps), raw).astype(int)[2:-2, 2:-2]
    # R = G = B, but for a few levels where the demosaic interpolates across the kink where green clips
    assert np.abs(out - out[..., 1:2]).max() <= 6
    assert np.all(np.diff(out[..., 1], axis=1) >= 0)          # and brighter to the right, up to white
    without = Pipeline([s for s in steps if not isinstance(s, dict)])(raw).astype(int)[2:-2, 2:-2]
    assert np.abs(without - without[..., 1:2]).max() > 20     # the hue flip the stage prevents


def magenta_highlights(image) -> int:
    """Pixels that look like a blown highlight turned magenta: red and blue near white, green well below."""
    x = image.astype(int)
    return int(((x[..., 0] >= 240) & (x[..., 2] >= 240) & (x[..., 1] <= np.minimum(x[..., 0], x[..., 2]) - 15)).sum())


def test_the_rose_has_no_magenta_petal(raw_samples):
    raw = rawcv.read(raw_samples / "nikon_d3200_rose.dng")
    default = load_pipeline("default")
    assert raw.meta.white_level == 15520 and (raw.data >= 15520).sum() > 100     # the sample's clipped petals
    assert magenta_highlights(default(raw)) == 0
    without = Pipeline([s for s in default.stages if s.name != "highlights"])
    assert magenta_highlights(without(raw)) > 50                                # 83 before the stage


def test_the_rose_reconstructed_has_no_magenta_petal(raw_samples):
    raw = rawcv.read(raw_samples / "nikon_d3200_rose.dng")
    pipeline = load_pipeline("default").with_params("highlights", method="reconstruct")
    outs = [pipeline.run(raw, backend=b).image for b in ("numba", "fused")]
    assert np.array_equal(outs[0], outs[1])
    assert magenta_highlights(outs[0]) == 0
    # not clip under another name: the petals' highlights change (1356 pixels, by up to 26 levels)
    changed = np.abs(outs[0].astype(int) - load_pipeline("default")(raw).astype(int)).max(axis=2) > 0
    assert changed.sum() > 500
    # the torch backend too, to a level of the float32 rounding of the chroma offsets
    pytest.importorskip("torch")
    from rawcv.torch.backend import run_pipeline_torch

    ours = run_pipeline_torch(pipeline, raw, device="cpu")[0].permute(1, 2, 0).numpy()
    assert magenta_highlights(ours) == 0 and np.abs(ours.astype(int) - outs[0].astype(int)).max() <= 1


def test_the_sidecar_says_which_channels_were_clipped(raw_samples, tmp_path):
    from rawcv.cli import main

    assert main(["process", str(raw_samples / "nikon_d3200_rose.dng"), "-o", str(tmp_path), "--quiet"]) == 0
    import json

    side = json.loads((tmp_path / "nikon_d3200_rose.png.json").read_text())
    raw = rawcv.read(raw_samples / "nikon_d3200_rose.dng")
    clipped = raw.data >= raw.meta.white_level           # RGGB: R at even rows and columns
    by_channel = side["saturated_by_channel"]
    assert by_channel["R"] == pytest.approx(clipped[0::2, 0::2].mean())
    assert by_channel["G"] == pytest.approx((clipped[0::2, 1::2].sum() + clipped[1::2, 0::2].sum())
                                            / (clipped.size / 2))
    assert by_channel["B"] == pytest.approx(clipped[1::2, 1::2].mean())
    assert side["saturated_fraction"] == pytest.approx(clipped.mean())
