"""read_metadata: the CameraMeta and size of read(), from a DNG's tags alone (rawcv.io.dng_tags replays
what LibRaw does with them), and through rawpy for everything else. Every DNG here is compared with the
full read and with rawpy's own values."""

from __future__ import annotations

import struct
from fractions import Fraction

import numpy as np
import pytest
import rawpy
import tifffile

import rawcv
from rawcv.errors import RawReadError, UnsupportedCFAError
from rawcv.io import dng_tags, reader

LAYOUTS = ("RGGB", "BGGR", "GRBG", "GBRG")
XYZ_TO_CAM = np.array([[0.9020, -0.2890, -0.0715], [-0.4535, 1.2436, 0.2348], [-0.0934, 0.1919, 0.7086]])
PATTERN = {"RGGB": (0, 1, 1, 2), "BGGR": (2, 1, 1, 0), "GRBG": (1, 0, 2, 1), "GBRG": (1, 2, 0, 1)}


# ------------------------------------------------------------------------------------------------
# helpers: which path a file takes, and the comparisons
# ------------------------------------------------------------------------------------------------

def tag_view(path):
    """The tag replay's LibRawView for ``path``, or the reason rawpy has to read it (a string)."""
    return reader._tiff_probe(str(path), dng_view=True)[1]


def rawpy_values(path) -> dict:
    with rawpy.imread(str(path)) as r:
        return dict(black=list(r.black_level_per_channel), white=r.white_level,
                    wb=[float(v) for v in r.camera_whitebalance],
                    pattern=None if r.raw_pattern is None else r.raw_pattern.tolist(),
                    size=(r.sizes.width, r.sizes.height), flip=r.sizes.flip, iso=r.other.iso_speed,
                    shutter=r.other.shutter_speed, aperture=r.other.aperture,
                    linear=r.raw_type == rawpy.RawType.Stack)


def view_values(view) -> dict:
    return dict(black=[int(v) for v in view.black_level_per_channel], white=view.white_level,
                wb=view.camera_whitebalance,
                pattern=None if view.raw_pattern is None else view.raw_pattern.tolist(),
                size=(view.sizes.width, view.sizes.height), flip=view.sizes.flip, iso=view.other.iso_speed,
                shutter=view.other.shutter_speed, aperture=view.other.aperture, linear=view.linear)


def assert_tag_path(path):
    """``path`` is read from its tags; what they give is what rawpy gives, value by value, and the
    CameraMeta (every field) and size are those of the full read."""
    view = tag_view(path)
    assert isinstance(view, dng_tags.LibRawView), view
    assert view_values(view) == rawpy_values(path)
    assert_same_as_full_read(path)
    return view


def assert_same_as_full_read(path):
    full = rawcv.read(path)
    light = rawcv.io.read_metadata(path)
    assert light.meta == full.meta, path
    assert (light.width, light.height) == (full.width, full.height)
    assert light.path == full.path == str(path)


def assert_falls_back(path, reason: str, monkeypatch):
    """``path`` goes through rawpy (for ``reason``) and still gives the full read's metadata."""
    view = tag_view(path)
    assert isinstance(view, str) and reason in view, view
    calls = []
    real = rawpy.imread
    monkeypatch.setattr(rawpy, "imread", lambda p: calls.append(p) or real(p))
    assert_same_as_full_read(path)
    assert calls.count(str(path)) == 2             # read() and read_metadata()


def _rational(values, den=1_000_000):
    out = []
    for v in np.ravel(values):
        f = Fraction(float(v)).limit_denominator(den)
        out += [f.numerator, f.denominator]
    return tuple(out)


