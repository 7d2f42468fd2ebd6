"""Reading RAW files: the real camera samples (facts from ../shared/raw-samples/README.md), DNG write
and read-back (checked with rawpy directly too), headerless dumps, and bad input."""

from __future__ import annotations

import os
import types

import cv2
import numpy as np
import pytest
import rawpy

import rawcv
from rawcv.errors import RawReadError, UnsupportedCFAError
from rawcv.io.reader import _cfa_name
from rawcv.pipeline import load_pipeline

LAYOUTS = ("RGGB", "BGGR", "GRBG", "GBRG")
NIKON_XYZ_TO_CAM = np.array([[0.9020, -0.2890, -0.0715],
                             [-0.4535, 1.2436, 0.2348],
                             [-0.0934, 0.1919, 0.7086]])


# ------------------------------------------------------------------------------------------------
# real camera samples
# ------------------------------------------------------------------------------------------------

def test_nikon_dng(raw_samples):
    path = raw_samples / "nikon_d3200_rose.dng"
    raw = rawcv.read(path)
    assert raw.cfa == "RGGB" and not raw.is_linear
    assert raw.data.dtype == np.uint16 and raw.data.shape == (512, 768)
    assert (raw.width, raw.height) == (768, 512)
    assert raw.meta.black_level == (600.0, 600.0, 600.0, 600.0)
    assert raw.meta.white_level == 15520.0
    np.testing.assert_allclose(raw.meta.as_shot_wb, (1.9492, 1.0, 1.3437), rtol=0, atol=1e-4)
    np.testing.assert_allclose(np.array(raw.meta.xyz_to_cam), NIKON_XYZ_TO_CAM, rtol=0, atol=1e-4)
    assert (raw.data > 15520).any()   # clipped highlights, as the README says
    assert raw.path == str(path)
    with rawpy.imread(str(path)) as ref:
        assert np.array_equal(raw.data, ref.raw_image_visible)


def test_canon_linear_dng(raw_samples):
    path = raw_samples / "canon_eos_6d_linear.dng"
    raw = rawcv.read(path)
    assert raw.meta.linear is True and raw.is_linear
    assert raw.cfa is None
    assert raw.data.shape == (816, 1224, 3) and raw.data.dtype == np.uint16
    with rawpy.imread(str(path)) as ref:
        assert np.array_equal(raw.data, ref.raw_image_visible[..., :3])
    result = load_pipeline("default").run(raw)
    assert result.image.shape == (816, 1224, 3) and result.image.dtype == np.uint8
    demosaic = next(e for e in result.record if e["stage"] == "demosaic")
    assert "skipped" in demosaic
    # the skipped demosaic passes the data through: linear pipeline == the RGB stages by hand
    from rawcv import isp
    m = raw.meta
    expected = isp.subtract_black_level(raw.data, black=m.black_level, white=m.white_level)
    expected = isp.white_balance(expected, isp.normalize_gains(m.as_shot_wb))
    # two calibrations (standard light A, D65): the matrix for the file's white, as the DNG spec says
    expected = isp.apply_color_matrix(expected, isp.camera_to_srgb_matrix(isp.color.file_xyz_to_camera(m)[0]))
    for backend in ("numba", "fused"):
        linear = load_pipeline("linear").run(raw, backend=backend)
        assert linear.image.shape == (816, 1224, 3) and linear.image.dtype == np.float32
        np.testing.assert_allclose(linear.image, expected, rtol=0, atol=1e-6)


def test_kodak_kdc(raw_samples):
    path = raw_samples / "kodak_dc50.kdc"
    raw = rawcv.read(path)
    assert raw.cfa == "GRBG"
    assert raw.meta.white_level == 16383.0
    assert raw.meta.black_level == (0.0, 0.0, 0.0, 0.0)
    assert raw.meta.as_shot_wb == (1.0, 1.0, 1.0)
    assert "Kodak" in raw.meta.make
    assert raw.data.shape == (512, 768) and raw.data.dtype == np.uint16
    with rawpy.imread(str(path)) as ref:
        assert np.array_equal(raw.data, ref.raw_image_visible)


