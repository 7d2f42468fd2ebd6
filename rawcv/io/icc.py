"""ICC profiles for rawcv's outputs: matrix/TRC display profiles, version 4.3, written byte by byte.

A matrix/TRC profile describes an RGB space by three tone curves (``rTRC``, ``gTRC``, ``bTRC``:
encoded -> linear) and three colorants (``rXYZ``, ``gXYZ``, ``bXYZ``: the XYZ of each primary,
adapted to the profile connection space's D50 white by Bradford, the ``chad`` tag recording that
adaptation). That is enough for any space of :data:`rawcv.colorspaces.OUTPUT_SPACES`, the camera's
own RGB (from the file's matrices) and the linear variants. Pillow's ``ImageCms.createProfile``
makes sRGB, Lab and XYZ profiles only, and no maintained Python package writes these, so the bytes
are laid out here after ICC.1:2022 (version 4.3); LittleCMS reads them (``tests/test_icc_exif.py``).
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

from ..colorspaces import ICC_D50, TransferCurve, bradford_matrix

VERSION = 0x04300000
# a fixed creation date, so that the same image and settings give the same bytes
CREATED = (2025, 1, 1, 0, 0, 0)
CREATOR = b"rwcv"
COPYRIGHT = "No copyright, use freely"


def matrix_trc_profile(rgb_to_xyz, white, curve: TransferCurve, description: str, *,
                       copyright: str = COPYRIGHT) -> bytes:
    """An ICC v4 display profile of the RGB space with matrix ``rgb_to_xyz`` and ``white``.

    Parameters
    ----------
    rgb_to_xyz : (3, 3) array_like
        Linear RGB -> CIE XYZ, relative to ``white`` (the XYZ of RGB (1, 1, 1) for an RGB space).
    white : 3 floats
        The space's white, XYZ with ``Y = 1``; the colorants are adapted from it to the D50 of the
        profile connection space.
    curve : TransferCurve
        The encoding of the values (:func:`rawcv.colorspaces.transfer_curve`), written as a
        parametric curve; the linear curve is gamma 1.
    description : str
        The profile's name, as colour-managed applications list it.
    copyright : str

    Returns
    -------
    bytes

    Examples
    --------
    >>> from rawcv.colorspaces import D65, output_space, transfer_curve
    >>> data = matrix_trc_profile(output_space("srgb").rgb_to_xyz, D65, transfer_curve("srgb"), "sRGB")
    >>> data[36:40], data[12:20], len(data) == int.from_bytes(data[:4], "big")
    (b'acsp', b'mntrRGB ', True)
    """
    m = np.asarray(rgb_to_xyz, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(m)) or abs(np.linalg.det(m)) < 1e-12:
        raise ValueError("an ICC profile needs a finite, invertible RGB -> XYZ matrix")
    adapt = bradford_matrix(white, ICC_D50)
    colorants = adapt @ m
    trc = _para(curve)
    tags = [
        (b"desc", _mluc(description)),
        (b"cprt", _mluc(copyright)),
        (b"wtpt", _xyz(ICC_D50)),          # v4: the media white of a display profile is D50
        (b"chad", _sf32(adapt)),
        (b"rXYZ", _xyz(colorants[:, 0])),
        (b"gXYZ", _xyz(colorants[:, 1])),
        (b"bXYZ", _xyz(colorants[:, 2])),
        (b"rTRC", trc),
        (b"gTRC", trc),                     # the three curves share one stored element
        (b"bTRC", trc),
    ]
    return _assemble(tags)


def _assemble(tags) -> bytes:
    """Header, tag table and tag data (each element 4-byte aligned, equal elements stored once)."""
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    data, entries, stored = b"", [], {}
    for signature, element in tags:
        if element not in stored:
            stored[element] = offset + len(data)
            data += element + b"\0" * (-len(element) % 4)
        entries.append(struct.pack(">4sII", signature, stored[element], len(element)))
    body = struct.pack(">I", len(tags)) + b"".join(entries) + data
    size = 128 + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0\0\0\0"                      # preferred CMM: none
        + struct.pack(">I", VERSION)
        + b"mntr" + b"RGB " + b"XYZ "      # display device, RGB data, XYZ connection space
        + struct.pack(">6H", *CREATED)
        + b"acsp"
        + b"\0\0\0\0"                      # primary platform: none
        + b"\0\0\0\0"                      # flags: not embedded-only, may be used independently
        + b"\0\0\0\0" + b"\0\0\0\0"        # device manufacturer, model
        + b"\0" * 8                        # device attributes
        + struct.pack(">I", 0)             # rendering intent: perceptual
        + _s15f16(ICC_D50)
        + CREATOR
        + b"\0" * 16                       # profile ID, filled in below
        + b"\0" * 28
    )
    profile = bytearray(header + body)
    profile[84:100] = _profile_id(bytes(profile))
    return bytes(profile)


def _profile_id(profile: bytes) -> bytes:
    """ICC.1 7.2.18: the MD5 of the profile with its flags, rendering intent and ID zeroed."""
    zeroed = bytearray(profile)
    zeroed[44:48] = b"\0" * 4
    zeroed[64:68] = b"\0" * 4
    zeroed[84:100] = b"\0" * 16
    return hashlib.md5(bytes(zeroed)).digest()


def _s15f16(values) -> bytes:
    fixed = [int(round(float(v) * 65536.0)) for v in np.asarray(values, dtype=np.float64).reshape(-1)]
    if any(not -(1 << 31) <= f < (1 << 31) for f in fixed):
        raise ValueError(f"value out of the range of an ICC s15Fixed16Number: {values!r}")
    return struct.pack(f">{len(fixed)}i", *fixed)


def _xyz(xyz) -> bytes:
    return b"XYZ " + b"\0\0\0\0" + _s15f16(xyz)


def _sf32(matrix) -> bytes:
    return b"sf32" + b"\0\0\0\0" + _s15f16(np.asarray(matrix).reshape(-1))


def _para(curve: TransferCurve) -> bytes:
    function_type, parameters = curve.icc_parameters
    return b"para" + b"\0\0\0\0" + struct.pack(">HH", function_type, 0) + _s15f16(parameters)


def _mluc(text: str) -> bytes:
    """A multiLocalizedUnicode element with one record, en-US, in UTF-16BE."""
    encoded = text.encode("utf-16-be")
    return (b"mluc" + b"\0\0\0\0" + struct.pack(">II", 1, 12)
            + b"enUS" + struct.pack(">II", len(encoded), 28) + encoded)


__all__ = ["matrix_trc_profile"]
