"""The ``exposure`` stage's ``auto`` method (dcraw's / LibRaw's auto-brightness) against independent
references: analytic images whose percentile is known exactly, NumPy's own ``np.percentile`` over
channels re-derived here from the CFA letters, LibRaw through rawpy (``no_auto_bright`` False vs
True) on a real camera file; and the three backends (numba, fused, torch) applying and recording
the very same stops.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rawcv.errors import PipelineError
from rawcv.isp.exposure import Exposure, apply_exposure, auto_exposure_stops
from rawcv.isp.frame import RGB, Frame
from rawcv.meta import BAYER_PATTERNS, CameraMeta, RawImage
from rawcv.pipeline import Pipeline

LETTER = {"R": 0, "G": 1, "B": 2}
AUTO = {"stage": "exposure", "method": "auto"}


def channel_at(cfa: str, shape) -> np.ndarray:
    """H x W channel ids of a mosaic, read off the pattern's letters (not through rawcv.meta)."""
    tile = np.array([[LETTER[cfa[0]], LETTER[cfa[1]]], [LETTER[cfa[2]], LETTER[cfa[3]]]])
    h, w = shape
    return tile[np.arange(h)[:, None] % 2, np.arange(w)[None, :] % 2]


def with_p99(n: int, p99: float, rng) -> np.ndarray:
    """``n`` float32 values in random order whose 99th percentile (NumPy's linear one) is exactly
    ``p99``: a plateau of that value around the virtual index ``0.99 (n - 1)`` and its neighbour,
    values below it under, hot pixels (up to 1.0) above it."""
    k = int(0.99 * (n - 1))
    v = np.empty(n, np.float32)
    v[:k - 2] = rng.uniform(0.0, p99, k - 2)
    v[k - 2:k + 3] = p99
    v[k + 3:] = rng.uniform(p99, 1.0, n - k - 3)
    rng.shuffle(v)
    assert float(np.percentile(v, 99)) == float(np.float32(p99))         # the construction, checked by NumPy
    return v


# ---------------------------------------------------------------------------------------------------
# analytic
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("level, stops", [(1.0, 2.0), (0.5, 1.0), (0.125, -1.0), (2.0, 3.0)])
def test_rgb_whose_p99_is_known_gets_log2_level_over_p99(level, stops):
    rng = np.random.default_rng(0)
    # p99 per channel: R 0.125, G 0.25, B 0.0625: the largest (G) decides, as in dcraw
    rgb = np.stack([with_p99(1200, p, rng).reshape(30, 40) for p in (0.125, 0.25, 0.0625)], axis=-1)
    assert stops == math.log2(level / 0.25)
    assert auto_exposure_stops(rgb, level=level) == stops
    frame = Frame(rgb, RGB, CameraMeta(None, linear=True))
    result = Exposure(method="auto", level=level).apply(frame)
    assert [{k: v for k, v in n.items() if k != "_of"} for n in result.notes] == [{"stage": "exposure", "stops": stops}]
    assert np.array_equal(result.data, rgb * np.float32(2.0 ** stops))       # powers of two: exact


