"""Output colour spaces: primaries, white points, transfer curves, chromatic adaptation and
correlated colour temperature, in NumPy alone (so that :mod:`rawcv.io` and :mod:`rawcv.isp` can
both use it).

The closed set of spaces rawcv writes is :data:`OUTPUT_SPACES`; ``rawcv process --colorspace``
takes one of :data:`COLORSPACE_CHOICES` (each space, and each one's ``linear-`` variant).

Conventions
-----------
* White points are CIE 1931 2-degree tristimulus values with ``Y = 1``, as ASTM E308 tabulates
  them for the CIE illuminants (D65 ``(0.95047, 1, 1.08883)``). An RGB -> XYZ matrix is derived
  from the space's primaries and white (:func:`primaries_matrix`), then rounded to the 7 decimals
  of the published tables (Lindbloom's), which it then equals; rawcv's sRGB results are those of
  its earlier releases bit for bit because of that rounding.
* ``xyz`` is CIE XYZ relative to D65 (the white of the camera colour matrices a DNG calibrates
  for D65, and of dcraw's XYZ output), not the ICC's D50 connection space: a white-balanced
  neutral becomes ``(0.95047, 1, 1.08883)``. Its ICC profile adapts it to D50 like any other.
* ``xyz`` and ``camera`` have no transfer curve of their own; their display-encoded form uses the
  sRGB curve (as dcraw encodes its XYZ and raw-colour outputs), and ``linear-xyz`` and
  ``linear-camera`` the linear one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

# --- white points ------------------------------------------------------------------------------

D65 = (0.95047, 1.0, 1.08883)     # ASTM E308 (CIE 1931 2 degree), Y = 1
D50 = (0.96422, 1.0, 0.82521)
# the profile connection space's illuminant as the ICC specification rounds D50 (ICC.1, 7.2.16)
ICC_D50 = (0.9642, 1.0, 0.8249)


def xyz_to_xy(xyz) -> np.ndarray:
    """CIE xy chromaticity of tristimulus values ``xyz`` (``x = X / (X + Y + Z)``, ...).

    Examples
    --------
    >>> np.round(xyz_to_xy(D65), 5).tolist()
    [0.31273, 0.32902]
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    total = xyz.sum(axis=-1, keepdims=True)
    return xyz[..., :2] / total


def xy_to_xyz(xy, luminance: float = 1.0) -> np.ndarray:
    """Tristimulus values of chromaticity ``xy`` at ``Y = luminance``.

    Examples
    --------
    >>> np.round(xy_to_xyz([0.3457, 0.3585]), 4).tolist()
    [0.9643, 1.0, 0.8251]
    """
    x, y = (float(v) for v in np.asarray(xy, dtype=np.float64).reshape(2))
    if y <= 0:
        raise ValueError(f"chromaticity y must be positive, got {y!r}")
    return np.array([x / y, 1.0, (1.0 - x - y) / y]) * float(luminance)


