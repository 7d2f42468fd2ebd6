"""Writing processed images (PNG, TIFF, JPEG, .npy) with a JSON sidecar, atomically.

OpenCV encodes PNG and JPEG pixels (it writes 16-bit RGB PNG, which Pillow does not); an ICC
profile and EXIF go into its bytes here: PNG ``iCCP`` and ``eXIf`` chunks, JPEG APP2
``ICC_PROFILE`` and APP1 ``Exif`` segments. tifffile writes TIFF with the profile as tag 34675.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from .atomic import atomic_path
from .exif import ExifInfo

FORMATS = ("png", "tiff", "jpg", "npy")
_EXT = {"png": ".png", "tiff": ".tiff", "jpg": ".jpg", "npy": ".npy"}


def output_suffix(fmt: str) -> str:
    if fmt not in _EXT:
        raise ValueError(f"unknown output format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return _EXT[fmt]


def sidecar_path(path) -> Path:
    """``out/name.png`` -> ``out/name.png.json`` (one sidecar per output, whatever its format)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def apply_orientation(image: np.ndarray, flip: int) -> np.ndarray:
    """Turn an H x W (x C) image upright as LibRaw's ``flip`` code says, for all eight codes.

    The code's bits, as LibRaw applies them: 1 mirrors left-right, 2 mirrors top-bottom, then 4
    swaps rows and columns. So 0 leaves the image alone, 3 turns it 180 degrees, 5 90 degrees
    counter-clockwise, 6 90 degrees clockwise; 1, 2, 4 and 7 are the mirrored orientations
    (TIFF/EXIF orientations 2, 4, 5 and 7). ``None`` is 0.

    Examples
    --------
    >>> import numpy as np
    >>> apply_orientation(np.arange(4).reshape(2, 2), 6).tolist()
    [[2, 0], [3, 1]]
    >>> apply_orientation(np.arange(4).reshape(2, 2), 4).tolist()     # a transpose
    [[0, 2], [1, 3]]
    """
    if flip is None:
        return image
    if isinstance(flip, bool) or not isinstance(flip, (int, np.integer)) or not 0 <= flip <= 7:
        raise ValueError(f"unsupported orientation code {flip!r}: LibRaw flip codes are 0 to 7")
    out = image
    if flip & 1:
        out = out[:, ::-1]
    if flip & 2:
        out = out[::-1]
    if flip & 4:
        out = np.swapaxes(out, 0, 1)
    return out if out is image else np.ascontiguousarray(out)


def stored_image(image: np.ndarray, fmt: str) -> np.ndarray:
    """``image`` as ``fmt`` stores it, so a sidecar can describe exactly what was written.

    TIFF keeps the pipeline's own sample type: 8-bit when it quantises to 8 bits, 16-bit when it
    quantises to 16, float32 for float pipelines (linear values below 0 and above 1 survive, which
    an integer TIFF would clip). Anything else becomes float32. The other formats store the array
    as it is, or refuse it.

    Parameters
    ----------
    image : ndarray
        A pipeline's output.
    fmt : {"png", "tiff", "jpg", "npy"}

    Returns
    -------
    ndarray
        ``image`` itself, or its float32 copy for TIFF.

    Examples
    --------
    >>> import numpy as np
    >>> stored_image(np.zeros((2, 2), np.float64), "tiff").dtype
    dtype('float32')
    >>> stored_image(np.zeros((2, 2), np.uint8), "tiff").dtype
    dtype('uint8')
    """
    image = np.asarray(image)
    if fmt == "tiff" and image.dtype not in (np.uint8, np.uint16, np.float32):
        return image.astype(np.float32)
    return image