# ------------------------------------------------------------------------------------------------
# write_dng round trip
# ------------------------------------------------------------------------------------------------

def layout_from_rawpy(ref) -> str:
    desc = ref.color_desc.decode()
    return "".join(desc[i] for i in np.asarray(ref.raw_pattern).ravel())


@pytest.mark.parametrize("cfa", LAYOUTS)
def test_write_dng_round_trip(cfa, tmp_path):
    rng = np.random.default_rng(LAYOUTS.index(cfa))
    mosaic = rng.integers(0, 4096, (32, 46)).astype(np.uint16)
    black = [60.0, 64.0, 68.0, 72.0]
    white = 4000
    wb = (2.0, 1.0, 1.5)
    noise = [1e-4, 2e-6, 1.1e-4, 2.1e-6, 1.2e-4, 2.2e-6]
    path = tmp_path / f"{cfa}.dng"
    rawcv.write_dng(path, mosaic, cfa=cfa, black=black, white=white, as_shot_wb=wb,
                    color_matrix=NIKON_XYZ_TO_CAM, noise_profile=noise)

    with rawpy.imread(str(path)) as ref:
        assert layout_from_rawpy(ref) == cfa
        per_colour = list(ref.black_level_per_channel)
        pattern = np.asarray(ref.raw_pattern)
        assert [per_colour[pattern[dy, dx]] for dy in range(2) for dx in range(2)] == black
        assert ref.white_level == white
        cam_wb = np.asarray(ref.camera_whitebalance[:3])
        np.testing.assert_allclose(cam_wb / cam_wb[1], wb, rtol=1e-6)
        assert np.array_equal(ref.raw_image_visible, mosaic)

    raw = rawcv.read(path)
    assert raw.cfa == cfa
    assert raw.meta.black_level == tuple(black)
    assert raw.meta.white_level == white
    np.testing.assert_allclose(raw.meta.as_shot_wb, wb, rtol=1e-6)
    np.testing.assert_allclose(np.array(raw.meta.xyz_to_cam), NIKON_XYZ_TO_CAM, rtol=0, atol=1e-4)
    np.testing.assert_allclose(raw.meta.noise_profile, noise, rtol=1e-9)
    assert raw.meta.make == "rawcv" and raw.meta.model == "synthetic camera"
    assert not raw.is_linear
    assert raw.data.dtype == np.uint16 and np.array_equal(raw.data, mosaic)


def test_write_dng_refuses_to_overwrite(tmp_path):
    path = tmp_path / "a.dng"
    m = np.full((32, 32), 100, np.uint16)
    rawcv.write_dng(path, m, cfa="RGGB")
    with pytest.raises(rawcv.OutputExistsError):
        rawcv.write_dng(path, m, cfa="RGGB")
    rawcv.write_dng(path, m + 1, cfa="RGGB", overwrite=True)
    assert np.array_equal(rawcv.read(path).data, m + 1)


# ------------------------------------------------------------------------------------------------
# headerless dumps
# ------------------------------------------------------------------------------------------------

def test_read_bayer_round_trip(tmp_path):
    rng = np.random.default_rng(7)
    data = rng.integers(0, 4096, (10, 14)).astype("<u2")
    path = tmp_path / "dump.raw"
    data.tofile(path)
    raw = rawcv.read_bayer(path, width=14, height=10, cfa="gbrg", bits=12, black=[64, 65, 66, 67])
    assert raw.data.dtype == np.uint16 and np.array_equal(raw.data, data)
    assert raw.cfa == "GBRG"
    assert raw.meta.white_level == 4095.0
    assert raw.meta.black_level == (64.0, 65.0, 66.0, 67.0)


def test_read_bayer_with_header_offset(tmp_path):
    data = np.arange(24, dtype="<u2").reshape(4, 6)
    path = tmp_path / "dump.raw"
    path.write_bytes(b"HEADER!!" + data.tobytes())
    raw = rawcv.read_bayer(path, width=6, height=4, cfa="RGGB", offset=8, white=1000)
    assert np.array_equal(raw.data, data) and raw.meta.white_level == 1000.0


