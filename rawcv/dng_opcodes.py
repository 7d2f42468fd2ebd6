"""DNG opcode lists (``OpcodeList1/2/3``): the records, read from and written to their bytes.

A list is big-endian: a uint32 count, then per opcode its id, the DNG version that defined it, its
flags (bit 0: optional, so a reader that does not know it may skip it) and the byte count of its
parameters. This module turns those bytes into one frozen record per opcode and back; what each
opcode does to pixels is the ISP's business (:mod:`rawcv.isp.opcodes`). It imports NumPy only,
so that the readers and writers (:mod:`rawcv.io`) and the ISP can both use it.

Examples
--------
>>> ops = [TrimBounds(2, 2, 30, 40), FixVignetteRadial((0.3, 0.1, 0, 0, 0), (0.5, 0.5))]
>>> [entry.record for entry in decode_opcode_list(encode_opcode_list(ops))] == ops
True
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import numpy as np

# the DNG version (1.3.0.0) a record of each opcode written here declares: the one that added them
_VERSION_1_3 = 0x01030000
OPTIONAL = 1                      # flag bit: a reader that does not support the opcode may skip it


class OpcodeError(ValueError):
    """A malformed opcode list (the message says where and what)."""


class OpcodeId(enum.IntEnum):
    """Opcode ids of the DNG specification (1.6), chapter 7."""

    WarpRectilinear = 1
    WarpFisheye = 2
    FixVignetteRadial = 3
    FixBadPixelsConstant = 4
    FixBadPixelsList = 5
    TrimBounds = 6
    MapTable = 7
    MapPolynomial = 8
    GainMap = 9
    DeltaPerRow = 10
    DeltaPerColumn = 11
    ScalePerRow = 12
    ScalePerColumn = 13
    WarpRectilinear2 = 14


def opcode_name(opcode_id: int) -> str:
    """``"GainMap"`` for 9; ``"opcode 99"`` for an id the specification does not name."""
    try:
        return OpcodeId(opcode_id).name
    except ValueError:
        return f"opcode {opcode_id}"


@dataclass(frozen=True)
class Area:
    """The pixels a per-pixel opcode touches: rows ``top..bottom-1`` every ``row_pitch``, columns
    ``left..right-1`` every ``col_pitch``, planes ``plane..plane+planes-1`` (the DNG "area spec")."""

    top: int
    left: int
    bottom: int
    right: int
    plane: int = 0
    planes: int = 1
    row_pitch: int = 1
    col_pitch: int = 1

    def values(self) -> tuple:
        return (self.top, self.left, self.bottom, self.right, self.plane, self.planes, self.row_pitch,
                self.col_pitch)


@dataclass(frozen=True)
class WarpRectilinear:
    """Radial and tangential distortion per plane (one plane, or three for lateral colour):
    ``coefficients[p] = (kr0, kr1, kr2, kr3, kt0, kt1)``; ``center`` (x, y) as fractions."""

    coefficients: tuple
    center: tuple = (0.5, 0.5)
    opcode_id = OpcodeId.WarpRectilinear


@dataclass(frozen=True)
class FixVignetteRadial:
    """Gain ``1 + k0 r^2 + k1 r^4 + k2 r^6 + k3 r^8 + k4 r^10`` about ``center`` (x, y fractions)."""

    k: tuple
    center: tuple = (0.5, 0.5)
    opcode_id = OpcodeId.FixVignetteRadial


@dataclass(frozen=True)
class FixBadPixelsConstant:
    """Every pixel whose raw value equals ``constant`` is defective (``bayer_phase``: the CFA
    position of the top-left pixel, 0 red, 1 green in a red row, 2 green in a blue row, 3 blue)."""

    constant: int
    bayer_phase: int = 0
    opcode_id = OpcodeId.FixBadPixelsConstant


@dataclass(frozen=True)
class FixBadPixelsList:
    """Defective pixels ``points`` ((row, col), ...) and rectangles ``rects`` ((top, left, bottom,
    right), bottom and right exclusive)."""

    points: tuple = ()
    rects: tuple = ()
    bayer_phase: int = 0
    opcode_id = OpcodeId.FixBadPixelsList


@dataclass(frozen=True)
class TrimBounds:
    """Crop to rows ``top..bottom-1`` and columns ``left..right-1``."""

    top: int
    left: int
    bottom: int
    right: int
    opcode_id = OpcodeId.TrimBounds


@dataclass(frozen=True)
class MapPolynomial:
    """``x -> sum_i coefficients[i] x^i`` on the pixels of ``area``."""

    area: Area
    coefficients: tuple
    opcode_id = OpcodeId.MapPolynomial


@dataclass(frozen=True)
class GainMap:
    """A gain sampled on a grid of ``points`` (rows, columns) ``spacing`` apart from ``origin``
    (fractions of the image height and width), ``gains`` row-major ``rows x columns x map_planes``;
    applied to the pixels of ``area`` with bilinear interpolation, clamped at the grid's edges."""

    area: Area
    points: tuple
    spacing: tuple
    origin: tuple
    map_planes: int
    gains: tuple
    opcode_id = OpcodeId.GainMap

    def grid(self) -> np.ndarray:
        """The gains as a float32 ``rows x columns x map_planes`` array."""
        return np.asarray(self.gains, dtype=np.float32).reshape(self.points[0], self.points[1], self.map_planes)