def _encode_png_jpg(image: np.ndarray, fmt: str, quality: int) -> bytes:
    import cv2

    if fmt == "jpg" and image.dtype != np.uint8:
        raise ValueError(f"JPEG needs 8-bit data, got {image.dtype} (use a pipeline that quantises to 8 bits)")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{fmt.upper()} needs 8- or 16-bit integer data, got {image.dtype} "
                         "(add a 'quantize' stage, or write tiff/npy for float output)")
    bgr = image[..., ::-1] if image.ndim == 3 else image
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(_EXT[fmt], np.ascontiguousarray(bgr), params)
    if not ok:
        raise ValueError(f"OpenCV could not encode the image as {fmt}")
    return buf.tobytes()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ICC_PROFILE_NAME = b"ICC profile"
_JPEG_ICC = b"ICC_PROFILE\0"
_JPEG_SEGMENT_MAX = 65533            # a segment's payload, after its 2-byte length


def png_with_metadata(png: bytes, *, icc_profile: Optional[bytes] = None, exif: Optional[bytes] = None) -> bytes:
    """``png`` with an ``iCCP`` chunk holding ``icc_profile`` and an ``eXIf`` chunk holding the
    EXIF block ``exif`` (:meth:`ExifInfo.to_bytes`), both just after ``IHDR``, where the PNG
    specification wants them (before ``PLTE`` and ``IDAT``). Chunks of those types already there
    are dropped, as is an ``sRGB`` or ``gAMA`` chunk that a profile overrides.

    Examples
    --------
    >>> import cv2, numpy as np
    >>> png = cv2.imencode(".png", np.zeros((2, 2, 3), np.uint16))[1].tobytes()
    >>> out = png_with_metadata(png, exif=ExifInfo(make="Nikon").to_bytes())
    >>> [name for name, _ in _png_chunks(out)]
    [b'IHDR', b'eXIf', b'IDAT', b'IEND']
    """
    chunks = _png_chunks(png)
    if not chunks or chunks[0][0] != b"IHDR":
        raise ValueError("not a PNG stream: no IHDR chunk first")
    replaced = {b"eXIf"} | ({b"iCCP", b"sRGB", b"gAMA", b"cHRM"} if icc_profile is not None else set())
    added = []
    if icc_profile is not None:
        added.append((b"iCCP", ICC_PROFILE_NAME + b"\0\0" + zlib.compress(icc_profile, 9)))
    if exif is not None:
        added.append((b"eXIf", exif))
    kept = [c for c in chunks[1:] if c[0] not in replaced]
    return PNG_SIGNATURE + b"".join(_png_chunk(name, data) for name, data in [chunks[0], *added, *kept])


def _png_chunks(png: bytes) -> list:
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG stream: bad signature")
    chunks, at = [], len(PNG_SIGNATURE)
    while at + 8 <= len(png):
        length, name = struct.unpack(">I4s", png[at:at + 8])
        chunks.append((name, png[at + 8:at + 8 + length]))
        at += 12 + length
    return chunks


