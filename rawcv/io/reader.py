"""Reading camera RAW files through rawpy/LibRaw, and headerless sensor dumps."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import RawReadError, UnsupportedCFAError
from ..meta import CameraMeta, RawImage, validate_cfa

# DNG CalibrationIlluminant code of D65, the white point rawcv's sRGB conversion assumes
_D65 = 21


def _tiff_tags(path):
    """Make/model, ISO and the DNG colour tags from the first IFD, where the file is TIFF-based."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = {t.name: t.value for t in tif.pages[0].tags.values()}
    except Exception:  # not TIFF-based (or unreadable as TIFF): LibRaw's fields still apply
        return {}
    return tags


def _rational_matrix(values):
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 18:  # tifffile gives SRATIONAL as flat numerator, denominator pairs
        v = v[0::2] / v[1::2]
    return v.reshape(-1, 3)[:3] if v.size >= 9 else None


def _dng_xyz_to_cam(tags):
    """The DNG ColorMatrix for D65 (or the last one given), as XYZ -> camera."""
    candidates = []
    for i in (1, 2):
        cm = tags.get(f"ColorMatrix{i}")
        if cm is not None:
            candidates.append((tags.get(f"CalibrationIlluminant{i}"), _rational_matrix(cm)))
    for illum, m in candidates:
        if illum == _D65:
            return m
    return candidates[-1][1] if candidates else None


def _cfa_name(raw) -> str:
    pattern = raw.raw_pattern
    desc = raw.color_desc.decode("ascii", "replace") if raw.color_desc else "RGBG"
    if pattern is None:
        raise UnsupportedCFAError("unsupported CFA: no colour filter pattern (and not a linear DNG)")
    pattern = np.asarray(pattern)
    if pattern.shape != (2, 2):
        raise UnsupportedCFAError(
            f"unsupported CFA: {pattern.shape[0]}x{pattern.shape[1]} pattern (e.g. X-Trans); "
            "only 2x2 Bayer layouts are supported")
    letters = "".join(desc[int(i)] for i in pattern.ravel())
    if sorted(letters) != sorted("RGGB"):
        raise UnsupportedCFAError(f"unsupported CFA: colours {letters} (colour description {desc}); "
                                  "only RGB Bayer layouts are supported")
    return validate_cfa(letters)


def _iso(other, tags):
    # LibRaw leaves ISO at 0 when a DNG keeps it in IFD0 (as rawcv's writer does) rather than EXIF
    if other.iso_speed:
        return float(other.iso_speed)
    value = tags.get("ISOSpeedRatings") or (tags.get("ExifTag") or {}).get("ISOSpeedRatings")
    if isinstance(value, (tuple, list)):
        value = value[0] if value else None
    return float(value) if value else None


def _meta_from_libraw(raw, tags, *, linear: bool, cfa) -> CameraMeta:
    per_colour = np.asarray(raw.black_level_per_channel, dtype=np.float64)
    if linear:
        black = [per_colour[0], per_colour[1], per_colour[2], per_colour[3 if per_colour.size > 3 else 1]]
    else:
        black = [per_colour[int(i)] for i in np.asarray(raw.raw_pattern).ravel()]
    wb = np.asarray(raw.camera_whitebalance, dtype=np.float64)[:3]
    wb = wb / wb[1] if wb[1] > 0 and np.all(wb > 0) else np.ones(3)
    xyz_to_cam = _dng_xyz_to_cam(tags)
    if xyz_to_cam is None:
        m = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3]
        xyz_to_cam = m if np.any(m) else None
    other = raw.other
    noise = tags.get("NoiseProfile")
    return CameraMeta(
        cfa=cfa,
        black_level=black,
        white_level=float(raw.white_level),
        as_shot_wb=tuple(wb),
        xyz_to_cam=xyz_to_cam,
        orientation=int(raw.sizes.flip),
        make=str(tags.get("Make", "") or "").strip("\x00 "),
        model=str(tags.get("Model", "") or "").strip("\x00 "),
        iso=_iso(other, tags),
        exposure_time=float(other.shutter_speed) if other.shutter_speed else None,
        aperture=float(other.aperture) if other.aperture else None,
        noise_profile=tuple(float(v) for v in np.ravel(noise)) if noise is not None else None,
        linear=linear,
    )