@dataclass(frozen=True)
class Unsupported:
    """An opcode rawcv reads but does not apply: its id, flags and parameter bytes, kept as they are."""

    opcode_id: int
    flags: int
    payload: bytes


@dataclass(frozen=True)
class Opcode:
    """One entry of a list: its record, its flags and the DNG version it declares."""

    record: object
    flags: int = 0
    version: int = _VERSION_1_3

    @property
    def name(self) -> str:
        return opcode_name(int(self.record.opcode_id))

    @property
    def optional(self) -> bool:
        return bool(self.flags & OPTIONAL)


# --- reading ------------------------------------------------------------------------------------

class _Reader:
    def __init__(self, payload: bytes, where: str):
        self.data, self.pos, self.where = payload, 0, where

    def take(self, fmt: str, n: int = 1) -> tuple:
        size = struct.calcsize(">" + fmt) * n
        if self.pos + size > len(self.data):
            raise OpcodeError(f"{self.where}: ends after {len(self.data)} bytes, inside its parameters")
        values = struct.unpack_from(">" + fmt * n, self.data, self.pos)
        self.pos += size
        return values

    def u32(self) -> int:
        return self.take("I")[0]

    def f64(self, n: int = 1):
        return self.take("d", n) if n > 1 else self.take("d")[0]


def _finite(values, where: str, what: str) -> tuple:
    if not np.all(np.isfinite(values)):
        raise OpcodeError(f"{where}: {what} has a value that is not finite")
    return tuple(float(v) for v in values)


def _center(r: _Reader, where: str) -> tuple:
    center = _finite(r.f64(2), where, "the centre")
    if not all(0.0 <= c <= 1.0 for c in center):
        raise OpcodeError(f"{where}: centre {center} is not inside the image (fractions 0 to 1)")
    return center


def _rect(values, where: str, what: str) -> tuple:
    top, left, bottom, right = values
    if bottom <= top or right <= left:
        raise OpcodeError(f"{where}: {what} ({top}, {left}, {bottom}, {right}) is empty")
    return (top, left, bottom, right)


def _area(r: _Reader, where: str) -> Area:
    values = r.take("I", 8)
    _rect(values[:4], where, "the area")
    area = Area(*values)
    if area.planes < 1 or area.row_pitch < 1 or area.col_pitch < 1:
        raise OpcodeError(f"{where}: planes, row pitch and column pitch must be at least 1, got "
                          f"{area.planes}, {area.row_pitch}, {area.col_pitch}")
    return area


def _decode_params(opcode_id: int, r: _Reader, where: str):
    if opcode_id == OpcodeId.WarpRectilinear:
        n = r.u32()
        if n not in (1, 3):
            raise OpcodeError(f"{where}: {n} planes (1 or 3 expected)")
        coefficients = tuple(_finite(r.f64(6), where, "a coefficient") for _ in range(n))
        return WarpRectilinear(coefficients, _center(r, where))
    if opcode_id == OpcodeId.FixVignetteRadial:
        return FixVignetteRadial(_finite(r.f64(5), where, "a coefficient"), _center(r, where))
    if opcode_id == OpcodeId.FixBadPixelsConstant:
        constant, phase = r.take("I", 2)
        return FixBadPixelsConstant(constant, phase)
    if opcode_id == OpcodeId.FixBadPixelsList:
        phase, n_points, n_rects = r.take("I", 3)
        points = tuple(r.take("I", 2) for _ in range(n_points))
        rects = tuple(_rect(r.take("I", 4), where, "a rectangle") for _ in range(n_rects))
        return FixBadPixelsList(points, rects, phase)
    if opcode_id == OpcodeId.TrimBounds:
        return TrimBounds(*_rect(r.take("I", 4), where, "the bounds"))
    if opcode_id == OpcodeId.MapPolynomial:
        area = _area(r, where)
        degree = r.u32()
        if degree > 8:
            raise OpcodeError(f"{where}: degree {degree} (at most 8)")
        return MapPolynomial(area, _finite(r.take("d", degree + 1), where, "a coefficient"))
    if opcode_id == OpcodeId.GainMap:
        area = _area(r, where)
        points = r.take("I", 2)
        spacing, origin = r.take("d", 2), r.take("d", 2)
        map_planes = r.u32()
        if min(points) < 1 or map_planes < 1:
            raise OpcodeError(f"{where}: a map of {points[0]} x {points[1]} points and {map_planes} planes")
        # a single point along an axis has no spacing (the DNG SDK resets it the same way)
        spacing = tuple(1.0 if n == 1 else s for n, s in zip(points, spacing))
        origin = tuple(0.0 if n == 1 else o for n, o in zip(points, origin))
        if not all(s > 0 for s in _finite(spacing, where, "the spacing")):
            raise OpcodeError(f"{where}: map spacing {spacing} must be positive")
        gains = _finite(r.take("f", points[0] * points[1] * map_planes), where, "a gain")
        return GainMap(area, tuple(points), spacing, _finite(origin, where, "the origin"), map_planes, gains)
    return None