def build_dng(path, *, shape=(48, 64), cfa="RGGB", linear=False, white=4095, black=None, black_dim=None,
              asn=(0.5, 1, 0.7), raw_tags=(), ifd0_tags=(), sub=False, two_raws=False, make="rawcv", seed=0,
              **write):
    """A DNG written with tifffile, for the layouts write_dng does not write: levels in the raw IFD,
    the raw image in a SubIFD behind a preview (or behind a second main raw image), linear DNGs,
    extra tags in either IFD."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 4096, (*shape, 3) if linear else shape).astype(np.uint16)
    raw = [] if linear else [(33421, 3, 2, (2, 2), True), (33422, 1, 4, PATTERN[cfa], True),
                             (50710, 1, 3, (0, 1, 2), True), (50711, 3, 1, 1, True)]
    if black_dim is not None:
        raw.append((50713, 3, 2, tuple(black_dim), True))
    if black is not None:
        raw.append((50714, 5, len(black), _rational(black), True))
    if white is not None:
        raw.append((50717, 4, np.size(white), tuple(int(v) for v in np.ravel(white)), True))
    ifd0 = [(50706, 1, 4, (1, 4, 0, 0), True), (50708, 2, 0, f"{make} model", True), (271, 2, 0, make, True),
            (272, 2, 0, "model", True), (50728, 5, 3, _rational(asn), True),
            (50721, 10, 9, _rational(XYZ_TO_CAM, 10000), True), (50778, 3, 1, 21, True)]
    ifd0 += list(ifd0_tags)
    raw += list(raw_tags)
    kind = dict(photometric=34892 if linear else 32803, subfiletype=0, metadata=None, **write)
    with tifffile.TiffWriter(path) as tw:
        if two_raws:
            tw.write(data, subifds=1, extratags=ifd0 + raw, **kind)
            tw.write(data, extratags=raw, **kind)
        elif sub:
            tw.write(np.zeros((16, 24, 3), np.uint8), photometric="rgb", subfiletype=1, subifds=1,
                     extratags=ifd0, metadata=None)
            tw.write(data, extratags=raw, **kind)
        else:
            tw.write(data, extratags=ifd0 + raw, **kind)
    return data


def add_exif(path, entries):
    """Give a little-endian DNG an EXIF IFD: ``entries`` are (code, TIFF type, values); the file must
    have been written with a placeholder tag 34664 (tifffile does not write ExifTag itself)."""
    with tifffile.TiffFile(path) as tif:
        entry = tif.pages[0].tags[34664].offset
    data = bytearray(path.read_bytes())
    data += b"\0" * (len(data) % 2)
    at = len(data)
    fmt = {3: "H", 4: "I", 5: "II", 10: "ii"}
    extra_at, ifd, extra = at + 2 + 12 * len(entries) + 4, struct.pack("<H", len(entries)), b""
    for code, kind, values in sorted(entries):
        raw = b"".join(struct.pack("<" + fmt[kind], *(v if isinstance(v, tuple) else (v,))) for v in values)
        value = raw.ljust(4, b"\0") if len(raw) <= 4 else struct.pack("<I", extra_at + len(extra))
        extra += b"" if len(raw) <= 4 else raw
        ifd += struct.pack("<HHI", code, kind, len(values)) + value
    data += ifd + b"\0\0\0\0" + extra
    data[entry:entry + 2] = struct.pack("<H", 34665)
    data[entry + 8:entry + 12] = struct.pack("<I", at)
    path.write_bytes(bytes(data))


def lossless_jpeg(image) -> bytes:
    """A minimal lossless JPEG (SOF3, one 16-bit component, predictor 1) as DNGs store it."""
    h, w = image.shape
    x = image.astype(np.int64)
    pred = np.empty_like(x)
    pred[0, 0], pred[0, 1:], pred[1:, 0], pred[1:, 1:] = 1 << 15, x[0, :-1], x[:-1, 0], x[1:, :-1]
    diff = (x - pred) & 0xFFFF
    out, acc, nacc = bytearray(), 0, 0
    for d in np.where(diff > 32768, diff - 65536, diff).ravel().tolist():
        s = 0 if d == 0 else 16 if d == 32768 else abs(d).bit_length()
        acc, nacc = acc << 5 | s, nacc + 5               # Huffman code of s: s itself in 5 bits
        if 0 < s < 16:
            acc, nacc = acc << s | ((d if d > 0 else d - 1) & ((1 << s) - 1)), nacc + s
        while nacc >= 8:
            nacc -= 8
            out += bytes([acc >> nacc & 0xFF]) + (b"\0" if acc >> nacc & 0xFF == 0xFF else b"")
        acc &= (1 << nacc) - 1
    if nacc:
        out.append((acc << (8 - nacc) | ((1 << (8 - nacc)) - 1)) & 0xFF)
        out += b"\0" if out[-1] == 0xFF else b""

    def segment(marker, payload):
        return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload

    dht = bytes([0, 0, 0, 0, 0, 17] + [0] * 11) + bytes(range(17))
    sof = struct.pack(">BHHB", 16, h, w, 1) + bytes([1, 0x11, 0])
    return (b"\xff\xd8" + segment(0xC4, dht) + segment(0xC3, sof) + segment(0xDA, bytes([1, 1, 0, 1, 0, 0]))
            + bytes(out) + b"\xff\xd9")


# ------------------------------------------------------------------------------------------------
# the tag path equals rawpy on real files, on write_dng's files and on big ones
# ------------------------------------------------------------------------------------------------

def test_real_dngs_take_the_tag_path_and_match_rawpy(raw_samples):
    nikon = assert_tag_path(raw_samples / "nikon_d3200_rose.dng")
    assert nikon.black_level_per_channel == [600] * 4 and nikon.white_level == 15520
    canon = assert_tag_path(raw_samples / "canon_eos_6d_linear.dng")   # linear, lossy, raw in a SubIFD
    assert canon.linear and canon.white_level == 65535 and canon.other.iso_speed == 1000


def test_non_dng_goes_through_rawpy(raw_samples):
    path = raw_samples / "kodak_dc50.kdc"
    assert tag_view(path) is None
    assert_same_as_full_read(path)


@pytest.mark.parametrize("orientation", [0, 3, 5, 6])
@pytest.mark.parametrize("cfa", LAYOUTS)
def test_write_dng_files_take_the_tag_path(cfa, orientation, tmp_path):
    path = tmp_path / "w.dng"
    rawcv.write_dng(path, np.random.default_rng(1).integers(0, 4096, (34, 50)).astype(np.uint16), cfa=cfa,
                    black=[60.5, 64, 68.25, 72], white=4000, as_shot_wb=(2.0, 1.0, 1.5),
                    color_matrix=XYZ_TO_CAM, noise_profile=[1e-4, 2e-6] * 3, orientation=orientation,
                    iso=100 * (orientation + 1), exposure_time=1 / (60 * (orientation + 1)))
    view = assert_tag_path(path)
    meta = rawcv.io.read_metadata(path).meta
    assert meta.cfa == cfa and meta.orientation == orientation and meta.black_level == (60, 64, 68, 72)
    assert view.other.iso_speed == 0 and meta.iso == 100 * (orientation + 1)   # LibRaw skips IFD0's ISO


@pytest.mark.parametrize("black", [0, 512, [510, 512, 514, 516]])
def test_write_dng_without_noise_profile_and_plain_levels(black, tmp_path):
    path = tmp_path / "plain.dng"
    rawcv.write_dng(path, np.full((32, 48), 700, np.uint16), cfa="GRBG", black=black, white=16383,
                    color_matrix=XYZ_TO_CAM, as_shot_wb=(1.0, 1.0, 1.0))
    assert rawcv.io.read_metadata(path).meta.noise_profile is None
    assert_tag_path(path)


def test_write_dng_without_colour_matrix_goes_through_rawpy(tmp_path, monkeypatch):
    """rawcv falls back to LibRaw's own matrix tables then, which the tags cannot tell."""
    path = tmp_path / "nocm.dng"
    rawcv.write_dng(path, np.full((32, 48), 700, np.uint16), cfa="RGGB", black=64, white=4095)
    assert_falls_back(path, "no ColorMatrix", monkeypatch)