def test_stops_that_are_not_whole_are_log2_rounded_to_a_thousandth():
    rng = np.random.default_rng(1)
    p99 = float(np.float32(0.3))
    rgb = np.stack([with_p99(400, p, rng).reshape(20, 20) for p in (p99, 0.1, 0.2)], axis=-1)
    exact = math.log2(1.0 / p99)                 # 1.73696...
    assert auto_exposure_stops(rgb) == round(exact, 3) == 1.737
    assert abs(auto_exposure_stops(rgb) - exact) <= 0.0005


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_mosaic_p99_is_per_colour_through_the_cfa(cfa):
    rng = np.random.default_rng(2)
    shape = (40, 50)
    where = channel_at(cfa, shape)
    mosaic = np.empty(shape, np.float32)
    for c, p99 in enumerate((0.5, 0.25, 0.125)):        # R decides: 1 stop
        mosaic[where == c] = with_p99(int((where == c).sum()), p99, rng)
    assert auto_exposure_stops(mosaic, cfa=cfa) == 1.0
    assert auto_exposure_stops(mosaic, cfa=cfa, level=0.25) == -1.0


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
@pytest.mark.parametrize("percentile", [50.0, 99.0, 99.9, 100.0])
def test_random_images_match_numpy_percentile_per_channel(cfa, percentile):
    """Scales per colour differ, so a wrong channel map (or one percentile over every sample)
    would give another number; odd sizes leave partial CFA tiles."""
    rng = np.random.default_rng(3)
    scale = np.array([0.2, 0.7, 0.35])
    shape = (37, 51)
    where = channel_at(cfa, shape)
    mosaic = (rng.uniform(0, 1, shape) * scale[where]).astype(np.float32)
    high = max(np.percentile(mosaic[where == c], percentile) for c in range(3))
    assert auto_exposure_stops(mosaic, cfa=cfa, percentile=percentile) == round(math.log2(1 / high), 3)
    rgb = (rng.uniform(0, 1, shape + (3,)) * scale).astype(np.float32)
    high = max(np.percentile(rgb[..., c], percentile) for c in range(3))
    assert auto_exposure_stops(rgb, percentile=percentile, level=0.8) == round(math.log2(0.8 / high), 3)


def test_a_black_frame_gets_no_gain():
    assert auto_exposure_stops(np.zeros((8, 8), np.float32), cfa="RGGB") == 0.0
    assert auto_exposure_stops(np.zeros((8, 8, 3), np.float32)) == 0.0
    assert auto_exposure_stops(np.full((8, 8, 3), -0.01, np.float32)) == 0.0      # below black
    speck = np.zeros((20, 20, 3), np.float32)
    speck[0, 0] = 1.0                      # one bright pixel: the 99th percentile is still black
    assert auto_exposure_stops(speck) == 0.0
    assert str(auto_exposure_stops(np.zeros((4, 4, 3)))) == "0.0"                 # not -0.0


def test_max_stops_limits_either_way():
    dim = np.full((8, 8, 3), 1e-4, np.float32)         # log2(1e4) = 13.3 stops
    assert auto_exposure_stops(dim) == 8.0             # the default: dcraw's floor, bin 32 of 8192
    assert auto_exposure_stops(dim, max_stops=3.0) == 3.0
    assert auto_exposure_stops(dim, max_stops=0.0) == 0.0
    hot = np.full((8, 8, 3), 64.0, np.float32)          # unclipped linear values: -6 stops
    assert auto_exposure_stops(hot) == -6.0
    assert auto_exposure_stops(hot, max_stops=2.5) == -2.5


def test_stage_parameters_are_checked():
    with pytest.raises(PipelineError, match="stage 'exposure': method 'auto' chooses the stops itself"):
        Exposure(method="auto", stops=1.0)
    with pytest.raises(PipelineError, match="stage 'exposure': percentile must be in"):
        Exposure(method="auto", percentile=0.0)
    with pytest.raises(PipelineError, match="stage 'exposure': level must be a positive"):
        Exposure(method="auto", level=0.0)
    with pytest.raises(PipelineError, match="stage 'exposure': parameter 'max_stops' must be >= 0"):
        Exposure(method="auto", max_stops=-1.0)
    with pytest.raises(PipelineError, match="parameter 'method' must be one of manual, auto"):
        Exposure(method="bright")
    assert Exposure().to_dict() == {"stage": "exposure", "method": "manual", "stops": 0.0, "percentile": 99.0,
                                    "level": 1.0, "max_stops": 8.0}
    with pytest.raises(ValueError, match="a mosaic needs its cfa"):
        auto_exposure_stops(np.ones((4, 4), np.float32))


