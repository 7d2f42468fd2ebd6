"""Core data types: the CFA vocabulary, :class:`CameraMeta` and :class:`RawImage`.

This module imports NumPy only, so that every other room of rawcv can depend on it.

Conventions used everywhere in rawcv
------------------------------------
* Colour channel ids: ``0 = R``, ``1 = G``, ``2 = B``.
* A CFA is named by its 2x2 tile read in raster order: ``"RGGB"`` means
  ``(0,0)=R, (0,1)=G, (1,0)=G, (1,1)=B``.
* Per-CFA-position quantities (black levels) are stored as 4 values in that same raster
  order, so the value for pixel ``(y, x)`` is ``v[2 * (y & 1) + (x & 1)]``.
* Colour matrices are stored as ``xyz_to_cam`` (the DNG ``ColorMatrix`` convention, XYZ (D65)
  to camera RGB); :attr:`CameraMeta.cam_to_xyz` is its inverse.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import UnsupportedCFAError

BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
_CHANNEL_OF_LETTER = {"R": 0, "G": 1, "B": 2}


def validate_cfa(cfa: str) -> str:
    """Return the canonical upper-case CFA name, or raise :class:`UnsupportedCFAError`.

    Examples
    --------
    >>> validate_cfa("rggb")
    'RGGB'
    """
    if not isinstance(cfa, str) or cfa.upper() not in BAYER_PATTERNS:
        raise UnsupportedCFAError(
            f"unsupported CFA {cfa!r}: expected one of {', '.join(BAYER_PATTERNS)}"
        )
    return cfa.upper()


def cfa_channel_map(cfa: str) -> np.ndarray:
    """The 2x2 array of colour channel ids (0=R, 1=G, 2=B) of a Bayer pattern.

    Examples
    --------
    >>> cfa_channel_map("GRBG").tolist()
    [[1, 0], [2, 1]]
    """
    cfa = validate_cfa(cfa)
    return np.array([_CHANNEL_OF_LETTER[c] for c in cfa], dtype=np.int64).reshape(2, 2)


def cfa_code(cfa: str) -> np.ndarray:
    """Flat int64 array of the 4 channel ids, the form the Numba kernels take."""
    return cfa_channel_map(cfa).ravel().copy()


def cfa_from_channel_map(channel_map) -> str:
    """Inverse of :func:`cfa_channel_map`: a 2x2 array of 0/1/2 ids to a pattern name."""
    letters = "RGB"
    arr = np.asarray(channel_map).reshape(-1)
    name = "".join(letters[int(c)] for c in arr)
    return validate_cfa(name)


def cfa_shift(cfa: str, dy: int, dx: int) -> str:
    """The pattern seen by a crop that starts at offset ``(dy, dx)``.

    Examples
    --------
    >>> cfa_shift("RGGB", 0, 1)
    'GRBG'
    """
    m = cfa_channel_map(cfa)
    m = np.roll(m, shift=(-(dy % 2), -(dx % 2)), axis=(0, 1))
    return cfa_from_channel_map(m)


def cfa_flip(cfa: str, *, horizontal: bool = False, vertical: bool = False, transpose: bool = False) -> str:
    """The pattern of an image after flips / transpose (even-sized image assumed).

    Examples
    --------
    >>> cfa_flip("RGGB", horizontal=True)
    'GRBG'
    >>> cfa_flip("GRBG", transpose=True)
    'GBRG'
    """
    m = cfa_channel_map(cfa)
    if transpose:
        m = m.T
    if horizontal:
        m = m[:, ::-1]
    if vertical:
        m = m[::-1, :]
    return cfa_from_channel_map(m)


def _as_tuple(values, n, name) -> tuple:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n:
        raise ValueError(f"{name} needs {n} values, got {arr.size}")
    return tuple(float(v) for v in arr)


@dataclass(frozen=True)
class CameraMeta:
    """Everything about a capture that the ISP and the models need.

    Parameters
    ----------
    cfa : str or None
        Bayer pattern name (``"RGGB"`` ...), ``None`` for linear (already demosaiced) data.
    black_level : tuple of 4 float
        Black level per CFA position in raster order (for linear data: R, G, B, G).
    white_level : float
        Saturation level of the raw values.
    as_shot_wb : tuple of 3 float
        Camera white-balance multipliers R, G, B normalised so that G = 1.
    xyz_to_cam : 3x3 tuple or None
        DNG-style ``ColorMatrix`` (XYZ D65 -> camera). ``None`` if the file has none.
    orientation : int
        LibRaw ``flip`` code (0 to 7, see :func:`rawcv.io.writers.apply_orientation`).
    color_matrices : tuple of (int, 3x3 tuple)
        Every DNG ``ColorMatrixN`` with its ``CalibrationIlluminantN`` (EXIF LightSource code), in
        file order; empty when the file has none. ``xyz_to_cam`` is the D65 one (or the last).
    analog_balance : tuple of 3 float
        The DNG ``AnalogBalance`` (ones where the file has none): a gain the camera applied before
        digitising, part of what maps its neutral to a white.
    camera_calibrations : tuple of 3x3 tuple
        The DNG ``CameraCalibrationN`` of each entry of ``color_matrices`` (identities where the
        file has none; empty where it has no colour matrices).
    opcode_lists : tuple of (int, bytes)
        The DNG ``OpcodeList1/2/3`` tags of the raw IFD as stored (big-endian records), each with
        its list number; parsed by :mod:`rawcv.dng_opcodes`.
    """

    cfa: Optional[str]
    black_level: tuple = (0.0, 0.0, 0.0, 0.0)
    white_level: float = 65535.0
    as_shot_wb: tuple = (1.0, 1.0, 1.0)
    xyz_to_cam: Optional[tuple] = None
    orientation: int = 0
    make: str = ""
    model: str = ""
    iso: Optional[float] = None
    exposure_time: Optional[float] = None
    aperture: Optional[float] = None
    noise_profile: Optional[tuple] = None
    linear: bool = False
    color_matrices: tuple = ()
    analog_balance: tuple = (1.0, 1.0, 1.0)
    camera_calibrations: tuple = ()
    opcode_lists: tuple = ()

    def __post_init__(self):
        if self.cfa is not None:
            object.__setattr__(self, "cfa", validate_cfa(self.cfa))
        object.__setattr__(self, "black_level", _as_tuple(self.black_level, 4, "black_level"))
        object.__setattr__(self, "as_shot_wb", _as_tuple(self.as_shot_wb, 3, "as_shot_wb"))
        object.__setattr__(self, "white_level", float(self.white_level))
        if self.xyz_to_cam is not None:
            m = np.asarray(self.xyz_to_cam, dtype=np.float64).reshape(3, 3)
            object.__setattr__(self, "xyz_to_cam", tuple(tuple(float(v) for v in row) for row in m))
        object.__setattr__(self, "color_matrices", tuple(
            (int(illuminant), tuple(tuple(float(v) for v in row)
                                    for row in np.asarray(m, dtype=np.float64).reshape(3, 3)))
            for illuminant, m in self.color_matrices))
        object.__setattr__(self, "analog_balance", _as_tuple(self.analog_balance, 3, "analog_balance"))
        object.__setattr__(self, "camera_calibrations", tuple(
            tuple(tuple(float(v) for v in row) for row in np.asarray(m, dtype=np.float64).reshape(3, 3))
            for m in self.camera_calibrations))
        if self.camera_calibrations and len(self.camera_calibrations) != len(self.color_matrices):
            raise ValueError(f"{len(self.camera_calibrations)} camera calibrations for "
                             f"{len(self.color_matrices)} colour matrices")
        lists = tuple((int(n), bytes(payload)) for n, payload in self.opcode_lists)
        if any(n not in (1, 2, 3) for n, _ in lists):
            raise ValueError(f"opcode lists are numbered 1 to 3, got {[n for n, _ in lists]}")
        object.__setattr__(self, "opcode_lists", lists)
        if self.white_level <= max(self.black_level):
            raise ValueError(
                f"white level {self.white_level:g} must exceed the black level {max(self.black_level):g}"
            )

    @property
    def cam_to_xyz(self) -> Optional[np.ndarray]:
        """Camera RGB -> XYZ (D65), the inverse of :attr:`xyz_to_cam`, or ``None``."""
        if self.xyz_to_cam is None:
            return None
        return np.linalg.inv(np.asarray(self.xyz_to_cam, dtype=np.float64))

    def replace(self, **changes) -> "CameraMeta":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-able dictionary (used by ``rawcv info --json`` and sidecars)."""
        d = dataclasses.asdict(self)
        d["black_level"] = list(self.black_level)
        d["as_shot_wb"] = list(self.as_shot_wb)
        d["xyz_to_cam"] = None if self.xyz_to_cam is None else [list(r) for r in self.xyz_to_cam]
        d["cam_to_xyz"] = None if self.xyz_to_cam is None else self.cam_to_xyz.tolist()
        d["noise_profile"] = None if self.noise_profile is None else list(self.noise_profile)
        d["color_matrices"] = [[illuminant, [list(r) for r in m]] for illuminant, m in self.color_matrices]
        d["analog_balance"] = list(self.analog_balance)
        d["camera_calibrations"] = [[list(r) for r in m] for m in self.camera_calibrations]
        d["opcode_lists"] = [[n, base64.b64encode(payload).decode("ascii")] for n, payload in self.opcode_lists]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CameraMeta":
        """Inverse of :meth:`to_dict` (keys it derives, such as ``cam_to_xyz``, are ignored).

        Examples
        --------
        >>> m = CameraMeta("BGGR", black_level=(1, 2, 3, 4), white_level=99, as_shot_wb=(2, 1, 3))
        >>> CameraMeta.from_dict(m.to_dict()) == m
        True
        """
        fields = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("black_level", "as_shot_wb", "noise_profile"):
            if fields.get(key) is not None:
                fields[key] = tuple(fields[key])
        if fields.get("xyz_to_cam") is not None:
            fields["xyz_to_cam"] = tuple(tuple(r) for r in fields["xyz_to_cam"])
        fields["opcode_lists"] = tuple((n, base64.b64decode(payload)) for n, payload in fields.get("opcode_lists") or ())
        fields["color_matrices"] = tuple((i, m) for i, m in fields.get("color_matrices") or ())
        fields["camera_calibrations"] = tuple(fields.get("camera_calibrations") or ())
        fields["analog_balance"] = tuple(fields.get("analog_balance") or (1.0, 1.0, 1.0))
        return cls(**fields)


