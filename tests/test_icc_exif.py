"""ICC profiles and EXIF in rawcv's outputs, read back by independent software.

* every profile is parsed by LittleCMS (through Pillow's ``ImageCms``), which converts known
  colours (white, grey, primaries, mixtures) to Lab and to sRGB; the expected values come from
  colour-science (its primaries, transfer curves, Bradford adaptation and Lab);
* the camera-RGB profile converts camera values as rawcv's own colour matrix does;
* real PNG (8 and 16 bit), JPEG and TIFF (8, 16 bit, float) files written by ``rawcv process``
  carry the profile of their colour space (Pillow's ``info['icc_profile']``, tifffile's tag 34675)
  and their EXIF (Pillow's ``getexif``, tifffile's tags), with pixels unchanged;
* the same raw file written as Display P3 and converted to sRGB by LittleCMS is the sRGB output.
"""

from __future__ import annotations

import io
import json
import struct
import zlib

import cv2
import numpy as np
import pytest

import rawcv
from rawcv import colorspaces as cs
from rawcv.batch import process_files
from rawcv.cli.overrides import with_colorspace
from rawcv.io.exif import ExifInfo
from rawcv.io.icc import matrix_trc_profile
from rawcv.io.writers import write_image
from rawcv.isp import color
from rawcv.pipeline import load_pipeline

colour = pytest.importorskip("colour")
ImageCms = pytest.importorskip("PIL.ImageCms")
from PIL import Image  # noqa: E402

COLOUR_NAMES = {"srgb": "sRGB", "display-p3": "Display P3", "adobe": "Adobe RGB (1998)", "prophoto": "ProPhoto RGB"}
NIKON_XYZ_TO_CAM = np.array([[0.9020, -0.2890, -0.0715], [-0.4535, 1.2436, 0.2348], [-0.0934, 0.1919, 0.7086]])
SWATCHES = np.array([[255, 255, 255], [128, 128, 128], [40, 40, 40], [255, 0, 0], [0, 255, 0], [0, 0, 255],
                     [200, 120, 60], [60, 160, 200], [90, 200, 110], [230, 210, 40],
                     [150, 130, 120], [120, 140, 130], [130, 128, 150], [170, 150, 110]], np.uint8)
ICC_D50_XY = cs.xyz_to_xy(cs.ICC_D50)


def profile(choice: str) -> bytes:
    space, curve = cs.parse_colorspace(choice)
    return matrix_trc_profile(space.rgb_to_xyz, space.white, cs.transfer_curve(curve), choice)


def littlecms(profile_bytes: bytes, pixels: np.ndarray, to: str) -> np.ndarray:
    """``pixels`` (N x 3 uint8) through LittleCMS from ``profile_bytes`` to its sRGB or (D50) Lab."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile_bytes))
    target = ImageCms.createProfile("sRGB" if to == "sRGB" else "LAB")
    transform = ImageCms.buildTransform(source, target, "RGB", "RGB" if to == "sRGB" else "LAB")
    out = np.asarray(ImageCms.applyTransform(Image.fromarray(pixels[None]), transform))[0]
    if to == "sRGB":
        return out.astype(np.float64)
    # Pillow's 8-bit Lab: L scaled to 0..255, a and b signed bytes
    return np.stack([out[:, 0] * 100.0 / 255, out[:, 1].astype(np.int8), out[:, 2].astype(np.int8)], axis=1)


def reference_xyz_d50(choice: str, pixels: np.ndarray) -> np.ndarray:
    """colour-science: decode, the space's primaries (and rawcv's white, documented), Bradford to
    the ICC's D50."""
    space, curve = cs.parse_colorspace(choice)
    encoded = pixels / 255.0
    if space.name == "xyz":
        linear = encoded if curve == "linear" else colour.RGB_COLOURSPACES["sRGB"].cctf_decoding(encoded)
        xyz = linear
    else:
        reference = colour.RGB_COLOURSPACES[COLOUR_NAMES[space.name]]
        linear = encoded if curve == "linear" else reference.cctf_decoding(encoded)
        xyz = linear @ colour.normalised_primary_matrix(reference.primaries, np.asarray(space.white_xy)).T
    adapt = colour.adaptation.matrix_chromatic_adaptation_VonKries(np.array(space.white), np.array(cs.ICC_D50),
                                                                   transform="Bradford")
    return xyz @ adapt.T


PROFILED = ("srgb", "display-p3", "adobe", "prophoto", "xyz", "linear-srgb", "linear-prophoto", "linear-xyz")