def read(path) -> RawImage:
    """Read a DNG or camera RAW file into a :class:`~rawcv.meta.RawImage`.

    Parameters
    ----------
    path : str or path-like
        Any file LibRaw reads (DNG, NEF, CR2, ARW, KDC ...).

    Returns
    -------
    RawImage
        ``data`` is the visible uint16 mosaic (H x W), or H x W x 3 for a linear DNG.

    Raises
    ------
    RawReadError
        Missing, unreadable, not RAW, truncated or corrupt file (the message names the file).
    UnsupportedCFAError
        X-Trans, 4-colour or otherwise non-Bayer sensors.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from rawcv.io.dng import write_dng
    >>> path = os.path.join(tempfile.mkdtemp(), "flat.dng")
    >>> write_dng(path, np.full((32, 48), 1000, np.uint16), cfa="GRBG", black=512, white=4095)
    >>> raw = read(path)
    >>> raw.cfa, raw.meta.black_level, raw.meta.white_level, raw.mosaic.shape
    ('GRBG', (512.0, 512.0, 512.0, 512.0), 4095.0, (32, 48))
    """
    import rawpy

    path = os.fspath(path)
    if not os.path.exists(path):
        raise RawReadError(f"{path}: no such file")
    if os.path.isdir(path):
        raise RawReadError(f"{path}: is a folder, not a RAW file")
    try:
        tags = _tiff_tags(path)
        if tags and "DNGVersion" not in tags and not tags.get("Make"):
            # LibRaw would decode any grey 16-bit TIFF as an RGGB "raw"; camera TIFF-based formats
            # (NEF, CR2, ARW, ...) always name their maker
            raise RawReadError(f"{path}: a plain TIFF image (no DNG or camera tags), not a RAW file")
        with rawpy.imread(path) as raw:
            linear = raw.raw_type == rawpy.RawType.Stack
            if linear:
                data = np.array(raw.raw_image_visible[..., :3], dtype=np.uint16, copy=True)
                cfa = None
            else:
                cfa = _cfa_name(raw)
                data = np.array(raw.raw_image_visible, dtype=np.uint16, copy=True)
            meta = _meta_from_libraw(raw, tags, linear=linear, cfa=cfa)
    except UnsupportedCFAError as exc:
        raise UnsupportedCFAError(f"{path}: {exc}") from None
    except rawpy.LibRawFileUnsupportedError:
        raise RawReadError(f"{path}: not a RAW file LibRaw can read (unsupported or not RAW)") from None
    except (rawpy.LibRawIOError, rawpy.LibRawDataError, rawpy.LibRawTooBigError) as exc:
        raise RawReadError(f"{path}: truncated or corrupt RAW data ({type(exc).__name__})") from None
    except rawpy.LibRawError as exc:
        raise RawReadError(f"{path}: LibRaw could not read it ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        raise RawReadError(f"{path}: inconsistent metadata ({exc})") from None
    return RawImage(data, meta, path)


def read_bayer(path, *, width: int, height: int, cfa: str, bits: int = 16, black=0, white=None,
               offset: int = 0) -> RawImage:
    """Read a headerless sensor dump of little-endian uint16 values, row by row.

    Parameters
    ----------
    width, height : int
        Size of the mosaic in pixels.
    cfa : str
        Bayer layout of the top-left 2x2 tile.
    bits : int
        Sensor bit depth; values above ``2**bits - 1`` make the file invalid. Sets the default
        white level.
    black : float or 4 floats
        Black level, per CFA position in raster order if 4 values.
    white : float, optional
        White level; default ``2**bits - 1``.
    offset : int
        Bytes to skip at the start (a fixed-size header).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "dump.raw")
    >>> np.arange(16, dtype="<u2").tofile(p)
    >>> read_bayer(p, width=4, height=4, cfa="RGGB", bits=12).data[1].tolist()
    [4, 5, 6, 7]
    """
    path = os.fspath(path)
    cfa = validate_cfa(cfa)
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be in 1..16, got {bits}")
    if not os.path.exists(path):
        raise RawReadError(f"{path}: no such file")
    expected = offset + 2 * width * height
    size = Path(path).stat().st_size
    if size != expected:
        raise RawReadError(f"{path}: {size} bytes, but {width}x{height} uint16 after {offset} header bytes "
                           f"needs {expected}")
    data = np.fromfile(path, dtype="<u2", offset=offset).reshape(height, width).astype(np.uint16)
    maxval = (1 << bits) - 1
    if data.max(initial=0) > maxval:
        raise RawReadError(f"{path}: values up to {int(data.max())} exceed {bits}-bit range")
    meta = CameraMeta(cfa=cfa, black_level=black, white_level=maxval if white is None else white)
    return RawImage(data, meta, path)


__all__ = ["read", "read_bayer"]