# --- transfer curves ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TransferCurve:
    """A transfer curve, by the parameters of its decoding (encoded ``E`` -> linear ``L``) in the
    form of the ICC's parametric curve (``para`` function type 3, ICC.1 10.18)::

        L = (a E + b) ** gamma   for E >= d
        L = c E                  for E <  d

    ``c = d = 0`` is a pure power law (type 0), which keeps the sign of negative values so that
    it stays invertible on the noise below black; ``gamma = 1`` with ``a = 1`` is linear.
    ``label`` is the ``transfer`` a sidecar shows, ``phrase`` how a colour-space label names it.
    """

    name: str
    label: str
    phrase: str
    gamma: float
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0
    d: float = 0.0

    @property
    def is_linear(self) -> bool:
        return self.gamma == 1.0 and self.a == 1.0 and self.b == 0.0 and self.c == 0.0

    @property
    def linear_knee(self) -> float:
        """The linear value where the linear segment ends (0 for a pure power law)."""
        return self.c * self.d

    @property
    def icc_parameters(self) -> tuple:
        """``(function type, parameters)`` of the ICC ``para`` curve: type 0 ``(gamma,)`` for a
        pure power law, type 3 ``(gamma, a, b, c, d)`` otherwise."""
        if self.c == 0.0 and self.d == 0.0 and self.a == 1.0 and self.b == 0.0:
            return 0, (self.gamma,)
        return 3, (self.gamma, self.a, self.b, self.c, self.d)

    def decode(self, encoded) -> np.ndarray:
        """Linear values of ``encoded`` ones, in float64.

        Examples
        --------
        >>> round(float(transfer_curve("srgb").decode(0.5)), 6)
        0.214041
        """
        e = np.asarray(encoded, dtype=np.float64)
        if self.c == 0.0 and self.d == 0.0:
            return np.sign(e) * np.abs(self.a * e + self.b) ** self.gamma
        power = np.abs(self.a * np.maximum(e, self.d) + self.b) ** self.gamma
        return np.where(e >= self.d, power, self.c * e)

    def encode(self, linear) -> np.ndarray:
        """Encoded values of ``linear`` ones (the inverse of :meth:`decode`), in float64.

        Examples
        --------
        >>> round(float(transfer_curve("prophoto").encode(1 / 512)), 6)    # the knee: 16 / 512
        0.03125
        """
        x = np.asarray(linear, dtype=np.float64)
        if self.c == 0.0 and self.d == 0.0:
            return (np.sign(x) * np.abs(x) ** (1.0 / self.gamma) - self.b) / self.a
        knee = self.linear_knee
        power = (np.maximum(x, knee) ** (1.0 / self.gamma) - self.b) / self.a
        return np.where(x >= knee, power, x / self.c)


TRANSFER_CURVES = {
    # IEC 61966-2-1
    "srgb": TransferCurve("srgb", "sRGB", "the sRGB curve", 2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045),
    # Adobe RGB (1998) Color Image Encoding, 4.3.4.2: a pure power law, 563/256 = 2.19921875
    "adobe": TransferCurve("adobe", "Adobe RGB (gamma 563/256)", "the Adobe RGB curve (gamma 563/256)", 563 / 256),
    # ROMM RGB (ISO 22028-2): 1.8 with a linear segment of slope 16 below 1/512 (encoded 1/32)
    "prophoto": TransferCurve("prophoto", "ROMM (gamma 1.8)", "the ProPhoto (ROMM) curve", 1.8, 1.0, 0.0,
                              1 / 16, 1 / 32),
    "linear": TransferCurve("linear", "linear", "no curve", 1.0),
}
# the gamma stage's curves: the named ones, and a power law of any exponent
CURVE_NAMES = ("srgb", "power", "adobe", "prophoto", "linear")


def transfer_curve(name: str, gamma: float = 2.2) -> TransferCurve:
    """The curve called ``name`` (one of :data:`CURVE_NAMES`); ``power`` is ``x ** (1 / gamma)``.

    Examples
    --------
    >>> transfer_curve("power", 1.8).label, transfer_curve("srgb").label
    ('gamma 1.8', 'sRGB')
    """
    if name == "power":
        gamma = float(gamma)
        if not math.isfinite(gamma) or gamma <= 0:
            raise ValueError(f"gamma must be a positive number, got {gamma!r}")
        return TransferCurve("power", f"gamma {gamma:g}", f"gamma {gamma:g}", gamma)
    if name not in TRANSFER_CURVES:
        raise ValueError(f"unknown transfer curve {name!r}: expected one of {', '.join(CURVE_NAMES)}")
    return TRANSFER_CURVES[name]


LINEAR = TRANSFER_CURVES["linear"]


# --- primaries and chromatic adaptation --------------------------------------------------------

def primaries_matrix(primaries, white, *, decimals: Optional[int] = 7) -> np.ndarray:
    """The RGB -> XYZ matrix of RGB primaries (chromaticities ``(xr, yr), (xg, yg), (xb, yb)``)
    with ``white`` (XYZ) at RGB (1, 1, 1): each primary's XYZ at ``Y = 1``, scaled so the three
    add up to ``white`` (SMPTE RP 177). Rounded to ``decimals`` (None: not rounded).

    Examples
    --------
    >>> primaries_matrix([(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)], D65)[0].tolist()   # sRGB
    [0.4124564, 0.3575761, 0.1804375]
    """
    xy = np.asarray(primaries, dtype=np.float64).reshape(3, 2)
    columns = np.stack([xy_to_xyz(p) for p in xy], axis=1)
    scale = np.linalg.solve(columns, np.asarray(white, dtype=np.float64).reshape(3))
    m = columns * scale
    return m if decimals is None else np.round(m, decimals)