def test_a_6000x4000_dng_takes_the_tag_path(tmp_path):
    path = tmp_path / "big.dng"
    mosaic = np.random.default_rng(2).integers(0, 16384, (4000, 6000)).astype(np.uint16)
    rawcv.write_dng(path, mosaic, cfa="GBRG", black=[510, 512, 514, 516], white=16383,
                    color_matrix=XYZ_TO_CAM, orientation=6, iso=800, exposure_time=1 / 250)
    del mosaic
    view = assert_tag_path(path)
    assert (view.sizes.width, view.sizes.height) == (6000, 4000)


# ------------------------------------------------------------------------------------------------
# no pixels: rawpy is never asked, tifffile never reads image data
# ------------------------------------------------------------------------------------------------

def _forbid_pixels(monkeypatch):
    """rawpy unusable; tifffile's ways to image data raise; returns the list of byte counts tifffile
    reads from the file."""
    def refuse(*args, **kwargs):
        raise AssertionError("pixels requested")

    monkeypatch.setattr(rawpy, "imread", refuse)
    monkeypatch.setattr(rawpy, "RawPy", refuse)
    for name in ("asarray", "segments", "aszarr"):
        monkeypatch.setattr(tifffile.TiffPage, name, refuse)
    monkeypatch.setattr(tifffile.FileHandle, "read_segments", refuse)
    sizes = []
    real_read = tifffile.FileHandle.read
    monkeypatch.setattr(tifffile.FileHandle, "read", lambda fh, size=-1: sizes.append(size) or real_read(fh, size))
    return sizes


