"""Writing Bayer mosaics as DNG files (through tifffile) that LibRaw reads back exactly."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..meta import cfa_channel_map, validate_cfa
from .atomic import atomic_path

# LibRaw's flip code for each TIFF Orientation (its table "50132467"[orientation & 7]), inverted
_LIBRAW_ORIENTATION_TO_TIFF = {0: 1, 1: 2, 3: 3, 2: 4, 4: 5, 6: 6, 7: 7, 5: 8}
_OPCODE_LIST_TAG = {1: 51008, 2: 51009, 3: 51022}
MIN_SIDE = 22   # LibRaw rejects smaller frames as "not RAW"


def _rationals(values, signed=False, denominator=1_000_000):
    out = []
    for v in np.asarray(values, dtype=np.float64).reshape(-1):
        f = Fraction(float(v)).limit_denominator(denominator)
        if not signed and f < 0:
            raise ValueError(f"unsigned rational tag got a negative value {float(v)}")
        out.extend([f.numerator, f.denominator])
    return out


def write_dng(path, mosaic, *, cfa: str, black=0, white=None, as_shot_wb=(1.0, 1.0, 1.0),
              color_matrix=None, noise_profile=None, make: str = "rawcv", model: str = "synthetic camera",
              orientation: int = 0, iso=None, exposure_time=None, color_matrices=None, opcode_lists=None,
              overwrite: bool = False) -> None:
    """Write a 2-D uint16 Bayer mosaic as an uncompressed CFA DNG 1.4.

    Parameters
    ----------
    path : str or path-like
        Output file; written atomically, never replacing an existing file unless ``overwrite``.
    mosaic : ndarray of uint16, H x W
        Sensor values (black level included, as a camera records them).
    cfa : {"RGGB", "BGGR", "GRBG", "GBRG"}
    black : float or 4 floats
        Black level, per CFA position in raster order if 4 values (``BlackLevelRepeatDim`` 2x2).
    white : int, optional
        White level; default the mosaic's dtype maximum.
    as_shot_wb : 3 floats
        Camera white-balance *multipliers* (R, G, B); stored as ``AsShotNeutral = 1 / multiplier``.
    color_matrix : 3x3, optional
        ``ColorMatrix1``: XYZ (D65) -> camera RGB, with ``CalibrationIlluminant1 = D65``.
    color_matrices : sequence of (int, 3x3), optional
        Instead of ``color_matrix``: up to three ``(CalibrationIlluminantN, ColorMatrixN)`` pairs
        (EXIF LightSource codes: 17 standard light A, 21 D65 ...), for two-illuminant files.
    opcode_lists : mapping or sequence of (int, bytes), optional
        ``OpcodeList1/2/3`` payloads by list number (:func:`rawcv.dng_opcodes.encode_opcodes`).
    noise_profile : sequence, optional
        DNG ``NoiseProfile``: pairs ``(S, O)`` per colour plane, variance = S * x + O in [0, 1] units.
    orientation : int
        LibRaw flip code (0 to 7, see :func:`rawcv.io.writers.apply_orientation`), stored as the
        TIFF Orientation (1 to 8).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "flat.dng")
    >>> write_dng(p, np.full((32, 32), 1000, np.uint16), cfa="GRBG", black=64, white=4095)
    """
    import tifffile

    cfa = validate_cfa(cfa)
    data = np.ascontiguousarray(mosaic)
    if data.ndim != 2 or data.dtype != np.uint16:
        raise ValueError(f"mosaic must be a 2-D uint16 array, got {data.dtype} {data.shape}")
    if min(data.shape) < MIN_SIDE:
        raise ValueError(f"mosaic is {data.shape[1]}x{data.shape[0]}: LibRaw does not read images under "
                         f"{MIN_SIDE} pixels a side")
    black4 = np.broadcast_to(np.asarray(black, dtype=np.float64).reshape(-1), (4,)) \
        if np.size(black) in (1, 4) else None
    if black4 is None:
        raise ValueError(f"black needs 1 or 4 values, got {np.size(black)}")
    white = int(np.iinfo(np.uint16).max if white is None else white)
    wb = np.asarray(as_shot_wb, dtype=np.float64).reshape(-1)
    if wb.size != 3 or np.any(wb <= 0):
        raise ValueError(f"as_shot_wb must be 3 positive multipliers, got {as_shot_wb!r}")
    if orientation not in _LIBRAW_ORIENTATION_TO_TIFF:
        raise ValueError(f"orientation must be one of {sorted(_LIBRAW_ORIENTATION_TO_TIFF)}, got {orientation}")

    pattern = cfa_channel_map(cfa).ravel().astype(np.uint8).tolist()
    tags = [
        (50706, 1, 4, (1, 4, 0, 0), True),           # DNGVersion
        (50707, 1, 4, (1, 1, 0, 0), True),           # DNGBackwardVersion
        (50708, 2, 0, f"{make} {model}", True),      # UniqueCameraModel
        (33421, 3, 2, (2, 2), True),                 # CFARepeatPatternDim
        (33422, 1, 4, tuple(pattern), True),         # CFAPattern
        (50710, 1, 3, (0, 1, 2), True),              # CFAPlaneColor
        (50711, 3, 1, 1, True),                      # CFALayout: rectangular
        (50713, 3, 2, (2, 2), True),                 # BlackLevelRepeatDim
        (50714, 5, 4, tuple(_rationals(black4)), True),  # BlackLevel
        (50717, 4, 1, white, True),                  # WhiteLevel
        (50728, 5, 3, tuple(_rationals(1.0 / wb)), True),  # AsShotNeutral
        (274, 3, 1, _LIBRAW_ORIENTATION_TO_TIFF[orientation], True),
    ]
    if color_matrix is not None and color_matrices is not None:
        raise ValueError("give color_matrix or color_matrices, not both")
    pairs = [(21, color_matrix)] if color_matrix is not None else list(color_matrices or ())
    if len(pairs) > 3:
        raise ValueError(f"a DNG holds at most 3 colour matrices, got {len(pairs)}")
    for i, (illuminant, matrix) in enumerate(pairs):
        cm = np.asarray(matrix, dtype=np.float64).reshape(3, 3)
        tags.append((50721 + i, 10, 9, tuple(_rationals(cm, signed=True, denominator=10_000)), True))
        tags.append(((50778, 50779, 52529)[i], 3, 1, int(illuminant), True))   # CalibrationIlluminantN
    lists = dict(opcode_lists.items() if isinstance(opcode_lists, dict) else (opcode_lists or ()))
    for n, payload in sorted(lists.items()):
        if n not in _OPCODE_LIST_TAG:
            raise ValueError(f"opcode lists are numbered 1 to 3, got {n}")
        payload = bytes(payload)
        tags.append((_OPCODE_LIST_TAG[n], 7, len(payload), payload, True))
    if noise_profile is not None:
        npf = tuple(float(v) for v in np.asarray(noise_profile, dtype=np.float64).reshape(-1))
        tags.append((51041, 12, len(npf), npf, True))
    if iso is not None:
        tags.append((34855, 3, 1, int(round(iso)), True))
    if exposure_time is not None:
        tags.append((33434, 5, 1, tuple(_rationals([exposure_time])), True))

    with atomic_path(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(
            tmp, data, photometric=32803, compression=None, planarconfig=None,
            subfiletype=0, software="rawcv", extratags=tags + [(271, 2, 0, make, True), (272, 2, 0, model, True)],
            metadata=None,
        )