@pytest.mark.parametrize("choice", PROFILED)
def test_littlecms_lab_of_known_colours(choice):
    lab = colour.XYZ_to_Lab(reference_xyz_d50(choice, SWATCHES), ICC_D50_XY)
    got = littlecms(profile(choice), SWATCHES, "Lab")
    representable = np.all(np.abs(lab[:, 1:]) < 126, axis=1) & (lab[:, 0] < 100)
    assert representable.sum() >= 7
    # 8-bit Lab: L in steps of 0.39, a and b in steps of 1, so within half a step and a little
    np.testing.assert_allclose(got[representable, 0], lab[representable, 0], atol=0.3)
    np.testing.assert_allclose(got[representable, 1:], lab[representable, 1:], atol=0.65)


@pytest.mark.parametrize("choice", PROFILED)
def test_littlecms_srgb_of_known_colours(choice):
    xyz_d65 = reference_xyz_d50(choice, SWATCHES) @ colour.adaptation.matrix_chromatic_adaptation_VonKries(
        np.array(cs.ICC_D50), colour.xy_to_XYZ(colour.RGB_COLOURSPACES["sRGB"].whitepoint), transform="Bradford").T
    srgb = colour.XYZ_to_RGB(xyz_d65, "sRGB", apply_cctf_encoding=False)
    inside = np.all((srgb > 0.004) & (srgb < 0.99), axis=1)
    expected = 255 * colour.RGB_COLOURSPACES["sRGB"].cctf_encoding(np.clip(srgb, 0, 1))
    got = littlecms(profile(choice), SWATCHES, "sRGB")
    assert inside.sum() >= 5
    np.testing.assert_allclose(got[inside], expected[inside], atol=0.65)       # half a level, and a little


def test_white_maps_to_white_and_grey_stays_neutral():
    for choice in ("srgb", "display-p3", "adobe", "prophoto", "linear-adobe"):
        lab = littlecms(profile(choice), SWATCHES[:2], "Lab")
        assert lab[0, 0] == 100 and np.all(lab[:, 1:] == 0), choice


def test_profile_structure():
    data = profile("adobe")
    assert len(data) == struct.unpack(">I", data[:4])[0] and len(data) % 4 == 0
    assert data[8:12] == bytes([4, 0x30, 0, 0]) and data[12:24] == b"mntrRGB XYZ " and data[36:40] == b"acsp"
    count = struct.unpack(">I", data[128:132])[0]
    tags = {data[132 + 12 * i:136 + 12 * i] for i in range(count)}
    assert tags == {b"desc", b"cprt", b"wtpt", b"chad", b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC"}
    parsed = ImageCms.ImageCmsProfile(io.BytesIO(data))
    assert ImageCms.getProfileDescription(parsed).strip() == "adobe"
    assert parsed.profile.version == pytest.approx(4.3)
    # the same input gives the same bytes (a fixed creation date), different spaces different ones
    assert profile("adobe") == data and profile("prophoto") != data
    # the profile ID is the MD5 the ICC specification defines
    import hashlib
    zeroed = bytearray(data)
    zeroed[44:48] = zeroed[64:68] = b"\0" * 4
    zeroed[84:100] = b"\0" * 16
    assert data[84:100] == hashlib.md5(bytes(zeroed)).digest()


def test_camera_rgb_profile_converts_as_rawcvs_colour_matrix():
    """White-balanced camera RGB with its profile, converted to sRGB by LittleCMS, is what rawcv's
    own camera -> sRGB matrix makes of it."""
    to_xyz = color.camera_to_output_matrix(NIKON_XYZ_TO_CAM, "xyz")
    srgb_curve = cs.transfer_curve("srgb")
    data = matrix_trc_profile(to_xyz, cs.D65, srgb_curve, "camera RGB")
    camera = np.array([[255, 255, 255], [128, 128, 128], [200, 150, 120], [120, 170, 140], [150, 140, 190],
                       [180, 100, 90]], np.uint8)
    linear_srgb = srgb_curve.decode(camera / 255.0) @ color.camera_to_srgb_matrix(NIKON_XYZ_TO_CAM).T
    inside = np.all((linear_srgb > 0.004) & (linear_srgb < 0.99), axis=1)
    expected = 255 * srgb_curve.encode(np.clip(linear_srgb, 0, 1))
    assert inside.sum() >= 4
    np.testing.assert_allclose(littlecms(data, camera, "sRGB")[inside], expected[inside], atol=0.65)


def test_profile_refuses_a_singular_matrix():
    with pytest.raises(ValueError, match="invertible"):
        matrix_trc_profile(np.zeros((3, 3)), cs.D65, cs.LINEAR, "broken")


# --- EXIF --------------------------------------------------------------------------------------

def test_exif_block_read_back_by_pillow():
    info = ExifInfo(make="Canon", model="Canon EOS 6D", exposure_time=1 / 60, f_number=5.6, iso=1000,
                    software="rawcv test")
    exif = Image.Exif()
    exif.load(info.to_bytes())
    assert exif[271] == "Canon" and exif[272] == "Canon EOS 6D" and exif[305] == "rawcv test" and exif[274] == 1
    sub = exif.get_ifd(0x8769)
    assert sub[0x829A] == pytest.approx(1 / 60) and sub[0x829A].numerator == 1 and sub[0x829A].denominator == 60
    assert sub[0x829D] == pytest.approx(5.6) and sub[0x8827] == 1000 and sub[0x9000] == b"0232"


def test_exif_leaves_out_what_is_unknown():
    exif = Image.Exif()
    exif.load(ExifInfo().to_bytes())
    assert set(exif) == {274, 305, 0x8769}
    assert set(exif.get_ifd(0x8769)) == {0x9000}


# --- containers --------------------------------------------------------------------------------

def png_chunks(data: bytes) -> list:
    out, at = [], 8
    while at < len(data):
        length, name = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length:at + 12 + length])[0] == zlib.crc32(name + body), name
        out.append((name, body))
        at += 12 + length
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_chunks_are_valid_and_pixels_unchanged(tmp_path, dtype):
    image = (np.random.default_rng(0).random((5, 7, 3)) * np.iinfo(dtype).max).astype(dtype)
    data = profile("display-p3")
    p = write_image(tmp_path / "a.png", image, icc_profile=data, exif=ExifInfo(make="Nikon"))
    chunks = png_chunks(p.read_bytes())
    assert [name for name, _ in chunks[:3]] == [b"IHDR", b"iCCP", b"eXIf"]
    name, _, rest = chunks[1][1].partition(b"\0")
    assert name == b"ICC profile" and rest[0] == 0 and zlib.decompress(rest[1:]) == data
    np.testing.assert_array_equal(cv2.imread(str(p), cv2.IMREAD_UNCHANGED)[..., ::-1], image)
    with Image.open(p) as im:
        assert im.info["icc_profile"] == data and im.getexif()[271] == "Nikon"