def test_read_metadata_of_a_dng_decodes_no_pixels(tmp_path, monkeypatch):
    path = tmp_path / "big.dng"
    rawcv.write_dng(path, np.full((2000, 3000), 900, np.uint16), cfa="RGGB", black=[60, 64, 68, 72],
                    white=4095, color_matrix=XYZ_TO_CAM, noise_profile=[1e-4, 2e-6] * 3, iso=200)
    expected = rawcv.io.read_metadata(path)
    sizes = _forbid_pixels(monkeypatch)
    with pytest.raises(AssertionError):
        rawcv.read(path)
    assert rawcv.io.read_metadata(path) == expected
    assert 0 < sum(sizes) < 4096 and path.stat().st_size > 12_000_000   # the tags, not the 12 MB


def test_read_metadata_of_the_real_dngs_decodes_no_pixels(raw_samples, monkeypatch):
    paths = [raw_samples / "nikon_d3200_rose.dng", raw_samples / "canon_eos_6d_linear.dng"]
    expected = [rawcv.read(p) for p in paths]
    _forbid_pixels(monkeypatch)
    for path, full in zip(paths, expected):
        assert rawcv.io.read_metadata(path).meta == full.meta


# ------------------------------------------------------------------------------------------------
# what LibRaw does with the tags, file by file
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", [
    dict(black=[600]),                                                    # truncated to an integer
    dict(black=[60.7, 64.2, 68.9, 72.5], black_dim=(2, 2)),
    dict(black=[60, 64, 68, 72]),                                         # no repeat dim: LibRaw drops them
    dict(black=list(range(100, 116)), black_dim=(4, 4)),                  # only the minimum survives
    dict(black=[600], raw_tags=[(50715, 10, 64, _rational([1.5] * 64), True),   # BlackLevelDeltaH/V
                                (50716, 10, 48, _rational([0.25] * 48), True)]),
    dict(white=None),                                                     # 2**16 - 1 from BitsPerSample
    dict(white=70000),                                                    # clamped to 65535
    dict(raw_tags=[(50829, 4, 4, (2, 4, 46, 62), True)]),                 # ActiveArea
    dict(raw_tags=[(50829, 4, 4, (1, 3, 47, 63), True)], cfa="GBRG"),    # odd offsets: LibRaw evens them
    dict(raw_tags=[(50719, 5, 2, (8, 1, 8, 1), True), (50720, 5, 2, (40, 1, 30, 1), True)]),  # DefaultCrop
    dict(sub=True, black=[64], raw_tags=[(274, 3, 1, 8, True)]),           # raw image in a SubIFD
    dict(tile=(16, 16)), dict(rowsperstrip=5),
    dict(linear=True, black=[10, 20, 30], black_dim=(1, 1)),
    dict(linear=True, black=[100], white=4000),                           # LibRaw's linear WB fix
    dict(linear=True, black=[10, 20, 30], white=[4000, 3000, 3500]),
    dict(linear=True, sub=True, tile=(16, 16)),
    dict(asn=(0.001, 1, 0.5)),                                            # WB out of LibRaw's range
    dict(ifd0_tags=[(274, 3, 1, 7, True), (33434, 5, 1, (1, 30), True), (33437, 5, 1, (28, 10), True)]),
], ids=lambda c: ",".join(c))
def test_dng_tags_as_libraw_reads_them(case, tmp_path):
    path = tmp_path / "case.dng"
    build_dng(path, **case)
    assert_tag_path(path)