def decode_opcode_list(payload: bytes) -> list:
    """The :class:`Opcode` entries of one ``OpcodeListN`` tag's bytes.

    Raises
    ------
    OpcodeError
        Truncated data, a byte count that does not match the opcode's parameters, or parameters
        outside their domain (the message names the opcode and its position).

    Examples
    --------
    >>> ops = decode_opcode_list(encode_opcode_list([TrimBounds(0, 0, 8, 8)]))
    >>> ops[0].name, ops[0].record
    ('TrimBounds', TrimBounds(top=0, left=0, bottom=8, right=8))
    """
    payload = bytes(payload)
    head = _Reader(payload, "opcode list")
    count = head.u32()
    entries = []
    for i in range(count):
        head.where = f"opcode {i + 1} of {count}"
        opcode_id, version, flags, size = head.take("I", 4)
        where = f"opcode {i + 1} of {count} ({opcode_name(opcode_id)})"
        if head.pos + size > len(payload):
            raise OpcodeError(f"{where}: declares {size} bytes of parameters, the list has {len(payload) - head.pos}")
        body = _Reader(payload[head.pos:head.pos + size], where)
        record = _decode_params(opcode_id, body, where)
        if record is None:
            record = Unsupported(opcode_id, flags, body.data)
        elif body.pos != size:
            raise OpcodeError(f"{where}: declares {size} bytes of parameters, its fields take {body.pos}")
        head.pos += size
        entries.append(Opcode(record, flags, version))
    if head.pos != len(payload):
        raise OpcodeError(f"opcode list: {len(payload) - head.pos} bytes after its {count} opcodes")
    return entries


# --- writing ------------------------------------------------------------------------------------

def _encode_params(record) -> bytes:
    if isinstance(record, WarpRectilinear):
        return (struct.pack(">I", len(record.coefficients))
                + b"".join(struct.pack(">6d", *c) for c in record.coefficients) + struct.pack(">2d", *record.center))
    if isinstance(record, FixVignetteRadial):
        return struct.pack(">5d2d", *record.k, *record.center)
    if isinstance(record, FixBadPixelsConstant):
        return struct.pack(">2I", record.constant, record.bayer_phase)
    if isinstance(record, FixBadPixelsList):
        return (struct.pack(">3I", record.bayer_phase, len(record.points), len(record.rects))
                + b"".join(struct.pack(">2I", *p) for p in record.points)
                + b"".join(struct.pack(">4I", *r) for r in record.rects))
    if isinstance(record, TrimBounds):
        return struct.pack(">4I", record.top, record.left, record.bottom, record.right)
    if isinstance(record, MapPolynomial):
        return struct.pack(f">8II{len(record.coefficients)}d", *record.area.values(),
                           len(record.coefficients) - 1, *record.coefficients)
    if isinstance(record, GainMap):
        return (struct.pack(">8I2I4dI", *record.area.values(), *record.points, *record.spacing, *record.origin,
                            record.map_planes)
                + np.asarray(record.gains, dtype=">f4").tobytes())
    if isinstance(record, Unsupported):
        return record.payload
    raise TypeError(f"not an opcode record: {record!r}")


def encode_opcode_list(opcodes) -> bytes:
    """The bytes of an ``OpcodeListN`` tag holding ``opcodes`` (records, or :class:`Opcode` entries
    for explicit flags; a bare record is written with flags 0, not optional)."""
    parts = [struct.pack(">I", len(opcodes))]
    for entry in opcodes:
        entry = entry if isinstance(entry, Opcode) else Opcode(entry)
        params = _encode_params(entry.record)
        flags = entry.record.flags if isinstance(entry.record, Unsupported) else entry.flags
        parts.append(struct.pack(">4I", int(entry.record.opcode_id), entry.version, flags, len(params)) + params)
    return b"".join(parts)


__all__ = ["OPTIONAL", "OpcodeError", "OpcodeId", "Opcode", "Area", "WarpRectilinear", "FixVignetteRadial",
           "FixBadPixelsConstant", "FixBadPixelsList", "TrimBounds", "MapPolynomial", "GainMap", "Unsupported",
           "decode_opcode_list", "encode_opcode_list", "opcode_name"]