# ---------------------------------------------------------------------------------------------------
# LibRaw's auto-brightness, through rawpy
# ---------------------------------------------------------------------------------------------------
#
# What LibRaw does (LibRaw 0.22, as dcraw): convert_to_rgb() fills a histogram of each output
# channel, ``value >> 3`` in 0x2000 bins, of the 16-bit image *after* white balance (scale_colors,
# which clips at 65535: highlight mode 0), demosaicing and the colour conversion (which clips at
# 0..65535 again; none with output_color=raw). copy_mem_image() then walks each channel's histogram
# from the top until more than ``int(width * height * auto_bright_thr)`` pixels (0.01: 1 %) lie
# above, takes the bin ``val`` (never below 32), the largest over the channels as t_white, and builds
# the output curve with white = ``t_white << 3``: the gain is 65536 / (8 t_white) = 8192 / t_white.
# With no_auto_bright=True, t_white = 0x2000 and (gamma 1, 16 bits) the curve is the identity, so
# the no-auto-bright output *is* the histogrammed image: the test recomputes t_white from it and
# checks that 8192 / t_white is the ratio of the two outputs, before comparing rawcv's stops.
#
# rawcv's side: the ``linear`` pipeline's stages with LibRaw's two clips made explicit (a
# ``highlights: clip`` after white balance, another after the colour matrix), the demosaic method
# LibRaw uses (bilinear for DemosaicAlgorithm.LINEAR, half for half_size), then ``exposure: auto,
# percentile: 99``. Differences left: rawcv rounds to 1/1000 EV (<= 0.0005), LibRaw's white point is
# a bin's lower edge (8 of 65535: <= log2(1 + 8 / 16000) = 0.0007 EV for a white point above 16000),
# and the measured ratio truncates integer levels (< 0.0002 EV above level 4096): TOLERANCE_EV.
# Measured: at most 0.0005 EV over the cases below.
#
# Besides the file as shot (bright: more than 1 % of the red channel clips, so the gain is 1.03 or
# 1), each case runs with the white level four times higher (LibRaw's ``user_sat``, which is the
# white level *above black*, i.e. after black subtraction: rawcv's ``white`` is black + user_sat), an
# image two stops darker that auto-brightness has to lift.

TOLERANCE_EV = 0.0015
NIKON = "nikon_d3200_rose.dng"


def libraw_t_white(image: np.ndarray, thr: float = 0.01) -> int:
    """copy_mem_image()'s t_white, recomputed from the histogrammed 16-bit image ``image``."""
    h, w, colors = image.shape
    perc = int(w * h * thr)
    t_white = 0
    for c in range(colors):
        hist = np.bincount(image[..., c].astype(np.int64).ravel() >> 3, minlength=0x2000)
        total, val = 0, 0x2000
        while True:
            val -= 1
            if val <= 32:
                break
            total += hist[val]
            if total > perc:
                break
        t_white = max(t_white, val)
    return t_white