@dataclass
class RawImage:
    """A RAW capture: the visible sensor data and its :class:`CameraMeta`.

    ``data`` is uint16, ``H x W`` for a Bayer mosaic or ``H x W x 3`` for linear data.
    """

    data: np.ndarray
    meta: CameraMeta
    path: Optional[str] = None

    def __post_init__(self):
        data = np.asarray(self.data)
        if self.meta.linear:
            if data.ndim != 3 or data.shape[2] != 3:
                raise ValueError(f"linear raw data must be H x W x 3, got shape {data.shape}")
        elif data.ndim != 2:
            raise ValueError(f"a Bayer mosaic must be 2-D, got shape {data.shape}")
        self.data = data

    @property
    def mosaic(self) -> np.ndarray:
        """Alias of :attr:`data` for Bayer images."""
        return self.data

    @property
    def cfa(self) -> Optional[str]:
        return self.meta.cfa

    @property
    def is_linear(self) -> bool:
        return self.meta.linear

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    def __repr__(self) -> str:
        kind = "linear" if self.is_linear else self.cfa
        return (f"RawImage({self.path or '<memory>'}, {self.width}x{self.height}, {kind}, "
                f"black={list(self.meta.black_level)}, white={self.meta.white_level:g})")


def bayer_positions_of(cfa: str, channel: int) -> list:
    """The (dy, dx) positions within the 2x2 tile that hold ``channel``."""
    m = cfa_channel_map(cfa)
    return [(dy, dx) for dy in range(2) for dx in range(2) if m[dy, dx] == channel]


__all__ = [
    "BAYER_PATTERNS", "CameraMeta", "RawImage", "validate_cfa", "cfa_channel_map", "cfa_code",
    "cfa_from_channel_map", "cfa_shift", "cfa_flip", "bayer_positions_of",
]
