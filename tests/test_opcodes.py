"""DNG opcode lists: the bytes (read back exactly what was written, clear errors for malformed
lists), each opcode against an independent reference (a per-pixel transcription of the DNG SDK's
gain map interpolator, NumPy's polyval, SciPy's map_coordinates, the specification's formulas),
the pipelines inserting them where the specification says, and files LibRaw still reads."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import rawpy
from scipy import ndimage

from rawcv import dng_opcodes as dng
from rawcv.errors import PipelineError
from rawcv.io import read, read_metadata, write_dng
from rawcv.isp.opcodes import apply_gain_map, map_polynomial, warp_rectilinear
from rawcv.meta import CameraMeta, RawImage
from rawcv.pipeline import Pipeline, load_pipeline

RNG = np.random.default_rng(7)
SHAPE = (40, 56)


def _gain_map_record(rows=5, cols=7, planes=1, area=None, spacing=None, origin=(0.0, 0.0)):
    grid = 1.0 + 0.8 * RNG.random((rows, cols, planes))
    spacing = spacing or (1.0 / (rows - 1), 1.0 / (cols - 1))
    area = area or dng.Area(0, 0, SHAPE[0], SHAPE[1], 0, 3, 1, 1)
    return dng.GainMap(area, (rows, cols), spacing, origin, planes, tuple(float(np.float32(g)) for g in grid.ravel()))


def _sdk_gain(record: dng.GainMap, row: int, col: int, plane: int, h: int, w: int) -> float:
    """One pixel's gain the way the DNG SDK's dng_gain_map_interpolator computes it (scalar Python)."""
    grid = record.grid().astype(np.float64)
    mp = min(plane, record.map_planes - 1)

    def axis(pos_px, n, points, spacing, origin):
        f = ((pos_px + 0.5) / n - origin) / spacing
        if f <= 0:
            return 0, 0, 0.0
        i = int(f)
        if i >= points - 1:
            return points - 1, points - 1, 0.0
        return i, i + 1, f - i

    r1, r2, rf = axis(row, h, record.points[0], record.spacing[0], record.origin[0])
    c1, c2, cf = axis(col, w, record.points[1], record.spacing[1], record.origin[1])
    left = grid[r1, c1, mp] * (1 - rf) + grid[r2, c1, mp] * rf
    right = grid[r1, c2, mp] * (1 - rf) + grid[r2, c2, mp] * rf
    return left * (1 - cf) + right * cf


# --- the bytes ------------------------------------------------------------------------------------

ALL_RECORDS = [
    dng.WarpRectilinear(((1.0, 0.01, -0.002, 0.0, 0.0005, -0.0003),), (0.48, 0.52)),
    dng.WarpRectilinear(tuple((1.0 + i * 1e-3, 0.01, 0.0, 0.0, 0.0, 0.0) for i in range(3)), (0.5, 0.5)),
    dng.FixVignetteRadial((0.3, 0.1, 0.01, 0.0, 0.0), (0.5, 0.45)),
    dng.FixBadPixelsConstant(0, 1),
    dng.FixBadPixelsList(((3, 4), (10, 11)), ((20, 20, 22, 23),), 0),
    dng.TrimBounds(2, 4, 38, 50),
    dng.MapPolynomial(dng.Area(0, 0, 40, 56, 0, 1, 1, 1), (0.0, 0.0078125, 0.0, 0.9921875)),
    _gain_map_record(planes=4, area=dng.Area(0, 1, 40, 56, 0, 1, 2, 2)),
]


def test_every_record_reads_back_exactly_what_was_written():
    entries = [dng.Opcode(r, flags=i % 2) for i, r in enumerate(ALL_RECORDS)]
    back = dng.decode_opcode_list(dng.encode_opcode_list(entries))
    assert back == entries
    assert [e.optional for e in back] == [bool(i % 2) for i in range(len(entries))]


def test_an_unknown_opcode_keeps_its_bytes():
    unknown = dng.Unsupported(7, dng.OPTIONAL, b"\x00" * 12)          # MapTable: not applied by rawcv
    back = dng.decode_opcode_list(dng.encode_opcode_list([unknown]))
    assert back[0].record == unknown and back[0].name == "MapTable" and back[0].optional


@pytest.mark.parametrize("cut, message", [
    (lambda b: b[:-3], "declares 56 bytes of parameters, the list has 53"),
    (lambda b: b[:20], "declares 56 bytes of parameters"),
    (lambda b: b + b"\x00", "bytes after its 1 opcodes"),
])
def test_malformed_lists_are_named_errors(cut, message):
    payload = dng.encode_opcode_list([ALL_RECORDS[2]])
    with pytest.raises(dng.OpcodeError, match=message):
        dng.decode_opcode_list(cut(payload))


def test_byte_count_that_disagrees_with_the_fields_is_an_error():
    payload = bytearray(dng.encode_opcode_list([dng.TrimBounds(0, 0, 4, 4)]))
    payload[16:20] = struct.pack(">I", 20)
    payload += b"\x00" * 4
    with pytest.raises(dng.OpcodeError, match="declares 20 bytes of parameters, its fields take 16"):
        dng.decode_opcode_list(bytes(payload))


@pytest.mark.parametrize("record, message", [
    (dng.TrimBounds(5, 0, 5, 4), "is empty"),
    (dng.FixVignetteRadial((0.1, 0, 0, 0, 0), (1.5, 0.5)), "not inside the image"),
    (dng.FixVignetteRadial((float("nan"), 0, 0, 0, 0), (0.5, 0.5)), "not finite"),
])
def test_parameters_outside_their_domain_are_errors(record, message):
    with pytest.raises(dng.OpcodeError, match=message):
        dng.decode_opcode_list(dng.encode_opcode_list([record]))


# --- each opcode against an independent reference -------------------------------------------------

def test_gain_map_matches_the_sdk_interpolator_per_pixel():
    record = _gain_map_record(rows=4, cols=6, planes=3, spacing=(0.3, 0.18), origin=(0.1, -0.05))
    image = RNG.random(SHAPE + (3,), dtype=np.float32)
    out = apply_gain_map(image, gains=record.grid(), spacing=record.spacing, origin=record.origin)
    h, w = SHAPE
    expected = np.array([[[image[y, x, p] * np.float32(_sdk_gain(record, y, x, p, h, w)) for p in range(3)]
                          for x in range(w)] for y in range(h)], dtype=np.float32)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_gain_map_area_pitch_and_planes_touch_only_their_samples():
    record = _gain_map_record(rows=3, cols=3, planes=1, area=dng.Area(4, 5, 30, 41, 1, 1, 2, 3))
    image = RNG.random(SHAPE + (3,), dtype=np.float32)
    out = apply_gain_map(image, gains=record.grid(), spacing=record.spacing, area=list(record.area.values()))
    touched = np.zeros(image.shape, bool)
    touched[4:30:2, 5:41:3, 1] = True
    np.testing.assert_array_equal(out[~touched], image[~touched])
    ys, xs = np.nonzero(touched[..., 1])
    for y, x in zip(ys[::17], xs[::17]):
        assert out[y, x, 1] == pytest.approx(image[y, x, 1] * _sdk_gain(record, y, x, 1, *SHAPE), rel=1e-6)


def test_map_polynomial_is_numpy_polyval():
    image = RNG.random(SHAPE, dtype=np.float32)
    c = [0.01, 0.5, -0.2, 0.7]
    out = map_polynomial(image, coefficients=c)
    np.testing.assert_allclose(out, np.polyval(c[::-1], image.astype(np.float64)), rtol=1e-6)


def _smooth_rgb(h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([np.sin(xx / 5.0) + yy / h, np.cos(yy / 4.0) * xx / w, np.sin((xx + yy) / 7.0)], -1).astype(np.float32)


@pytest.mark.parametrize("per_plane", [False, True])
def test_warp_rectilinear_is_the_specified_mapping_sampled_bilinearly(per_plane):
    h, w = SHAPE
    image = _smooth_rgb(h, w)
    k = [[1.02, -0.05, 0.01, 0.0, 0.002, -0.001]]
    if per_plane:           # lateral chromatic aberration: red and blue scaled apart
        k = [[1.004, -0.05, 0.0, 0.0, 0.0, 0.0], [1.0, -0.05, 0.0, 0.0, 0.0, 0.0], [0.996, -0.05, 0.0, 0.0, 0.0, 0.0]]
    center = (0.45, 0.55)
    out = warp_rectilinear(image, coefficients=np.ravel(k), center=center)
    # the specification's mapping, written out here on its own
    cx, cy = center[0] * (w - 1), center[1] * (h - 1)
    m = max(np.hypot(x - cx, y - cy) for y in (0, h - 1) for x in (0, w - 1))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = (xx - cx) / m, (yy - cy) / m
    r2 = dx * dx + dy * dy
    for p in range(3):
        kr0, kr1, kr2, kr3, kt0, kt1 = k[min(p, len(k) - 1)]
        f = kr0 + kr1 * r2 + kr2 * r2 ** 2 + kr3 * r2 ** 3
        sx = cx + m * (f * dx + kt0 * 2 * dx * dy + kt1 * (r2 + 2 * dx * dx))
        sy = cy + m * (f * dy + kt1 * 2 * dx * dy + kt0 * (r2 + 2 * dy * dy))
        expected = ndimage.map_coordinates(image[..., p].astype(np.float64), [sy, sx], order=1, mode="nearest")
        np.testing.assert_allclose(out[..., p], expected, atol=2e-6)


# --- DNG files: written, read back, applied where the specification says --------------------------

def _scene_mosaic(h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    return (0.25 + 0.2 * np.sin(xx / 6.0) * np.cos(yy / 9.0)).astype(np.float64)


def _write(tmp_path, name, stored, lists, **kw):
    path = tmp_path / name
    write_dng(path, stored, cfa="RGGB", black=0, white=65535, opcode_lists=lists, **kw)
    return path


def test_libraw_reads_the_files_and_leaves_the_opcodes_to_the_reader(tmp_path):
    stored = (RNG.random((48, 64)) * 60000).astype(np.uint16)
    lists = {n: dng.encode_opcode_list(ALL_RECORDS[:3]) for n in (1, 2, 3)}
    path = _write(tmp_path, "all.dng", stored, lists)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(raw.raw_image_visible, stored)
    meta = read(path).meta
    assert dict(meta.opcode_lists) == lists
    assert read_metadata(path).meta == meta


def test_a_lens_shading_gain_map_in_list_2_undoes_exactly_what_the_camera_did(tmp_path):
    h, w = 48, 64
    truth = _scene_mosaic(h, w)
    record = _gain_map_record(rows=5, cols=7, planes=4, area=dng.Area(0, 0, h, w, 0, 1, 1, 1))
    # four maps, one per CFA position, as phones write them: each a GainMap with pitch 2
    maps = [dng.GainMap(dng.Area(dy, dx, h, w, 0, 1, 2, 2), record.points, record.spacing, record.origin, 1,
                        tuple(record.grid()[..., 2 * dy + dx].ravel().tolist()))
            for dy in range(2) for dx in range(2)]
    gain = np.array([[_sdk_gain(maps[2 * (y % 2) + x % 2], y, x, 0, h, w) for x in range(w)] for y in range(h)])
    stored = np.rint(truth / gain * 65535).astype(np.uint16)
    path = _write(tmp_path, "shaded.dng", stored, {2: dng.encode_opcode_list(maps)})
    pipe = Pipeline(["black_level"], name="levels")
    corrected = pipe(read(path))
    np.testing.assert_allclose(corrected, truth, atol=1.0 / 65535 * gain.max() + 1e-6)
    uncorrected = pipe.with_opcodes("off")(read(path))
    assert np.abs(uncorrected - truth).max() > 0.05
    record_names = [e["stage"] for e in pipe.run(read(path)).record]
    assert record_names == ["black_level", "gain_map", "gain_map", "gain_map", "gain_map"]


def test_fix_vignette_radial_in_list_2_is_the_vignetting_formula(tmp_path):
    h, w = 48, 64
    truth = _scene_mosaic(h, w)
    k, (cx, cy) = (0.4, -0.1, 0.05, 0.02, -0.01), (0.55, 0.45)
    px, py = cx * (w - 1), cy * (h - 1)
    m2 = max((x - px) ** 2 + (y - py) ** 2 for y in (0, h - 1) for x in (0, w - 1))
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - px) ** 2 + (yy - py) ** 2) / m2
    gain = 1 + sum(ki * r2 ** (i + 1) for i, ki in enumerate(k))
    stored = np.rint(truth / gain * 65535).astype(np.uint16)
    path = _write(tmp_path, "vignetted.dng", stored,
                  {2: dng.encode_opcode_list([dng.FixVignetteRadial(k, (cx, cy))])})
    corrected = Pipeline(["black_level"], name="levels")(read(path))
    np.testing.assert_allclose(corrected, truth, atol=gain.max() / 65535 + 1e-5)


def test_list_3_warps_and_trims_after_demosaicing(tmp_path):
    h, w = 48, 64
    stored = np.rint(_scene_mosaic(h, w) * 65535).astype(np.uint16)
    warp = dng.WarpRectilinear(((1.01, -0.04, 0.0, 0.0, 0.0, 0.0),), (0.5, 0.5))
    trim = dng.TrimBounds(3, 5, 44, 60)
    path = _write(tmp_path, "lens.dng", stored, {3: dng.encode_opcode_list([warp, trim])})
    pipe = Pipeline(["black_level", "demosaic"], name="rgb")
    raw = read(path)
    plain = pipe.with_opcodes("off")(raw)
    expected = warp_rectilinear(plain, coefficients=warp.coefficients[0], center=warp.center)[3:44, 5:60]
    result = pipe.run(raw)
    np.testing.assert_array_equal(result.image, expected)
    assert [e["stage"] for e in result.record] == ["black_level", "demosaic", "warp_rectilinear", "trim_bounds"]


def test_list_1_works_on_stored_values_and_rounds_back():
    stored = (RNG.random((24, 32)) * 50000).astype(np.uint16)
    poly = dng.MapPolynomial(dng.Area(0, 0, 24, 32, 0, 1, 1, 1), (0.0, 1.1))
    meta = CameraMeta("RGGB", black_level=0, white_level=65535, opcode_lists=((1, dng.encode_opcode_list([poly])),))
    pipe = Pipeline(["black_level"], name="levels")
    out = pipe(RawImage(stored, meta))
    expected = np.minimum(np.floor(stored * 1.1 + 0.5), 65535) / 65535
    # the values go through float32 fractions of 65535, so an exact tie (n * 1.1 = k + 0.5) may round
    # either way: one level at most
    assert np.abs(out - expected).max() <= 1.0 / 65535 + 1e-7
    assert np.mean(np.abs(out - expected) < 1e-7) > 0.98


def test_fused_numba_and_torch_agree_with_opcodes_inserted(tmp_path):
    torch_backend = pytest.importorskip("rawcv.torch.backend")
    h, w = 48, 64
    stored = np.rint(_scene_mosaic(h, w) * 60000).astype(np.uint16)
    lists = {1: dng.encode_opcode_list([dng.MapPolynomial(dng.Area(0, 0, h, w, 0, 1, 1, 1), (0.0, 0.9))]),
             2: dng.encode_opcode_list([_gain_map_record(area=dng.Area(0, 0, h, w, 0, 1, 1, 1)),
                                        dng.FixVignetteRadial((0.2, 0.0, 0.0, 0.0, 0.0), (0.5, 0.5))]),
             3: dng.encode_opcode_list([dng.WarpRectilinear(((1.0, -0.03, 0, 0, 0, 0),), (0.5, 0.5)),
                                        dng.TrimBounds(2, 2, 46, 62)])}
    raw = read(_write(tmp_path, "all.dng", stored, lists, color_matrix=np.eye(3)))
    pipe = load_pipeline("default")
    fused, numba = pipe.run(raw, backend="fused"), pipe.run(raw, backend="numba")
    np.testing.assert_array_equal(fused.image, numba.image)
    assert fused.record == numba.record
    out = torch_backend.run_pipeline_torch(pipe, raw, device="cpu")[0].permute(1, 2, 0).numpy()
    assert out.shape == numba.image.shape == (44, 60, 3)
    assert np.abs(out.astype(int) - numba.image.astype(int)).max() <= 1


def test_unsupported_opcodes_are_skipped_if_optional_and_named(tmp_path):
    stored = np.full((32, 32), 1000, np.uint16)
    optional = dng.Opcode(dng.Unsupported(7, dng.OPTIONAL, b"\x00" * 4))
    path = _write(tmp_path, "maptable.dng", stored, {2: dng.encode_opcode_list([optional])})
    record = Pipeline(["black_level"], name="levels").run(read(path)).record
    assert record[-1] == {"stage": "opcodes", "list": 2, "opcode": "MapTable",
                          "skipped": "optional, and rawcv does not support it"}
    required = dng.Opcode(dng.Unsupported(7, 0, b"\x00" * 4))
    path = _write(tmp_path, "maptable_required.dng", stored, {2: dng.encode_opcode_list([required])})
    with pytest.raises(PipelineError, match=r"maptable_required.dng: OpcodeList2 has MapTable, which is not optional"):
        Pipeline(["black_level"], name="levels").run(read(path))
    assert Pipeline(["black_level"], name="levels", opcodes="off").run(read(path)).record[-1]["stage"] == "black_level"


def test_a_malformed_list_names_the_file(tmp_path):
    path = _write(tmp_path, "broken.dng", np.full((32, 32), 1000, np.uint16), {2: b"\x00\x00\x00\x02junk"})
    with pytest.raises(PipelineError, match=r"broken.dng: malformed OpcodeList2: opcode 1 of 2"):
        load_pipeline("default").run(read(path))


def test_opcodes_setting_in_yaml_and_its_errors():
    p = Pipeline.from_yaml("name: x\nopcodes: off\nstages: [black_level]\n")
    assert p.opcodes == "off" and "opcodes: 'off'" in p.to_yaml()
    with pytest.raises(PipelineError, match="opcodes must be one of auto, off"):
        Pipeline.from_yaml("name: x\nopcodes: sometimes\nstages: [black_level]\n")


def test_the_lossy_canon_dng_is_not_linearised_twice(raw_samples):
    """LibRaw decodes a lossy DNG's 8-bit samples through list 2's MapPolynomial opcodes (the
    samples are not linear): its values all come from that polynomial's 256-entry table, so the
    reader leaves those opcodes out of the lists the pipelines apply."""
    import tifffile

    path = raw_samples / "canon_eos_6d_linear.dng"
    with tifffile.TiffFile(path) as tif:
        tif.filehandle.seek(tif.pages[0].subifds[0])
        raw_ifd = tifffile.TiffPage(tif, index=(0, 0))
        assert raw_ifd.tags[254].value == 0 and raw_ifd.tags[259].value == 34892
        entries = dng.decode_opcode_list(bytes(raw_ifd.tags[51009].value))
    assert [e.name for e in entries] == ["MapPolynomial"] * 3
    raw = read(path)
    assert raw.meta.opcode_lists == ()
    for entry in entries:
        c = entry.record.coefficients
        table = np.floor(np.polyval(c[::-1], np.arange(256) / 255.0) * 65535).astype(np.uint16)
        plane = raw.data[..., entry.record.area.plane]
        assert np.isin(plane, table).all()