@pytest.mark.parametrize("darker", [1, 4], ids=["as-shot", "white-x4"])
@pytest.mark.parametrize("colour", ["raw", "sRGB"])
@pytest.mark.parametrize("demosaic", ["bilinear", "half"])
def test_matches_libraw_auto_bright(raw_samples, demosaic, colour, darker):
    rawpy = pytest.importorskip("rawpy")
    import rawcv

    path = raw_samples / NIKON
    if not path.is_file():
        pytest.skip(f"{NIKON} not in {raw_samples}")
    raw = rawcv.read(path)
    black = float(raw.meta.black_level[0])
    assert set(raw.meta.black_level) == {black}
    white_above_black = (raw.meta.white_level - black) * darker
    kwargs = dict(gamma=(1, 1), output_bps=16, use_camera_wb=True, user_flip=0, adjust_maximum_thr=0,
                  output_color=getattr(rawpy.ColorSpace, colour))
    if demosaic == "half":
        kwargs.update(half_size=True)
    else:
        kwargs.update(demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR)
    if darker != 1:
        kwargs.update(user_sat=int(white_above_black))

    def postprocess(no_auto_bright):
        with rawpy.imread(str(path)) as r:
            return r.postprocess(no_auto_bright=no_auto_bright, **kwargs).astype(np.float64)

    bright, plain = postprocess(False), postprocess(True)
    well_exposed = (plain >= 4096) & (bright < 65535)
    libraw_gain = float(np.median(bright[well_exposed] / plain[well_exposed]))
    # what LibRaw's histogram covers: the no-auto-bright output itself
    t_white = libraw_t_white(plain)
    assert abs(math.log2(libraw_gain) - math.log2(8192 / t_white)) < 0.0005

    # the linear pipeline (black_level, white_balance, demosaic, color_matrix) with LibRaw's clips
    stages = []
    for stage in rawcv.load_pipeline("linear").stages:
        spec = stage.to_dict()
        if spec["stage"] == "color_matrix" and colour == "raw":
            continue
        if spec["stage"] == "black_level":
            spec["white"] = black + white_above_black
        if spec["stage"] == "demosaic":
            spec["method"] = demosaic
        stages.append(spec)
        if spec["stage"] in ("white_balance", "color_matrix"):
            stages.append({"stage": "highlights", "method": "clip"})
    stages.append({**AUTO, "percentile": 99.0})
    pipeline = Pipeline(stages, name="libraw auto-bright")
    result = pipeline.run(raw)
    assert result.image.shape == plain.shape
    ours = result.record[-1]["stops"]
    assert abs(ours - math.log2(libraw_gain)) <= TOLERANCE_EV, (ours, math.log2(libraw_gain))
    if darker != 1:
        assert ours > 1.4                               # LibRaw and rawcv lift the darker image
    assert pipeline.run(raw, backend="numba").record[-1]["stops"] == ours


# ---------------------------------------------------------------------------------------------------
# numba == fused == torch, and every backend records the stops it applied
# ---------------------------------------------------------------------------------------------------

XYZ_TO_CAM = ((0.9020, -0.2890, -0.0715), (-0.4535, 1.2436, 0.2348), (-0.0934, 0.1919, 0.7086))


def make_raw(cfa, *, peak, seed=0, shape=(26, 36)) -> RawImage:
    """A mosaic whose values reach ``peak`` of the range (so each image wants its own stops)."""
    rng = np.random.default_rng(seed)
    data = (64 + rng.uniform(0, 1, shape) ** 2 * peak * (4000 - 64)).astype(np.uint16)
    return RawImage(data, CameraMeta(cfa, black_level=64, white_level=4000, as_shot_wb=(1.9, 1.0, 1.4),
                                     xyz_to_cam=XYZ_TO_CAM))


PLACEMENTS = {
    "mosaic": ["black_level", AUTO],
    "mosaic-then-display": ["black_level", {**AUTO, "percentile": 98.0, "level": 0.9}, "white_balance", "demosaic",
                            "gamma", "quantize"],
    "rgb": ["black_level", "white_balance", "demosaic", "color_matrix", AUTO],
    "rgb-then-display": ["black_level", "white_balance", "demosaic", {**AUTO, "max_stops": 3.0}, "gamma",
                         {"stage": "quantize", "bits": 16}],
}
PEAKS = (0.05, 0.2, 0.6, 0.9)        # one per sample of the batch: about 4, 2, 0.7, 0.2 stops


def _stops(result):
    [entry] = [e for e in result.record if e["stage"] == "exposure"]
    return entry["stops"]