@pytest.mark.parametrize("entries, in_ifd", [
    ([(33434, 5, [(1, 250)]), (33437, 5, [(28, 10)]), (34855, 3, [800])], None),
    ([(33434, 5, [(1, 250)])], (1, 20)),                          # EXIF's goes to the last IFD made
    ([(37377, 10, [(7, 1)]), (37378, 5, [(3, 1)])], None),         # APEX only: 2**-7 s, f/2.83
    ([(37377, 10, [(7, 1)])], (1, 20)),                            # APEX ignored after ExposureTime
    ([(37377, 10, [(70, 1)])], None),                              # beyond LibRaw's 2**64 limit: 0
], ids=["plain", "after-ifd", "apex", "apex-ignored", "apex-limit"])
@pytest.mark.parametrize("sub", [False, True])
def test_exif_fields_as_libraw_reads_them(entries, in_ifd, sub, tmp_path):
    path = tmp_path / "exif.dng"
    raw_tags = [] if in_ifd is None else [(33434, 5, 1, in_ifd, True)]
    build_dng(path, sub=sub, ifd0_tags=[(34664, 4, 1, 0, True)], raw_tags=raw_tags)
    add_exif(path, entries)
    assert_tag_path(path)


def test_lossless_jpeg_dng(tmp_path):
    path = tmp_path / "lj92.dng"
    mosaic = np.random.default_rng(3).integers(0, 4096, (40, 64)).astype(np.uint16)
    rawcv.write_dng(path, mosaic, cfa="BGGR", black=[60, 61, 62, 63], white=4095, color_matrix=XYZ_TO_CAM)
    with tifffile.TiffFile(path) as tif:
        at = {code: tif.pages[0].tags[code] for code in (259, 273, 279)}
    data, encoded = bytearray(path.read_bytes()), lossless_jpeg(mosaic)
    offset = len(data)
    for code, value in ((259, 7), (273, offset), (279, len(encoded))):
        form = "<H" if at[code].dtype == 3 else "<I"
        data[at[code].offset + 8:at[code].offset + 8 + struct.calcsize(form)] = struct.pack(form, value)
    path.write_bytes(bytes(data + encoded))
    assert np.array_equal(rawcv.read(path).data, mosaic)                # LibRaw decodes it
    assert_tag_path(path)


# ------------------------------------------------------------------------------------------------
# what the tag path does not model goes through rawpy
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case, reason", [
    (dict(raw_tags=[(50712, 3, 4, (0, 1000, 3000, 4095), True)]), "tag 50712"),     # LinearizationTable
    (dict(raw_tags=[(50830, 4, 4, (0, 0, 2, 64), True)]), "tag 50830"),             # MaskedAreas
    (dict(ifd0_tags=[(50740, 1, 4, b"Adob", True)]), "tag 50740"),                  # DNGPrivateData
    (dict(make="SONY"), "sony"),
    (dict(compression="zlib"), "compression 8"),
    (dict(make="NIKON Z"), "Nikon Z"),
    (dict(two_raws=True), "2 main raw images"),
], ids=["linearization", "masked", "private", "sony", "deflate", "nikon-z", "two-raws"])
def test_what_the_tags_cannot_tell_goes_through_rawpy(case, reason, tmp_path, monkeypatch):
    path = tmp_path / "fallback.dng"
    build_dng(path, **case)
    view = tag_view(path)
    assert isinstance(view, str) and reason in view, view
    try:
        full = rawcv.read(path)
    except RawReadError as exc:                    # deflate: this LibRaw cannot decode it
        with pytest.raises(RawReadError) as light:
            rawcv.io.read_metadata(path)
        assert str(light.value) == str(exc)
        return
    assert_falls_back(path, reason, monkeypatch)
    assert rawcv.io.read_metadata(path).meta == full.meta