# The Bradford cone response matrix (Lam 1985, as ICC.1 Annex E and Lindbloom give it)
BRADFORD = np.array([[0.8951, 0.2664, -0.1614],
                     [-0.7502, 1.7135, 0.0367],
                     [0.0389, -0.0685, 1.0296]])


def bradford_matrix(source_white, target_white) -> np.ndarray:
    """The linear Bradford chromatic adaptation of XYZ from ``source_white`` to ``target_white``
    (both XYZ): ``inv(B) diag(B target / B source) B``. The identity when the whites are equal.

    Examples
    --------
    >>> m = bradford_matrix(D65, D50)
    >>> bool(np.allclose(m @ np.array(D65), D50))
    True
    """
    src = BRADFORD @ np.asarray(source_white, dtype=np.float64).reshape(3)
    dst = BRADFORD @ np.asarray(target_white, dtype=np.float64).reshape(3)
    return np.linalg.solve(BRADFORD, (dst / src)[:, None] * BRADFORD)


# --- the output spaces -------------------------------------------------------------------------

@dataclass(frozen=True)
class OutputSpace:
    """One output colour space: what :data:`OUTPUT_SPACES` holds.

    ``primaries`` are the xy chromaticities of R, G and B (None for ``xyz`` and ``camera``, whose
    matrices do not come from primaries), ``white`` its white (XYZ), ``curve`` the name of the
    transfer curve its encoded form uses, ``standard_curve`` whether the space's standard defines
    that curve (so that ``"sRGB"`` alone names primaries and curve together).
    """

    name: str
    title: str
    primaries: Optional[tuple]
    white: tuple
    curve: str
    standard_curve: bool

    @property
    def white_xy(self) -> tuple:
        return tuple(float(v) for v in xyz_to_xy(self.white))

    @property
    def rgb_to_xyz(self) -> Optional[np.ndarray]:
        """RGB -> XYZ (relative to :attr:`white`); the identity for ``xyz``; None for ``camera``
        (its matrix comes from each file)."""
        if self.name == "xyz":
            return np.eye(3)
        if self.primaries is None:
            return None
        return primaries_matrix(self.primaries, self.white)

    @property
    def white_rgb(self) -> np.ndarray:
        """The white in this space's own coordinates: (1, 1, 1) for RGB, the white's XYZ for ``xyz``."""
        return np.asarray(self.white, dtype=np.float64) if self.name == "xyz" else np.ones(3)


OUTPUT_SPACES = {s.name: s for s in (
    OutputSpace("srgb", "sRGB", ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), D65, "srgb", True),
    # Display P3 (Apple): the DCI-P3 primaries with the D65 white and the sRGB curve
    OutputSpace("display-p3", "Display P3", ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), D65, "srgb", True),
    OutputSpace("adobe", "Adobe RGB (1998)", ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), D65, "adobe", True),
    # ROMM RGB (ISO 22028-2), white D50
    OutputSpace("prophoto", "ProPhoto RGB", ((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), D50,
                "prophoto", True),
    OutputSpace("xyz", "CIE XYZ (D65)", None, D65, "srgb", False),
    # the sensor's own RGB, white balanced (no matrix applied); its white is D65 as the matrices map it
    OutputSpace("camera", "camera RGB", None, D65, "srgb", False),
)}
LINEAR_PREFIX = "linear-"
COLORSPACE_CHOICES = tuple(OUTPUT_SPACES) + tuple(LINEAR_PREFIX + name for name in OUTPUT_SPACES)