def test_read_bayer_wrong_size(tmp_path):
    path = tmp_path / "dump.raw"
    np.zeros((10, 14), "<u2").tofile(path)
    with pytest.raises(RawReadError) as info:
        rawcv.read_bayer(path, width=14, height=11, cfa="RGGB")
    assert str(path) in str(info.value)


def test_read_bayer_values_over_bit_depth(tmp_path):
    path = tmp_path / "dump.raw"
    data = np.full((4, 4), 100, "<u2")
    data[2, 3] = 4096
    data.tofile(path)
    with pytest.raises(RawReadError) as info:
        rawcv.read_bayer(path, width=4, height=4, cfa="RGGB", bits=12)
    assert str(path) in str(info.value) and "12-bit" in str(info.value)
    # 13 bits hold it
    assert rawcv.read_bayer(path, width=4, height=4, cfa="RGGB", bits=13).data[2, 3] == 4096


def test_read_bayer_missing_file(tmp_path):
    path = tmp_path / "nothing.raw"
    with pytest.raises(RawReadError) as info:
        rawcv.read_bayer(path, width=4, height=4, cfa="RGGB")
    assert str(path) in str(info.value)


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------

def _assert_read_error(path):
    with pytest.raises(RawReadError) as info:
        rawcv.read(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_read_missing_file(tmp_path):
    assert "no such file" in _assert_read_error(tmp_path / "missing.dng")


def test_read_folder(tmp_path):
    _assert_read_error(tmp_path)


def test_read_jpeg(tmp_path):
    path = tmp_path / "photo.jpg"
    assert cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (40, 60, 3)).astype(np.uint8))
    _assert_read_error(path)


def test_read_text_file(tmp_path):
    path = tmp_path / "notes.dng"
    path.write_text("this is not a raw file\n" * 50)
    _assert_read_error(path)


def test_read_truncated_dng(tmp_path):
    full = tmp_path / "full.dng"
    rawcv.write_dng(full, np.random.default_rng(1).integers(0, 4096, (64, 96)).astype(np.uint16),
                    cfa="RGGB", black=64, white=4095)
    assert full.stat().st_size > 3000
    cut = tmp_path / "cut.dng"
    cut.write_bytes(full.read_bytes()[:3000])
    _assert_read_error(cut)


def test_read_empty_file(tmp_path):
    path = tmp_path / "empty.dng"
    path.write_bytes(b"")
    _assert_read_error(path)


def test_dng_colour_matrix_prefers_d65():
    from rawcv.io.reader import _dng_xyz_to_cam

    a = np.arange(9, dtype=float).reshape(3, 3) + 1
    d65 = NIKON_XYZ_TO_CAM
    # tifffile gives SRATIONAL values as flat numerator, denominator pairs
    pairs = np.stack([np.round(d65.ravel() * 10000), np.full(9, 10000)], axis=1).ravel()
    tags = {"ColorMatrix1": a.ravel(), "CalibrationIlluminant1": 17,
            "ColorMatrix2": tuple(pairs), "CalibrationIlluminant2": 21}
    np.testing.assert_allclose(_dng_xyz_to_cam(tags), d65, atol=1e-12)
    # no D65 matrix: the last one given
    tags["CalibrationIlluminant2"] = 23
    np.testing.assert_allclose(_dng_xyz_to_cam(tags), d65, atol=1e-12)
    assert _dng_xyz_to_cam({}) is None


def _stub(pattern, desc=b"RGBG"):
    return types.SimpleNamespace(raw_pattern=None if pattern is None else np.asarray(pattern), color_desc=desc)


def test_cfa_name_of_bayer_stubs():
    assert _cfa_name(_stub([[0, 1], [3, 2]])) == "RGGB"
    assert _cfa_name(_stub([[1, 0], [2, 3]])) == "GRBG"
    assert _cfa_name(_stub([[2, 3], [1, 0]])) == "BGGR"
    assert _cfa_name(_stub([[3, 2], [0, 1]])) == "GBRG"