def test_another_libraw_goes_through_rawpy(tmp_path, monkeypatch):
    """The replay follows LibRaw 0.22's steps; with another LibRaw, rawpy has the last word."""
    path = tmp_path / "w.dng"
    rawcv.write_dng(path, np.full((32, 48), 700, np.uint16), cfa="RGGB", black=64, color_matrix=XYZ_TO_CAM)
    assert isinstance(tag_view(path), dng_tags.LibRawView)
    monkeypatch.setattr(rawpy, "libraw_version", (0, 23, 0))
    assert_falls_back(path, "LibRaw (0, 23, 0)", monkeypatch)


def test_truncated_dng_fails_like_read(tmp_path):
    full = tmp_path / "full.dng"
    rawcv.write_dng(full, np.random.default_rng(1).integers(0, 4096, (64, 96)).astype(np.uint16),
                    cfa="RGGB", black=64, white=4095, color_matrix=XYZ_TO_CAM)
    cut = tmp_path / "cut.dng"
    cut.write_bytes(full.read_bytes()[:-100])
    assert "past the end" in tag_view(cut)
    with pytest.raises(RawReadError) as light:
        rawcv.io.read_metadata(cut)
    with pytest.raises(RawReadError) as whole:
        rawcv.read(cut)
    assert str(light.value) == str(whole.value) and str(cut) in str(light.value)


def test_inconsistent_levels_fail_like_read(tmp_path):
    path = tmp_path / "black_over_white.dng"
    build_dng(path, black=[5000], white=4095)
    assert isinstance(tag_view(path), dng_tags.LibRawView)
    with pytest.raises(RawReadError) as light:
        rawcv.io.read_metadata(path)
    with pytest.raises(RawReadError) as whole:
        rawcv.read(path)
    assert str(light.value) == str(whole.value) and "inconsistent metadata" in str(light.value)


def test_unsupported_cfa_names_the_file_on_the_tag_path(tmp_path, monkeypatch):
    path = tmp_path / "x.dng"
    rawcv.write_dng(path, np.full((32, 32), 500, np.uint16), cfa="RGGB", color_matrix=XYZ_TO_CAM)

    def fake(raw):
        raise UnsupportedCFAError("unsupported CFA: 6x6 pattern (e.g. X-Trans)")

    monkeypatch.setattr(reader, "_cfa_name", fake)
    with pytest.raises(UnsupportedCFAError) as info:
        rawcv.io.read_metadata(path)
    assert str(info.value) == f"{path}: unsupported CFA: 6x6 pattern (e.g. X-Trans)"


class _RawSpy:
    """Stands in for rawpy's RawPy and records which attributes the reader asks for."""

    def __init__(self, raw, seen):
        self._raw, self._seen = raw, seen

    def __getattr__(self, name):
        self._seen.add(name)
        return getattr(self._raw, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._raw.close()


def test_rawpy_path_never_touches_the_pixel_arrays(raw_samples, monkeypatch):
    """Where rawpy reads the metadata it still unpacks (its properties call unpack() themselves), but
    read_metadata does not copy the pixels as read() does."""
    path = raw_samples / "kodak_dc50.kdc"
    seen = set()
    real = rawpy.imread
    monkeypatch.setattr(rawpy, "imread", lambda p: _RawSpy(real(p), seen))
    rawcv.io.read_metadata(path)
    assert seen and not seen & {"raw_image", "raw_image_visible"}, seen
    seen.clear()
    rawcv.read(path)
    assert "raw_image_visible" in seen


def test_bad_files_fail_like_read(tmp_path):
    path = tmp_path / "notes.dng"
    path.write_text("this is not a raw file\n" * 50)
    with pytest.raises(RawReadError) as light:
        rawcv.io.read_metadata(path)
    with pytest.raises(RawReadError) as full:
        rawcv.read(path)
    assert str(light.value) == str(full.value) and str(path) in str(light.value)