def output_space(name: str) -> OutputSpace:
    """The entry of :data:`OUTPUT_SPACES` called ``name``.

    Examples
    --------
    >>> output_space("prophoto").title
    'ProPhoto RGB'
    """
    if name not in OUTPUT_SPACES:
        raise ValueError(f"unknown colour space {name!r}: expected one of {', '.join(OUTPUT_SPACES)}")
    return OUTPUT_SPACES[name]


def parse_colorspace(choice: str) -> tuple:
    """``(OutputSpace, curve name)`` of a :data:`COLORSPACE_CHOICES` entry: ``linear-X`` is the
    space ``X`` with the linear curve, ``X`` the space with its own curve.

    Examples
    --------
    >>> space, curve = parse_colorspace("linear-adobe")
    >>> space.name, curve
    ('adobe', 'linear')
    >>> parse_colorspace("adobe")[1]
    'adobe'
    """
    if choice not in COLORSPACE_CHOICES:
        raise ValueError(f"unknown colour space {choice!r}: expected one of {', '.join(COLORSPACE_CHOICES)}")
    if choice.startswith(LINEAR_PREFIX):
        return OUTPUT_SPACES[choice[len(LINEAR_PREFIX):]], "linear"
    space = OUTPUT_SPACES[choice]
    return space, space.curve


# --- correlated colour temperature (Robertson 1968) --------------------------------------------

# Robertson's isotemperature lines (Wyszecki & Stiles, table 1(3.11)): reciprocal megakelvin,
# CIE 1960 u, v of the Planckian locus there, and the slope t of the isotemperature line;
# u at 325 is Lindbloom's correction of the printed 0.24702
_ROBERTSON = np.array([
    (0, 0.18006, 0.26352, -0.24341), (10, 0.18066, 0.26589, -0.25479), (20, 0.18133, 0.26846, -0.26876),
    (30, 0.18208, 0.27119, -0.28539), (40, 0.18293, 0.27407, -0.30470), (50, 0.18388, 0.27709, -0.32675),
    (60, 0.18494, 0.28021, -0.35156), (70, 0.18611, 0.28342, -0.37915), (80, 0.18740, 0.28668, -0.40955),
    (90, 0.18880, 0.28997, -0.44278), (100, 0.19032, 0.29326, -0.47888), (125, 0.19462, 0.30141, -0.58204),
    (150, 0.19962, 0.30921, -0.70471), (175, 0.20525, 0.31647, -0.84901), (200, 0.21142, 0.32312, -1.0182),
    (225, 0.21807, 0.32909, -1.2168), (250, 0.22511, 0.33439, -1.4512), (275, 0.23247, 0.33904, -1.7298),
    (300, 0.24010, 0.34308, -2.0637), (325, 0.24792, 0.34655, -2.4681), (350, 0.25591, 0.34951, -2.9641),
    (375, 0.26400, 0.35200, -3.5814), (400, 0.27218, 0.35407, -4.3633), (425, 0.28039, 0.35577, -5.3762),
    (450, 0.28863, 0.35714, -6.7262), (475, 0.29685, 0.35823, -8.5955), (500, 0.30505, 0.35907, -11.324),
    (525, 0.31320, 0.35968, -15.628), (550, 0.32129, 0.36011, -23.325), (575, 0.32931, 0.36038, -40.770),
    (600, 0.33724, 0.36051, -116.45),
])


def xy_to_cct(xy) -> float:
    """Correlated colour temperature (kelvin) of chromaticity ``xy`` by Robertson's method: the
    two isotemperature lines either side of the point, interpolated by its distance to each (in
    CIE 1960 uv). Points beyond the table's ends get its end temperatures (100 000 K and 1667 K).

    Examples
    --------
    >>> round(xy_to_cct([0.3127, 0.3290]))
    6504
    """
    x, y = (float(v) for v in np.asarray(xy, dtype=np.float64).reshape(2))
    denominator = 1.5 - x + 6.0 * y      # CIE 1960: u = 4x / (-2x + 12y + 3), v = 6y / (...)
    u, v = 2.0 * x / denominator, 3.0 * y / denominator
    last_distance = 0.0
    for i in range(1, len(_ROBERTSON)):
        mired, line_u, line_v, slope = _ROBERTSON[i]
        length = math.hypot(1.0, slope)
        # signed distance from the isotemperature line (positive: still on the hotter side)
        distance = -(u - line_u) * (slope / length) + (v - line_v) * (1.0 / length)
        if distance <= 0 or i == len(_ROBERTSON) - 1:
            distance = -min(distance, 0.0)
            f = 0.0 if i == 1 else distance / (last_distance + distance)
            return float(1.0e6 / (_ROBERTSON[i - 1, 0] * f + mired * (1.0 - f)))
        last_distance = distance
    raise AssertionError("unreachable")