def _png_chunk(name: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + name + data + struct.pack(">I", zlib.crc32(name + data) & 0xFFFFFFFF)


def jpeg_with_metadata(jpeg: bytes, *, icc_profile: Optional[bytes] = None, exif: Optional[bytes] = None) -> bytes:
    """``jpeg`` with an APP1 ``Exif`` segment holding ``exif`` and APP2 ``ICC_PROFILE`` segments
    holding ``icc_profile`` (split in numbered parts where it exceeds one segment, as ICC.1 Annex
    B.4 says), after the start of image and a JFIF APP0 segment if there is one.

    Examples
    --------
    >>> import cv2, numpy as np
    >>> jpeg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    >>> out = jpeg_with_metadata(jpeg, icc_profile=b"profile")
    >>> out[:2] == jpeg[:2] and _JPEG_ICC + bytes([1, 1]) + b"profile" in out
    True
    """
    if not jpeg.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG stream: no start of image")
    at = 2
    if jpeg[at:at + 2] == b"\xff\xe0":           # JFIF's APP0 stays first, as JFIF asks
        at += 2 + struct.unpack(">H", jpeg[at + 2:at + 4])[0]
    segments = []
    if exif is not None:
        segments.append(_jpeg_segment(0xE1, b"Exif\0\0" + exif))
    if icc_profile is not None:
        size = _JPEG_SEGMENT_MAX - len(_JPEG_ICC) - 2
        parts = [icc_profile[i:i + size] for i in range(0, len(icc_profile), size)] or [b""]
        if len(parts) > 255:
            raise ValueError(f"an ICC profile of {len(icc_profile)} bytes does not fit in 255 JPEG segments")
        segments += [_jpeg_segment(0xE2, _JPEG_ICC + bytes([i + 1, len(parts)]) + part)
                     for i, part in enumerate(parts)]
    return jpeg[:at] + b"".join(segments) + jpeg[at:]


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    if len(payload) > _JPEG_SEGMENT_MAX:
        raise ValueError(f"a JPEG segment holds at most {_JPEG_SEGMENT_MAX} bytes, got {len(payload)}")
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def write_image(path, image, *, sidecar: dict | None = None, overwrite: bool = False, quality: int = 95,
                icc_profile: Optional[bytes] = None, exif: Optional[ExifInfo] = None) -> Path:
    """Write ``image`` to ``path`` (format from the suffix) and, if given, its JSON ``sidecar``.

    PNG takes uint8/uint16, TIFF uint8/uint16/float32 (see :func:`stored_image`), JPEG uint8,
    ``.npy`` anything (float32 for linear data). Both files are written to temporaries and renamed, so a failure leaves nothing;
    existing files are kept unless ``overwrite``.

    ``icc_profile`` (the bytes of an ICC profile, :func:`rawcv.io.icc.matrix_trc_profile`) and
    ``exif`` (:class:`~rawcv.io.exif.ExifInfo`) are embedded in PNG, JPEG and TIFF files (see the
    module's description); a ``.npy`` file holds neither, so giving one for it is an error. A
    profile describes RGB, so a single-channel image refuses one too.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = write_image(os.path.join(tempfile.mkdtemp(), "a.npy"), np.zeros((2, 2, 3), np.float32))
    >>> p.name
    'a.npy'
    """
    path = Path(path)
    fmt = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpg", ".jpeg": "jpg", ".npy": "npy"}.get(
        path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown output suffix (use .png, .tiff, .jpg or .npy)")
    image = np.asarray(image)
    if fmt == "npy" and (icc_profile is not None or exif is not None):
        raise ValueError(f"{path}: a .npy file cannot hold an ICC profile or EXIF")
    if icc_profile is not None and (image.ndim != 3 or image.shape[2] != 3):
        raise ValueError(f"{path}: an RGB ICC profile needs an H x W x 3 image, got shape {image.shape}")
    side = sidecar_path(path)
    if not overwrite:
        for p in (path, side if sidecar is not None else None):
            if p is not None and p.exists():
                from ..errors import OutputExistsError
                raise OutputExistsError(f"{p}: exists (use --overwrite to replace it)")
    exif_bytes = None if exif is None else exif.to_bytes()
    if fmt == "png":
        payload = png_with_metadata(_encode_png_jpg(image, fmt, quality), icc_profile=icc_profile, exif=exif_bytes)
    elif fmt == "jpg":
        payload = jpeg_with_metadata(_encode_png_jpg(image, fmt, quality), icc_profile=icc_profile, exif=exif_bytes)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if fmt in ("png", "jpg"):
            tmp.write_bytes(payload)
        elif fmt == "tiff":
            import tifffile
            image = stored_image(image, "tiff")
            tifffile.imwrite(tmp, image, photometric="rgb" if image.ndim == 3 else "minisblack",
                             iccprofile=icc_profile, **({} if exif is None else
                                                        {"software": exif.software, "extratags": exif.tiff_tags()}))
        else:
            with open(tmp, "wb") as fh:
                np.save(fh, image)
        if sidecar is not None:
            with atomic_path(side, overwrite=overwrite) as tmp_side:
                tmp_side.write_text(json.dumps(sidecar, indent=2, default=_json_default))
    return path


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
