"""Writing processed images (PNG, TIFF, JPEG, .npy) with a JSON sidecar, atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .atomic import atomic_path

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


def write_image(path, image, *, sidecar: dict | None = None, overwrite: bool = False, quality: int = 95) -> Path:
    """Write ``image`` to ``path`` (format from the suffix) and, if given, its JSON ``sidecar``.

    PNG takes uint8/uint16, TIFF uint8/uint16/float32 (see :func:`stored_image`), JPEG uint8,
    ``.npy`` anything (float32 for linear data). Both files are written to temporaries and renamed, so a failure leaves nothing;
    existing files are kept unless ``overwrite``.

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
    side = sidecar_path(path)
    if not overwrite:
        for p in (path, side if sidecar is not None else None):
            if p is not None and p.exists():
                from ..errors import OutputExistsError
                raise OutputExistsError(f"{p}: exists (use --overwrite to replace it)")
    if fmt in ("png", "jpg"):
        payload = _encode_png_jpg(image, fmt, quality)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if fmt in ("png", "jpg"):
            tmp.write_bytes(payload)
        elif fmt == "tiff":
            import tifffile
            image = stored_image(image, "tiff")
            tifffile.imwrite(tmp, image, photometric="rgb" if image.ndim == 3 else "minisblack")
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