@pytest.mark.parametrize("placement", list(PLACEMENTS))
def test_numba_fused_and_torch_apply_and_record_the_same_stops(placement):
    torch = pytest.importorskip("torch")
    from rawcv.pipeline.schedule import merge_steps
    from rawcv.torch.backend import run_pipeline_torch
    from rawcv.torch.isp import TorchContext
    from rawcv.torch.isp.exposure import auto_exposure_stops as torch_auto_exposure_stops

    pipeline = Pipeline(PLACEMENTS[placement], name=placement)
    raws = [make_raw(cfa, peak=peak, seed=i) for i, (cfa, peak) in enumerate(zip(BAYER_PATTERNS, PEAKS))]
    numba = [pipeline.run(r, backend="numba") for r in raws]
    fused = [pipeline.run(r, backend="fused") for r in raws]
    stops = [_stops(r) for r in numba]
    assert len(set(stops)) == len(raws), stops            # each image its own stops
    assert [_stops(r) for r in fused] == stops
    for a, b in zip(numba, fused):
        assert a.record == b.record and np.array_equal(a.image, b.image)
    # the stops really applied: the output is the input times the float32 gain
    position = next(i for i, s in enumerate(pipeline.stages) if s.name == "exposure")
    before = Pipeline(pipeline.stages[:position], name="before")
    for raw, s in zip(raws, stops):
        staged = pipeline.run(raw, keep_intermediates=True).intermediates
        assert np.array_equal(staged[position][1], apply_exposure(before(raw), stops=s))

    # torch: one batch, a layout and an exposure per sample
    got = run_pipeline_torch(pipeline, raws, device="cpu")
    for out, ref in zip(got, numba):
        want = ref.image.transpose(2, 0, 1) if ref.image.ndim == 3 else ref.image[None]
        assert np.array_equal(out.numpy(), want)       # the same gains, bit for bit
    # the twin's record: a context that keeps one list of notes per sample, as the backend would
    ctx = TorchContext([r.meta for r in raws])
    ctx.notes = [[] for _ in raws]
    x = torch.stack([torch.from_numpy(r.data.astype(np.float32))[None] for r in raws])
    for stage in merge_steps(pipeline.stages):
        if stage.name == "exposure":
            assert torch_auto_exposure_stops(x, cfa=ctx.cfas if x.shape[1] == 1 else None,
                                             percentile=stage.percentile, level=stage.level,
                                             max_stops=stage.max_stops) == stops
        x = stage.torch(x, ctx)
    assert [[n["stops"] for n in notes if n["stage"] == "exposure"] for notes in ctx.notes] == [[s] for s in stops]


def test_manual_stops_are_recorded_on_every_backend_too():
    torch = pytest.importorskip("torch")
    from rawcv.torch.isp import TorchContext

    pipeline = Pipeline(["black_level", {"stage": "exposure", "stops": 0.7}, "demosaic"])
    raw = make_raw("GRBG", peak=0.3)
    for backend in ("numba", "fused"):
        assert pipeline.run(raw, backend=backend).record[1] == {"stage": "exposure", "method": "manual", "stops": 0.7,
                                                               "percentile": 99.0, "level": 1.0, "max_stops": 8.0}
    ctx = TorchContext([raw.meta])
    ctx.notes = [[]]
    pipeline.stages[1].torch(torch.ones(1, 1, 4, 4), ctx)
    assert [[{k: v for k, v in n.items() if k != "_of"} for n in notes] for notes in ctx.notes] \
        == [[{"stage": "exposure", "stops": 0.7}]]


def test_torch_twin_without_records_still_runs_and_keeps_gradients():
    torch = pytest.importorskip("torch")
    from rawcv.torch.isp import TorchContext
    from rawcv.torch.isp.exposure import AutoExposure, apply_exposure as torch_apply_exposure

    ctx = TorchContext([make_raw("RGGB", peak=0.1).meta, make_raw("BGGR", peak=0.1).meta])
    x = torch.full((2, 1, 4, 6), 0.25, dtype=torch.float64, requires_grad=True)
    x2 = torch.cat([x[:1], x[1:] * 2])
    y = Exposure(method="auto").torch(x2, ctx)                      # 2 stops and 1 stop
    assert y.detach().flatten().unique().tolist() == [1.0]
    y.sum().backward()
    assert x.grad[0].unique().tolist() == [4.0] and x.grad[1].unique().tolist() == [4.0]   # 2 * 2^1
    rgb = torch.full((3, 5, 5), 0.5)
    assert AutoExposure(level=0.25)(rgb).unique().tolist() == [0.25]
    assert torch.equal(torch_apply_exposure(rgb[None], stops=[1.0]), rgb[None] * 2)
