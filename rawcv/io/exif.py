"""The basic EXIF of rawcv's outputs: camera, exposure and the software that made them.

:class:`ExifInfo` holds what rawcv knows of a capture; :meth:`ExifInfo.to_bytes` lays it out as
an EXIF block (a little-endian TIFF structure: IFD0 with Make, Model, Orientation, Software and
the pointer to an Exif IFD with ExposureTime, FNumber, ISOSpeedRatings and ExifVersion), which
PNG stores in an ``eXIf`` chunk and JPEG in an APP1 segment; :meth:`ExifInfo.tiff_tags` gives the
same facts as tags of a TIFF's own first IFD (where TIFF/EP puts them).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

# tag numbers (EXIF 2.32, TIFF 6.0)
MAKE, MODEL, ORIENTATION, SOFTWARE, EXIF_IFD = 0x010F, 0x0110, 0x0112, 0x0131, 0x8769
EXPOSURE_TIME, F_NUMBER, ISO_SPEED, EXIF_VERSION = 0x829A, 0x829D, 0x8827, 0x9000
# field types
ASCII, SHORT, LONG, RATIONAL, UNDEFINED = 2, 3, 4, 5, 7
UPRIGHT = 1   # EXIF orientation "top-left": rawcv turns the pixels upright before writing
# LibRaw's flip codes (rawcv.io.writers.apply_orientation) as EXIF orientations: the inverse of
# dcraw's "50132467"[orientation] table
EXIF_ORIENTATION_OF_FLIP = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}


@dataclass(frozen=True)
class ExifInfo:
    """What an output's EXIF says. Unknown values (None, empty text) are left out.

    Parameters
    ----------
    make, model : str
        The camera's maker and model.
    exposure_time : float, optional
        Seconds.
    f_number : float, optional
    iso : float, optional
        ISO speed (EXIF stores up to 65535).
    software : str
    orientation : int
        EXIF orientation: 1 (upright) for rawcv's outputs, whose pixels are already turned, unless
        they were written as the sensor read them.

    Examples
    --------
    >>> info = ExifInfo(make="Nikon", exposure_time=1 / 250, iso=200)
    >>> info.to_bytes()[:4]
    b'II*\\x00'
    """

    make: str = ""
    model: str = ""
    exposure_time: Optional[float] = None
    f_number: Optional[float] = None
    iso: Optional[float] = None
    software: str = "rawcv"
    orientation: int = UPRIGHT

    @classmethod
    def from_meta(cls, meta, *, software: str = "rawcv", upright: bool = True) -> "ExifInfo":
        """The EXIF of an output made from a file with ``meta`` (:class:`~rawcv.meta.CameraMeta`);
        ``upright=False``: its pixels are as the sensor read them, so the orientation is the file's.

        Examples
        --------
        >>> from rawcv.meta import CameraMeta
        >>> meta = CameraMeta("RGGB", make="Nikon", iso=400.0, orientation=6)
        >>> ExifInfo.from_meta(meta).orientation, ExifInfo.from_meta(meta, upright=False).orientation
        (1, 6)
        """
        orientation = UPRIGHT if upright else EXIF_ORIENTATION_OF_FLIP[int(meta.orientation or 0)]
        return cls(make=meta.make or "", model=meta.model or "", exposure_time=_positive(meta.exposure_time),
                   f_number=_positive(meta.aperture), iso=_positive(meta.iso), software=software,
                   orientation=orientation)

    def _fields(self) -> tuple:
        """``(IFD0 fields, Exif IFD fields)``, each a list of ``(tag, type, count, payload)``."""
        ifd0 = [(ORIENTATION, SHORT, 1, struct.pack("<H", int(self.orientation)))]
        for tag, text in ((MAKE, self.make), (MODEL, self.model), (SOFTWARE, self.software)):
            if text:
                raw = text.encode("ascii", "replace") + b"\0"
                ifd0.append((tag, ASCII, len(raw), raw))
        exif = [(EXIF_VERSION, UNDEFINED, 4, b"0232")]
        if self.exposure_time is not None:
            exif.append((EXPOSURE_TIME, RATIONAL, 1, _rational(self.exposure_time, 1_000_000)))
        if self.f_number is not None:
            exif.append((F_NUMBER, RATIONAL, 1, _rational(self.f_number, 1000)))
        if self.iso is not None:
            exif.append((ISO_SPEED, SHORT, 1, struct.pack("<H", min(int(round(self.iso)), 65535))))
        return ifd0, exif

    def to_bytes(self) -> bytes:
        """The EXIF block: a TIFF header (``II*\\0``) and its IFDs, without JPEG's ``Exif\\0\\0``."""
        ifd0, exif = self._fields()
        ifd0 = ifd0 + [(EXIF_IFD, LONG, 1, b"\0\0\0\0")]      # the offset is set below
        first = 8
        exif_at = first + _ifd_size(ifd0)
        ifd0[-1] = (EXIF_IFD, LONG, 1, struct.pack("<I", exif_at))
        return b"II*\0" + struct.pack("<I", first) + _ifd(ifd0, first) + _ifd(exif, exif_at)

    def tiff_tags(self) -> list:
        """The same facts as ``extratags`` for :func:`tifffile.imwrite`: ``(code, dtype, count,
        value, writeonce)``, for the TIFF's first IFD. Software is left to tifffile's own
        ``software`` argument (it writes that tag itself), ExifVersion to EXIF blocks."""
        tifffile_type = {ASCII: "s", SHORT: "H", RATIONAL: "2I"}
        tags = []
        ifd0, exif = self._fields()
        for tag, kind, count, payload in ifd0 + exif:
            if tag == SOFTWARE:
                continue
            if kind == ASCII:
                value = payload[:-1].decode("ascii")
            elif kind == SHORT:
                value = struct.unpack("<H", payload)[0]
            elif kind == RATIONAL:
                value = struct.unpack("<2I", payload)
            else:
                continue
            tags.append((tag, tifffile_type[kind], 0 if kind == ASCII else count, value, True))
        return sorted(tags)


def _positive(value) -> Optional[float]:
    return float(value) if value is not None and float(value) > 0 else None


def _rational(value: float, max_denominator: int) -> bytes:
    # the simplest fraction near the value, so 1/60 s reads back as 1/60 rather than 16667/1000000
    f = Fraction(float(value)).limit_denominator(max_denominator)
    numerator, denominator = f.numerator, f.denominator
    while numerator > 0xFFFFFFFF:         # very long exposures: coarser, in range
        numerator, denominator = numerator // 2, max(1, denominator // 2)
    return struct.pack("<II", numerator, denominator)


def _ifd_size(fields) -> int:
    """Bytes of an IFD written by :func:`_ifd`: count, entries, next offset and its value area."""
    values = sum(len(p) + len(p) % 2 for *_, p in fields if len(p) > 4)
    return 2 + 12 * len(fields) + 4 + values


def _ifd(fields, at: int) -> bytes:
    """One IFD at file offset ``at``: its entries in tag order, then the values too long to sit in
    an entry (each at an even offset, as TIFF asks)."""
    fields = sorted(fields)
    values_at = at + 2 + 12 * len(fields) + 4
    entries, values = b"", b""
    for tag, kind, count, payload in fields:
        if len(payload) <= 4:
            entries += struct.pack("<HHI", tag, kind, count) + payload.ljust(4, b"\0")
        else:
            entries += struct.pack("<HHII", tag, kind, count, values_at + len(values))
            values += payload + b"\0" * (len(payload) % 2)
    return struct.pack("<H", len(fields)) + entries + struct.pack("<I", 0) + values


__all__ = ["ExifInfo"]