@pytest.mark.parametrize("stub", [
    _stub(np.arange(36).reshape(6, 6) % 3),             # X-Trans-like 6x6
    _stub([[0, 1], [3, 2]], b"CMYG"),                    # 4-colour CMYG
    _stub([[0, 1], [1, 0]]),                             # R G / G R: not a Bayer layout
    _stub(None),
])
def test_cfa_name_unsupported(stub):
    with pytest.raises(UnsupportedCFAError) as info:
        _cfa_name(stub)
    assert "unsupported CFA" in str(info.value)


def test_read_unsupported_cfa_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "xtrans.dng"
    rawcv.write_dng(path, np.full((32, 32), 500, np.uint16), cfa="RGGB")
    import rawcv.io.reader as reader

    def fake(raw):
        raise UnsupportedCFAError("unsupported CFA: 6x6 pattern (e.g. X-Trans)")

    monkeypatch.setattr(reader, "_cfa_name", fake)
    with pytest.raises(UnsupportedCFAError) as info:
        rawcv.read(path)
    assert str(path) in str(info.value) and "unsupported CFA" in str(info.value)


# ------------------------------------------------------------------------------------------------
# the rest of write_dng's fields, and the sizes it accepts
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("orientation", [0, 3, 5, 6])
def test_write_dng_round_trip_orientation_and_exposure(orientation, tmp_path):
    path = tmp_path / "o.dng"
    mosaic = np.random.default_rng(orientation).integers(0, 4096, (33, 47)).astype(np.uint16)  # odd sizes
    rawcv.write_dng(path, mosaic, cfa="GRBG", black=64, white=4095, orientation=orientation,
                    exposure_time=1 / 125)
    raw = rawcv.read(path)
    assert raw.meta.orientation == orientation
    assert raw.meta.exposure_time == pytest.approx(1 / 125, rel=1e-6)
    assert np.array_equal(raw.data, mosaic) and raw.cfa == "GRBG"


def test_write_dng_round_trip_iso(tmp_path):
    """write_dng(iso=400) must read back as meta.iso == 400."""
    path = tmp_path / "iso.dng"
    rawcv.write_dng(path, np.full((32, 32), 500, np.uint16), cfa="RGGB", black=64, white=4095, iso=400)
    assert rawcv.read(path).meta.iso == 400.0


@pytest.mark.parametrize("shape", [(8, 8), (40, 21)])
def test_write_dng_small_mosaic_is_readable_or_refused(shape, tmp_path):
    """write_dng must not silently produce a DNG that rawcv.read cannot read: either it refuses the
    size with a ValueError, or the file reads back with identical data (8x8 is write_dng's own
    docstring example)."""
    path = tmp_path / "small.dng"
    mosaic = np.random.default_rng(0).integers(0, 4096, shape).astype(np.uint16)
    try:
        rawcv.write_dng(path, mosaic, cfa="GRBG", black=64, white=4095)
    except ValueError:
        assert not path.exists()
        return
    assert np.array_equal(rawcv.read(path).data, mosaic)


# ------------------------------------------------------------------------------------------------
# headerless files: never guessed from their size
# ------------------------------------------------------------------------------------------------

def test_headerless_dump_is_refused_not_guessed(tmp_path):
    """768 x 512 uint16 = 786432 bytes is a size LibRaw maps to a camera in its table of headerless
    formats (rawpy reads the file as a 1024 x 768 RGGB image); rawcv must refuse it instead."""
    path = tmp_path / "dump.raw"
    np.random.default_rng(0).integers(0, 16384, (512, 768)).astype("<u2").tofile(path)
    with rawpy.imread(str(path)) as guess:         # the guess this test guards against
        assert guess.sizes.raw_width * guess.sizes.raw_height > 0
    for fn in (rawcv.read, rawcv.io.read_metadata):
        with pytest.raises(RawReadError) as info:
            fn(path)
        msg = str(info.value)
        assert str(path) in msg and "no RAW file header" in msg and "--bayer" in msg and "read_bayer" in msg
    # with its layout the same file reads exactly
    raw = rawcv.read_bayer(path, width=768, height=512, cfa="RGGB", bits=14)
    assert np.array_equal(raw.data, np.fromfile(path, "<u2").reshape(512, 768))


