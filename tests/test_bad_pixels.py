"""Bad-pixel correction (:mod:`rawcv.isp.bad_pixels`), each part against an independent reference:

* LibRaw itself (through rawpy's ``bad_pixels_path``) on a DNG with listed defects;
* a slow per-pixel Python transcription of the ring rule, on clustered defects;
* a synthetic test chart with injected hot and dead photosites for the detector, and a real
  camera frame it must leave (almost) alone;
* the ``bad_pixels`` stage on the numba, fused and torch backends.
"""

from __future__ import annotations

import os
import types

import numpy as np
import pytest
from scipy import ndimage

import rawcv
from rawcv.errors import PipelineError
from rawcv.isp import mosaic_rgb, subtract_black_level
from rawcv.isp.bad_pixels import BadPixels, bad_pixel_mask, detect_bad_pixels, fix_bad_pixels, read_bad_pixels
from rawcv.meta import BAYER_PATTERNS, CameraMeta, RawImage, cfa_channel_map
from rawcv.pipeline import Pipeline
from rawcv.synth.noise import NoiseParams, add_noise


def write_list(path, pixels, *, times=None) -> str:
    """A dcraw bad-pixel file: ``col row unixtime`` per line, with comments."""
    lines = ["# dcraw bad pixel list: col row unixtime", ""]
    for i, (r, c) in enumerate(pixels):
        lines.append(f"{c}\t{r} {0 if times is None else times[i]}   # defect {i}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


# --------------------------------------------------------------------------- LibRaw as the reference

LIBRAW_SHAPE = (40, 48)


def libraw_half(path, bad_list=None):
    """LibRaw's half-size output in camera RGB with every scaling set to 1.

    ``user_black=0`` and ``user_sat=65535`` with unit white balance make LibRaw's scale factor
    ``65535 / (65535 - 0) = 1``, and ``gamma=(1, 1)``, ``no_auto_bright``, raw colour and 16 bits
    keep each value as it is: output pixel ``(i, j)`` is the 2 x 2 block ``(2i, 2j)`` of the
    mosaic, red and blue as stored and green the integer mean of the two greens (LibRaw's
    ``(G1 + G2) >> 1``: half-size runs with four colours and mixes them at the end). The first
    assertion of the test checks this relation on the file without a list.
    """
    rawpy = pytest.importorskip("rawpy")
    kw = dict(half_size=True, no_auto_bright=True, gamma=(1, 1), output_bps=16, user_wb=[1, 1, 1, 1],
              output_color=rawpy.ColorSpace.raw, user_flip=0, user_black=0, user_sat=65535)
    with rawpy.imread(str(path)) as raw:
        assert raw.sizes.top_margin == 0 and raw.sizes.left_margin == 0   # list coordinates = ours
        if bad_list is None:
            return raw.postprocess(**kw)
        try:
            return raw.postprocess(bad_pixels_path=bad_list, **kw)
        except TypeError:
            # rawpy 0.28 declares bad_pixels_path a str but hands it to LibRaw's char * field, which
            # takes bytes only: set the field's bytes ourselves
            params = rawpy.Params(**kw)
            params.bad_pixels = os.fsencode(bad_list)
            return raw.postprocess(params=params)


def half_size(mosaic, cfa):
    """What :func:`libraw_half` gives for ``mosaic``: R, (G1 + G2) >> 1 and B of each 2 x 2 block."""
    m = mosaic.astype(np.int64)
    code = cfa_channel_map(cfa).ravel()
    tiles = [m[dy::2, dx::2] for dy in range(2) for dx in range(2)]
    greens = [t for t, c in zip(tiles, code) if c == 1]
    return np.stack([tiles[list(code).index(0)], (greens[0] + greens[1]) >> 1, tiles[list(code).index(2)]], -1)


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_listed_pixels_are_fixed_as_libraw_fixes_them(cfa, tmp_path):
    h, w = LIBRAW_SHAPE
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:h, 0:w]
    mosaic = np.round(800 + 600 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + rng.normal(0, 40, (h, w))).astype(np.uint16)
    # isolated defects (none in another's 5 x 5 box, where dcraw would average it in) hot and dead
    # at each of the four tile positions, so of every colour and both greens, and on the borders
    listed = [(6, 6), (6, 13), (13, 6), (13, 13), (22, 24), (22, 31), (29, 24), (29, 31), (0, 1), (39, 47), (1, 40)]
    for i, (r, c) in enumerate(listed):
        mosaic[r, c] = 4000 if i % 2 == 0 else 3
    dng = tmp_path / "defects.dng"
    rawcv.write_dng(dng, mosaic, cfa=cfa, black=64, white=4095)
    # a pixel that went bad after the photo was taken (1e9 s after 1970): dcraw and LibRaw skip
    # it, since this DNG has no date (their timestamp is 0); read_bad_pixels(taken=0) does the same
    later = (17, 20)
    path = write_list(tmp_path / "bad.txt", listed + [later], times=[0] * len(listed) + [10 ** 9])

    plain, fixed = libraw_half(dng), libraw_half(dng, path)
    assert np.array_equal(plain, half_size(mosaic, cfa))        # the relation documented above
    pixels = read_bad_pixels(path, taken=0)
    assert sorted(map(tuple, pixels.tolist())) == sorted(listed)
    ours = fix_bad_pixels(mosaic, pixels, cfa=cfa)
    changed = {tuple(b) for b in np.argwhere(np.any(plain != fixed, axis=-1)).tolist()}
    assert changed == {(r // 2, c // 2) for r, c in listed}
    # every block, changed or not, is what LibRaw makes of our corrected mosaic: the uint16 path
    # rounds down like dcraw's tot / n, and reads the same 8 photosites (for green, those of the
    # same tile position: LibRaw keeps the two greens apart)
    assert np.array_equal(fixed, half_size(ours, cfa))
    assert ours.dtype == np.uint16 and np.array_equal(np.delete(ours.ravel(), [r * w + c for r, c in listed]),
                                                      np.delete(mosaic.ravel(), [r * w + c for r, c in listed]))


# --------------------------------------------------------------------------- a slow reference of the ring rule

def ring_rule_reference(mosaic, bad):
    """Per bad pixel, per ring k = 1, 2, ...: the good photosites (y + 2i, x + 2j) with
    max(|i|, |j|) == k inside the image; the first ring with any gives the mean (integer data:
    sum // n; float: the float64 mean rounded to float32)."""
    h, w = mosaic.shape
    out = mosaic.copy()
    for y, x in zip(*np.nonzero(bad)):
        for k in range(1, max(h, w)):
            vals = [mosaic[y + 2 * i, x + 2 * j] for i in range(-k, k + 1) for j in range(-k, k + 1)
                    if max(abs(i), abs(j)) == k and 0 <= y + 2 * i < h and 0 <= x + 2 * j < w
                    and not bad[y + 2 * i, x + 2 * j]]
            if vals:
                if mosaic.dtype == np.uint16:
                    out[y, x] = sum(int(v) for v in vals) // len(vals)
                else:
                    out[y, x] = np.float32(sum(float(v) for v in vals) / len(vals))
                break
    return out


def clustered_mask(rng, shape):
    bad = rng.random(shape) < 0.02
    for _ in range(4):       # blocks of 3 x 3 to 7 x 7: whole first (and second) rings bad
        s = int(rng.integers(3, 8))
        y, x = rng.integers(0, shape[0] - s), rng.integers(0, shape[1] - s)
        bad[y:y + s, x:x + s] = True
    bad[:, int(rng.integers(0, shape[1]))] = True     # a bad column
    bad[0, 0] = bad[-1, -1] = True                    # corners: rings cut by the border
    return bad


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_fix_matches_a_per_pixel_reference_on_clusters(cfa):
    rng = np.random.default_rng(BAYER_PATTERNS.index(cfa))
    for shape in ((31, 44), (24, 17)):
        bad = clustered_mask(rng, shape)
        sensor = rng.integers(0, 65536, shape).astype(np.uint16)
        # float values that are multiples of 2^-12: their float64 sums are exact, in any order
        floats = (rng.integers(0, 4096, shape) / 4096).astype(np.float32)
        for mosaic in (sensor, floats):
            got = fix_bad_pixels(mosaic, bad, cfa=cfa)
            assert got.dtype == mosaic.dtype
            assert np.array_equal(got, ring_rule_reference(mosaic, bad))
        # the (row, col) list form is the same as the mask
        assert np.array_equal(fix_bad_pixels(sensor, np.argwhere(bad), cfa=cfa), fix_bad_pixels(sensor, bad, cfa=cfa))


def test_fix_errors_name_what_is_wrong():
    m = np.zeros((8, 8), np.float32)
    with pytest.raises(ValueError, match=r"bad pixel \(row 8, col 2\) is outside the mosaic \(8 rows, 8 columns\)"):
        fix_bad_pixels(m, [[8, 2]], cfa="RGGB")
    with pytest.raises(ValueError, match="mask must have the mosaic's shape"):
        fix_bad_pixels(m, np.zeros((8, 9), bool), cfa="RGGB")
    with pytest.raises(ValueError, match=r"\(N, 2\) integer array"):
        fix_bad_pixels(m, [[1.5, 2.0]], cfa="RGGB")
    with pytest.raises(ValueError, match="uint16 sensor values or floats"):
        fix_bad_pixels(m.astype(np.int32), [[1, 2]], cfa="RGGB")
    bad = np.zeros((8, 8), bool)
    bad[1::2, 0::2] = True
    with pytest.raises(ValueError, match=r"every photosite at CFA position \(row 1, col 0\) is bad"):
        fix_bad_pixels(m, bad, cfa="RGGB")
    with pytest.raises(ValueError, match="unsupported CFA"):
        fix_bad_pixels(m, bad, cfa="RGBW")


# --------------------------------------------------------------------------- the detector on a test chart

CHART = (192, 256)
NOISE = NoiseParams(lambda_shot=2e-4, lambda_read=2e-6)     # about ISO 200: 1 % noise at mid-grey


def chart_image():
    """An openISP-style chart in linear RGB: 16 colour patches, a ramp, a checkerboard and a
    slanted edge, and fine lines (1 pixel wide: vertical, horizontal, diagonal, steep and
    shallow), drawn at 4 x 4 supersampling and blurred by a Gaussian of 0.6 pixels, the lens and
    anti-aliasing filter a Bayer sensor sits behind (without them 1-pixel lines at shallow angles
    alias into dots that a colour plane sees one at a time, which no one-frame rule can tell from
    defects)."""
    h, w = CHART
    ss = 4
    yy, xx = (np.mgrid[0:h * ss, 0:w * ss] + 0.5) / ss
    img = np.zeros((h * ss, w * ss, 3))
    colours = np.random.default_rng(5).uniform(0.1, 0.85, (16, 3))
    for i in range(16):
        img[(yy < 64) & (xx // 32 == i % 8) & (yy // 32 == i // 8)] = colours[i]
    ramp = (yy >= 64) & (yy < 96)
    img[ramp] = (0.02 + 0.88 * xx[ramp] / w)[:, None] * np.array([1.0, 0.8, 0.6])
    board = (yy >= 96) & (yy < 144) & (xx < 128)
    img[board] = np.where(((yy // 16 + xx // 16) % 2 == 1)[board, None], [0.7, 0.6, 0.5], [0.08, 0.1, 0.12])
    edge = (yy >= 96) & (yy < 144) & (xx >= 128)
    img[edge] = np.where(((xx - 128) > 60 + 0.15 * (yy - 96))[edge, None], [0.8, 0.75, 0.7], [0.05, 0.06, 0.05])
    lines, q, d = yy >= 144, xx // 64, yy - 144
    img[lines] = 0.1
    on = (q == 0) & (xx % 4 < 1)
    on |= (q == 1) & (d % 4 < 1)
    on |= (q == 2) & ((xx - d) % 6 < 1.2)
    on |= (q == 3) & ((xx - 3 * d) % 9 < 1.5)
    on |= (q == 3) & ((3 * xx - d) % 20 < 3) & (xx >= 224)
    img[lines & on] = [0.8, 0.7, 0.75]
    img = img.reshape(h, ss, w, ss, 3).mean(axis=(1, 3))
    return ndimage.gaussian_filter(img, (0.6, 0.6, 0)).astype(np.float32)


# 3 pixels from the edge of a square or the slanted edge: the ring at 2 pixels reaches into the
# blur of the edge, so their mean is not the clean value there
NEAR_EDGES = [(102, 19, 1.0), (103, 51, 0.0), (118, 45, 0.99), (125, 40, 0.0), (110, 193, 0.0)]


def defects(cfa):
    """(row, col, value) of injected defects the detector must find: hot (near white) and dead
    (near 0) at all four tile positions in patches, on the ramp and 3 pixels from strong edges;
    a 2 x 2 cluster; two diagonally adjacent greens; and two photosites of one tile position two
    pixels apart, one hot and one dead. And the documented blind spot: two of one tile position
    two pixels apart, both hot."""
    found = []
    phases = [(0, 0), (0, 1), (1, 0), (1, 1)]
    for i, (py, px) in enumerate(phases):
        found += [(8 + py, 64 * i + 10 + px, 0.98), (20 + py, 64 * i + 42 + px, 0.01)]     # patches
        found += [(44 + py, 64 * i + 44 + px, 0.96), (52 + py, 64 * i + 16 + px, 0.0)]     # patches
        found += [(72 + py, 64 * i + 20 + px, 1.0), (86 + py, 50 * i + 100 + px, 0.02)]    # ramp
    found += [(100, 201, 0.0), (120, 170, 1.0)]                                              # either side of the slanted edge
    found += NEAR_EDGES
    found += [(136 + dy, 40 + dx, 0.97) for dy in range(2) for dx in range(2)]               # a 2 x 2 cluster
    green = [(py, px) for py, px in phases if cfa_channel_map(cfa)[py, px] == 1]
    found += [(106 + py, 88 + px, 0.95) for py, px in green]                                 # diagonal greens
    found += [(28, 176, 0.99), (28, 178, 0.01)]                                              # opposite ways
    blind = [(56, 140, 0.98), (58, 140, 0.98)]
    return found, blind


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_detector_finds_every_defect_on_a_chart_and_nothing_else(cfa):
    clean = mosaic_rgb(chart_image(), cfa=cfa)
    noisy = add_noise(clean, NOISE, np.random.default_rng(11))
    found, blind = defects(cfa)
    assert not detect_bad_pixels(noisy, cfa=cfa).any()        # no false positive on edges, lines, noise
    broken = noisy.copy()
    for r, c, v in found + blind:
        broken[r, c] = v
    flagged = detect_bad_pixels(broken, cfa=cfa)
    assert {tuple(p) for p in np.argwhere(flagged).tolist()} == {(r, c) for r, c, _ in found}
    assert {cfa_channel_map(cfa)[r % 2, c % 2] for r, c, _ in found} == {0, 1, 2}
    # corrected from their neighbours: within the noise of the clean chart at each defect (the mean
    # of 8 noisy photosites has a third of their noise; a bound of 3 noise sigmas leaves room for
    # the chart's curvature), or next to an edge, within that noise of what the same rule makes of
    # the clean chart (a mean of 8 that reaches into the edge's blur, as dcraw's does)
    fixed = fix_bad_pixels(broken, flagged, cfa=cfa)
    clean_rule = fix_bad_pixels(clean, flagged, cfa=cfa)
    for r, c, _ in found:
        sigma = np.sqrt(NOISE.variance(clean[r, c]))
        target = clean_rule[r, c] if (r, c, _) in NEAR_EDGES else clean[r, c]
        assert abs(fixed[r, c] - target) < 3 * sigma, (r, c, fixed[r, c], target)
    assert np.array_equal(fixed[~flagged], broken[~flagged])


def test_detector_leaves_a_real_frame_almost_alone(raw_samples):
    path = raw_samples / "nikon_d3200_rose.dng"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    raw = rawcv.read(path)
    mosaic = subtract_black_level(raw.data, black=raw.meta.black_level, white=raw.meta.white_level)
    flagged = detect_bad_pixels(mosaic, cfa=raw.cfa)
    assert flagged.mean() < 1e-4        # what it flags there are isolated photosites 5 to 10 x brighter
    sensor = detect_bad_pixels(raw.data, cfa=raw.cfa, white=raw.meta.white_level - raw.meta.black_level[0])
    assert sensor.mean() < 1e-4


def test_detector_arguments():
    m = np.full((8, 8), 0.5, np.float32)
    with pytest.raises(ValueError, match="at least 6 x 6"):
        detect_bad_pixels(m[:5], cfa="RGGB")
    with pytest.raises(ValueError, match="needs white="):
        detect_bad_pixels(m.astype(np.uint16), cfa="RGGB")
    with pytest.raises(ValueError, match="threshold must be a finite number >= 0"):
        detect_bad_pixels(m, cfa="RGGB", threshold=-1.0)


# --------------------------------------------------------------------------- the list file

def test_read_bad_pixels_format(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("# col row time\n\n  5 7 0\n12\t3 1500000000 # later\n   # nothing\n8 9 0 #\n")
    assert read_bad_pixels(path).tolist() == [[7, 5], [3, 12], [9, 8]]
    assert read_bad_pixels(path, taken=1000).tolist() == [[7, 5], [9, 8]]
    (tmp_path / "empty.txt").write_text("# none yet\n")
    assert read_bad_pixels(tmp_path / "empty.txt").shape == (0, 2)


@pytest.mark.parametrize("line", ["12 x 0", "12 3", "12 3 0 4", "-1 3 0", "1.5 3 0"])
def test_a_malformed_line_is_one_line_naming_the_file_and_line(tmp_path, line):
    path = tmp_path / "bad.txt"
    path.write_text(f"# header\n5 7 0\n{line}\n")
    with pytest.raises(ValueError) as err:
        read_bad_pixels(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}, line 3: ") and repr(line) in msg and "\n" not in msg


def test_unreadable_files_are_one_line_naming_the_file(tmp_path):
    missing = tmp_path / "nowhere.txt"
    with pytest.raises(FileNotFoundError) as err:
        read_bad_pixels(missing)
    assert str(err.value) == f"{missing}: cannot read bad-pixel list (No such file or directory)"
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"1 2 0\n\xff\xfe")
    with pytest.raises(ValueError, match=f"{binary}: bad-pixel list is not UTF-8"):
        read_bad_pixels(binary)


# --------------------------------------------------------------------------- the stage

def defective_raw(cfa, *, seed=0, shape=(30, 40)):
    rng = np.random.default_rng(seed)
    data = np.round(600 + 14920 * (0.4 + 0.01 * rng.standard_normal(shape))).astype(np.uint16)
    for i, (r, c) in enumerate(((5, 6), (12, 13), (20, 31), (21, 30), (26, 8))):
        data[r, c] = 15520 if i % 2 == 0 else 600
    meta = CameraMeta(cfa, black_level=600, white_level=15520, as_shot_wb=(1.9, 1.0, 1.4))
    return RawImage(data, meta)


def run_backends(pipeline, raws):
    torch = pytest.importorskip("torch")
    from rawcv.torch.backend import run_pipeline_torch

    got = run_pipeline_torch(pipeline, raws, device="cpu")          # one batch, a CFA per sample
    results = []
    for raw, t in zip(raws, got):
        numba, fused = pipeline.run(raw, backend="numba"), pipeline.run(raw, backend="fused")
        assert np.array_equal(numba.image, fused.image) and numba.record == fused.record
        np.testing.assert_allclose(t.permute(1, 2, 0).numpy(), numba.image, rtol=1e-6, atol=1e-6)
        results.append(numba)
    assert torch.is_tensor(got)
    return results


def test_stage_detects_and_fixes_alike_on_every_backend():
    p = Pipeline(["black_level", {"stage": "bad_pixels", "detect": "on"}, "demosaic"])
    raws = [defective_raw(cfa, seed=i) for i, cfa in enumerate(BAYER_PATTERNS)]
    for result, raw in zip(run_backends(p, raws), raws):
        assert result.record[1]["detected"] == result.record[1]["corrected"] == 5
        mosaic = Pipeline(["black_level", {"stage": "bad_pixels", "detect": "on"}]).run(raw).image
        assert 0.25 < mosaic[5, 6] < 0.55 and 0.25 < mosaic[20, 31] < 0.55


def test_stage_reads_its_list_when_applied(tmp_path):
    path = write_list(tmp_path / "bad.txt", [(5, 6), (12, 13), (0, 0)])
    p = Pipeline(["black_level", {"stage": "bad_pixels", "path": path}, "demosaic"])
    raws = [defective_raw(cfa, seed=i) for i, cfa in enumerate(BAYER_PATTERNS)]
    for result in run_backends(p, raws):
        assert {k: result.record[1][k] for k in ("listed", "corrected")} == {"listed": 3, "corrected": 3}
    # the list and the detector together: a pixel in both counts once
    both = Pipeline(["black_level", {"stage": "bad_pixels", "path": path, "detect": "on"}])
    record = both.run(raws[0]).record[1]
    assert (record["listed"], record["detected"], record["corrected"]) == (3, 5, 6)
    expected = fix_bad_pixels(Pipeline(["black_level"]).run(raws[0]).image,
                              read_bad_pixels(path), cfa=raws[0].cfa)
    assert np.array_equal(Pipeline(["black_level", {"stage": "bad_pixels", "path": path}]).run(raws[0]).image,
                          expected)


def test_stage_errors_are_one_line_naming_the_file_or_pixel(tmp_path):
    raw = defective_raw("RGGB")
    missing = tmp_path / "gone.txt"
    p = Pipeline(["black_level", {"stage": "bad_pixels", "path": str(missing)}])      # built: not read yet
    with pytest.raises(PipelineError) as err:
        p.run(raw)
    assert str(err.value) == f"stage 'bad_pixels': {missing}: cannot read bad-pixel list (No such file or directory)"
    outside = write_list(tmp_path / "outside.txt", [(2, 3), (30, 1)])
    with pytest.raises(PipelineError, match=r"^stage 'bad_pixels': bad pixel \(row 30, col 1\) is outside the "
                                            r"mosaic \(30 rows, 40 columns\)$"):
        Pipeline(["black_level", {"stage": "bad_pixels", "path": outside}]).run(raw)
    pytest.importorskip("torch")
    from rawcv.torch.backend import run_pipeline_torch

    with pytest.raises(PipelineError, match="cannot read bad-pixel list"):
        run_pipeline_torch(p, raw, device="cpu")
    with pytest.raises(PipelineError, match="parameter 'pixels' must be"):
        BadPixels(pixels=[1, 2, 3])


def test_stage_defaults():
    stage = BadPixels()
    assert (stage.detect, stage.path, stage.pixels, stage.constant) == ("off", None, None, None)
    raw = defective_raw("GRBG")
    off = Pipeline(["black_level", "bad_pixels"]).run(raw)
    assert np.array_equal(off.image, Pipeline(["black_level"]).run(raw).image) and off.record[1]["corrected"] == 0
    with pytest.raises(PipelineError, match="'bad_pixels' takes sensor values|must start with"):
        Pipeline(["bad_pixels", "black_level"])       # a pipeline file's stage follows black level


def test_dng_bad_pixel_opcodes_run_on_stored_values_and_after_black_level(tmp_path):
    from rawcv import dng_opcodes as dng

    points, rects = ((5, 6), (12, 13)), ((20, 30, 22, 31),)       # rectangle: rows 20-21, column 30
    assert [int(v) for v in BadPixels.from_opcode(dng.FixBadPixelsList(points, rects, 1)).pixels] == \
        [5, 6, 12, 13, 20, 30, 21, 30]
    raw0 = defective_raw("BGGR")
    data = raw0.data.copy()
    data[3, 30] = data[25, 3] = 0                                  # stored zeros: FixBadPixelsConstant(0)
    lists = {1: dng.encode_opcode_list([dng.FixBadPixelsList(points, rects, 2), dng.FixBadPixelsConstant(0, 2)]),
             2: dng.encode_opcode_list([dng.FixBadPixelsList(((26, 8),), (), 2)])}
    path = tmp_path / "opcodes.dng"
    rawcv.write_dng(path, data, cfa="BGGR", black=600, white=15520, opcode_lists=lists)
    raw = rawcv.read(path)
    p = Pipeline(["black_level"])
    assert [s.name for s in p.stages_for(raw.meta)[0]] == ["bad_pixels", "bad_pixels", "black_level", "bad_pixels"]
    # list 1 on the stored values (integer means, as dcraw), list 2 on the normalised mosaic
    first = np.argwhere(bad_pixel_mask([(5, 6), (12, 13), (20, 30), (21, 30)], data.shape) | (data == 0))
    expected = fix_bad_pixels(subtract_black_level(fix_bad_pixels(data, first, cfa="BGGR"), black=600, white=15520),
                              [[26, 8]], cfa="BGGR")
    result = p.run(raw)
    assert np.array_equal(result.image, expected)
    assert np.array_equal(p.run(raw, backend="fused").image, expected)
    pytest.importorskip("torch")
    from rawcv.torch.backend import run_pipeline_torch

    np.testing.assert_allclose(run_pipeline_torch(p, raw, device="cpu")[0, 0].numpy(), expected, rtol=1e-6, atol=1e-7)


def test_stage_on_stored_values_matches_its_torch_twin():
    torch = pytest.importorskip("torch")
    from rawcv.isp.frame import RAW, Frame
    from rawcv.torch.isp import TorchContext

    stage = BadPixels(detect="on", pixels=[0, 0, 7, 9], constant=600)
    stage.accepts = (RAW,) + stage.accepts              # as from_opcode makes it for OpcodeList1
    raws = [defective_raw(cfa, seed=i) for i, cfa in enumerate(BAYER_PATTERNS)]
    raws[1] = RawImage(raws[1].data, raws[1].meta.replace(white_level=9000.0))   # a span of its own
    ctx = TorchContext([r.meta for r in raws], kind=RAW)
    x = torch.stack([torch.from_numpy(r.data.astype(np.float32))[None] for r in raws])
    got = stage.torch(x, ctx)
    for raw, t in zip(raws, got):
        frame = stage.apply(Frame.from_raw(raw))
        assert frame.data.dtype == np.uint16 and frame.notes[-1]["corrected"] >= 6
        assert np.array_equal(t[0].numpy(), frame.data.astype(np.float32))


def test_torch_fix_is_differentiable_and_keeps_integers():
    torch = pytest.importorskip("torch")
    from rawcv.torch.isp.bad_pixels import fix_bad_pixels as torch_fix

    bad = torch.zeros(2, 1, 10, 12, dtype=torch.bool)
    bad[0, 0, 4, 4] = bad[1, 0, 0:5, 0:5] = True
    x = torch.rand(2, 1, 10, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: torch_fix(a, bad, cfa=["RGGB", "BGGR"]), (x,))
    sensor = torch.randint(0, 4096, (10, 12), dtype=torch.int32)
    got = torch_fix(sensor, bad[1, 0], cfa="GBRG")
    assert got.dtype == torch.int32
    assert np.array_equal(got.numpy(), fix_bad_pixels(sensor.numpy().astype(np.uint16), bad[1, 0].numpy(), cfa="GBRG"))


def test_bad_pixel_mask_accepts_an_empty_list():
    assert not bad_pixel_mask([], (4, 6)).any()