def test_jpeg_splits_a_large_profile_in_numbered_segments(tmp_path):
    big = bytes(np.random.default_rng(0).integers(0, 256, 150_000, dtype=np.uint8))
    image = np.full((16, 16, 3), 100, np.uint8)
    p = write_image(tmp_path / "a.jpg", image, icc_profile=big, exif=ExifInfo(model="X"))
    data = p.read_bytes()
    assert data.count(b"ICC_PROFILE\0") == 3
    with Image.open(p) as im:
        assert im.info["icc_profile"] == big and im.getexif()[272] == "X"
        assert np.abs(np.asarray(im).astype(int) - 100).max() <= 2


def test_npy_and_single_channel_refuse_metadata(tmp_path):
    with pytest.raises(ValueError, match="cannot hold an ICC profile or EXIF"):
        write_image(tmp_path / "a.npy", np.zeros((2, 2, 3), np.float32), exif=ExifInfo())
    with pytest.raises(ValueError, match="needs an H x W x 3 image"):
        write_image(tmp_path / "a.png", np.zeros((2, 2), np.uint8), icc_profile=profile("srgb"))


# --- real files from rawcv process --------------------------------------------------------------

def read_back(path):
    """``(pixels, ICC profile, {EXIF tag: value}, sidecar)`` of a written output."""
    side = json.loads(path.with_name(path.name + ".json").read_text())
    if path.suffix == ".tiff":
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            exif = {code: tags[code].value for code in (271, 272, 274, 305, 33434, 33437, 34855) if code in tags}
            icc = tags[34675].value if 34675 in tags else None
            return tif.asarray(), icc, exif, side
    with Image.open(path) as im:
        icc = im.info.get("icc_profile")
        exif = dict(im.getexif())
        exif.update(im.getexif().get_ifd(0x8769))
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1], icc, exif, side


CASES = [  # pipeline, --colorspace, 16 bits, format
    ("default", None, False, "png"), ("default", "display-p3", True, "png"), ("default", "adobe", False, "jpg"),
    ("default", "prophoto", True, "tiff"), ("default", "linear-xyz", False, "tiff"), ("linear", None, False, "tiff"),
    ("default", "camera", False, "png"), ("linear", "linear-camera", False, "npy"),
]