def cct_to_xy(cct: float) -> tuple:
    """The chromaticity on the Planckian locus of temperature ``cct`` (kelvin), interpolated
    between Robertson's points in reciprocal temperature (the inverse of :func:`xy_to_cct` on
    the locus).

    Examples
    --------
    >>> [round(v, 4) for v in cct_to_xy(2856)]      # standard light A: (0.4476, 0.4074)
    [0.4475, 0.4074]
    """
    cct = float(cct)
    if not cct > 0:
        raise ValueError(f"a colour temperature must be positive, got {cct!r}")
    mired = 1.0e6 / cct
    mireds = _ROBERTSON[:, 0]
    i = int(np.clip(np.searchsorted(mireds, mired, side="right") - 1, 0, len(mireds) - 2))
    f = (mireds[i + 1] - mired) / (mireds[i + 1] - mireds[i])
    u = _ROBERTSON[i, 1] * f + _ROBERTSON[i + 1, 1] * (1.0 - f)
    v = _ROBERTSON[i, 2] * f + _ROBERTSON[i + 1, 2] * (1.0 - f)
    denominator = u - 4.0 * v + 2.0
    return float(1.5 * u / denominator), float(v / denominator)


# EXIF LightSource codes (the DNG CalibrationIlluminant values) -> correlated colour temperature
# in kelvin: the CIE illuminants at their own (A 2856 K, D65 6504 K, ...), the fluorescent classes
# at the middle of their ranges, the weather names as the DNG SDK takes them
ILLUMINANT_CCT = {
    1: 5503.0,     # daylight (D55)
    2: 4150.0,     # fluorescent (cool white, 3800 - 4500 K)
    3: 2856.0,     # tungsten (as standard light A)
    4: 5503.0,     # flash
    9: 5503.0,     # fine weather
    10: 6504.0,    # cloudy
    11: 7504.0,    # shade
    12: 6400.0,    # daylight fluorescent (5700 - 7100 K)
    13: 5050.0,    # day white fluorescent (4600 - 5500 K)
    14: 4150.0,    # cool white fluorescent (3800 - 4500 K)
    15: 3525.0,    # white fluorescent (3250 - 3800 K)
    16: 2925.0,    # warm white fluorescent (2600 - 3250 K)
    17: 2856.0,    # standard light A
    18: 4874.0,    # standard light B
    19: 6774.0,    # standard light C
    20: 5503.0,    # D55
    21: 6504.0,    # D65
    22: 7504.0,    # D75
    23: 5003.0,    # D50
    24: 3200.0,    # ISO studio tungsten
}


def illuminant_cct(code: int) -> Optional[float]:
    """The colour temperature of an EXIF LightSource / DNG CalibrationIlluminant code, or None
    (0 unknown, 255 other, or a code without one).

    Examples
    --------
    >>> illuminant_cct(17), illuminant_cct(21), illuminant_cct(0)
    (2856.0, 6504.0, None)
    """
    return ILLUMINANT_CCT.get(int(code))


__all__ = [
    "D65", "D50", "ICC_D50", "xyz_to_xy", "xy_to_xyz", "TransferCurve", "TRANSFER_CURVES", "CURVE_NAMES",
    "transfer_curve", "LINEAR", "primaries_matrix", "BRADFORD", "bradford_matrix", "OutputSpace",
    "OUTPUT_SPACES", "COLORSPACE_CHOICES", "LINEAR_PREFIX", "output_space", "parse_colorspace", "xy_to_cct",
    "cct_to_xy", "ILLUMINANT_CCT", "illuminant_cct",
]