def test_headerless_copy_of_a_real_frame_is_refused(raw_samples, tmp_path):
    dump = tmp_path / "rose.bin"
    rawcv.read(raw_samples / "nikon_d3200_rose.dng").data.astype("<u2").tofile(dump)
    with pytest.raises(RawReadError, match="no RAW file header"):
        rawcv.read(dump)


# ------------------------------------------------------------------------------------------------
# the decoders' own messages: folded into the one error line, never on the terminal
# ------------------------------------------------------------------------------------------------

def _cut_dng(folder, keep):
    full = folder / "full.dng"
    if not full.exists():
        rawcv.write_dng(full, np.random.default_rng(1).integers(0, 4096, (64, 96)).astype(np.uint16),
                        cfa="RGGB", black=64, white=4095, color_matrix=NIKON_XYZ_TO_CAM,
                        noise_profile=[1e-4, 2e-6] * 3, iso=100)
    cut = folder / f"cut{keep}.dng"
    cut.write_bytes(full.read_bytes()[:keep])
    return cut


@pytest.mark.parametrize("keep", [400, 3000])   # inside the tag values; inside the pixels
def test_truncated_dng_says_what_libraw_said_and_prints_nothing(keep, tmp_path, capfd, caplog):
    cut = _cut_dng(tmp_path, keep)
    with pytest.raises(RawReadError) as info:
        rawcv.read(cut)
    assert str(info.value) == f"{cut}: truncated or corrupt RAW data (LibRawIOError: Unexpected end of file)"
    assert capfd.readouterr() == ("", "")          # LibRaw's fd-2 line did not reach stderr

    def tifffile_records():
        return [r for r in caplog.records if r.name == "tifffile"]

    assert not tifffile_records()
    if keep == 400:     # the control: read outside rawcv's probe, tifffile does log on this file
        import tifffile
        try:
            with tifffile.TiffFile(cut):
                pass
        except Exception:
            pass
        assert tifffile_records()


def test_truncated_lossy_dng_is_an_error_not_an_image(raw_samples, tmp_path):
    """LibRaw decodes a JPEG-compressed DNG cut short in its last tile "successfully"; libjpeg only
    prints a warning on fd 2. That is wrong pixels, so it must be an error naming the file."""
    data = (raw_samples / "canon_eos_6d_linear.dng").read_bytes()
    cut = tmp_path / "cut.dng"
    cut.write_bytes(data[:int(len(data) * 0.97)])
    with rawpy.imread(str(cut)) as ref:             # the silent success this test guards against
        assert ref.raw_image.size
    with pytest.raises(RawReadError) as info:
        rawcv.read(cut)
    assert str(info.value) == f"{cut}: corrupt RAW data (the decoder said: Premature end of JPEG file)"


def test_fd2_guard_keeps_other_text_and_claims_only_its_files_lines(capfd):
    from rawcv.io.reader import _FD2

    said = []
    with _FD2.messages("/x/a.dng", said):
        os.write(2, b"/x/a.dng: Unexpected end of file\n")
        os.write(2, b"someone else's text\n")
        os.write(2, b"/x/b.dng: data corrupted at 1234\n")   # another reader's, not ours
    assert said == ["Unexpected end of file"]
    assert capfd.readouterr().err == "someone else's text\n"


def test_fd2_guard_unnamed_message_during_concurrent_reads_asks_for_a_lone_retry(capfd):
    from rawcv.io.reader import _FD2, _AmbiguousMessage

    said_a, said_b = [], []
    with pytest.raises(_AmbiguousMessage):
        with _FD2.messages("/x/a.dng", said_a):
            with pytest.raises(_AmbiguousMessage):
                with _FD2.messages("/x/b.dng", said_b):
                    os.write(2, b"Premature end of JPEG file\n")
    assert said_a == said_b == []
    with _FD2.messages("/x/a.dng", said_a, alone=True):
        os.write(2, b"Premature end of JPEG file\n")
    assert said_a == ["Premature end of JPEG file"]
    assert capfd.readouterr().err == ""