@pytest.mark.parametrize("pipeline_name, choice, sixteen, fmt", CASES)
def test_written_files_carry_their_profile_and_exif(raw_samples, tmp_path, pipeline_name, choice, sixteen, fmt):
    src = raw_samples / "canon_eos_6d_linear.dng"
    pipeline = load_pipeline(pipeline_name)
    if choice is not None:
        pipeline = with_colorspace(pipeline, choice)
    if sixteen:
        pipeline = pipeline.with_params("quantize", bits=16)
    summary = process_files([src], tmp_path, pipeline, fmt=fmt)
    assert not summary.failures, summary.failures[0].error
    out = summary.results[0].output
    raw = rawcv.read(src)
    expected_pixels = pipeline(raw)
    if fmt == "npy":
        np.testing.assert_array_equal(np.load(out), expected_pixels)
        side = json.loads(out.with_name(out.name + ".json").read_text())
        assert side["output"]["icc_profile"] == {"embedded": False, "description": None}
        return
    pixels, icc, exif, side = read_back(out)
    if fmt == "jpg":
        assert np.abs(pixels.astype(int) - expected_pixels).mean() < 3
    else:
        np.testing.assert_array_equal(pixels, expected_pixels)
    space = pipeline.color_space(raw.meta)
    assert icc == matrix_trc_profile(space.to_xyz, space.white, space.curve, space.label)
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip() == space.label
    assert side["output"]["icc_profile"] == {"embedded": True, "description": space.label}
    assert side["output"]["color_space"] == space.label
    # the EXIF of the Canon file: Make, Model, 1/60 s, f/5.6, ISO 1000, upright, rawcv
    assert exif[271] == "Canon" and exif[272] == "Canon EOS 6D" and int(exif[274]) == 1
    assert exif[305] == f"rawcv {rawcv.__version__}"
    assert exif[34855] == 1000
    exposure, f_number = exif[33434], exif[33437]
    assert (tuple(exposure) if isinstance(exposure, tuple) else (exposure.numerator, exposure.denominator)) == (1, 60)
    assert (tuple(f_number) if isinstance(f_number, tuple) else (f_number.numerator, f_number.denominator)) == (28, 5)


def test_nikon_exif_leaves_out_what_the_file_lacks(raw_samples, tmp_path):
    summary = process_files([raw_samples / "nikon_d3200_rose.dng"], tmp_path, load_pipeline("default"), fmt="png")
    _, icc, exif, side = read_back(summary.results[0].output)
    assert exif[271] == "Nikon" and exif[272] == "D3200" and 34855 not in exif and 33434 not in exif
    assert side["output"]["color_space"] == "sRGB"
    assert icc == matrix_trc_profile(cs.output_space("srgb").rgb_to_xyz, cs.D65, cs.transfer_curve("srgb"), "sRGB")


def test_display_p3_file_converted_by_littlecms_is_the_srgb_file(raw_samples, tmp_path):
    src = raw_samples / "nikon_d3200_rose.dng"
    outputs = {}
    for choice in ("srgb", "display-p3"):
        summary = process_files([src], tmp_path / choice, with_colorspace(load_pipeline("default"), choice), fmt="png")
        outputs[choice] = summary.results[0].output
    srgb = cv2.imread(str(outputs["srgb"]))[..., ::-1].astype(int)
    with Image.open(outputs["display-p3"]) as im:
        source = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
        converted = ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        converted = np.asarray(converted).astype(int)
        p3 = np.asarray(im).astype(int)
    # where neither output is clipped (the rose's reds leave sRGB's gamut)
    inside = np.all((srgb > 1) & (srgb < 254) & (p3 > 1) & (p3 < 254), axis=-1)
    assert inside.mean() > 0.5
    difference = np.abs(converted - srgb)[inside]
    # two roundings to 8 bits and LittleCMS's 8-bit transform: a level or two, rarely three
    assert difference.max() <= 3 and (difference > 2).mean() < 1e-4 and difference.mean() < 0.5


@pytest.mark.parametrize("orient, expected", [(True, 1), (False, 8)])
def test_exif_orientation_says_how_the_pixels_were_written(tmp_path, orient, expected):
    """rawcv turns the pixels upright (EXIF 1); written as the sensor read them, the EXIF keeps the
    file's orientation (LibRaw flip 5, a quarter turn counter-clockwise, is EXIF 8)."""
    dng = tmp_path / "turned.dng"
    mosaic = np.random.default_rng(0).integers(300, 4000, (24, 40)).astype(np.uint16)
    rawcv.write_dng(dng, mosaic, cfa="RGGB", black=256, white=4095, orientation=5, exposure_time=0.5, iso=100,
                    color_matrix=NIKON_XYZ_TO_CAM)
    summary = process_files([dng], tmp_path / "out", load_pipeline("default"), fmt="png", orient=orient)
    pixels, _, exif, _ = read_back(summary.results[0].output)
    assert exif[274] == expected and pixels.shape[:2] == ((40, 24) if orient else (24, 40))
    assert exif[34855] == 100 and exif[33434] == 0.5
