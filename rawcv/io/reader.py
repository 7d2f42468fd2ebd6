"""Reading camera RAW files through rawpy/LibRaw, and headerless sensor dumps."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RawReadError, UnsupportedCFAError
from ..meta import CameraMeta, RawImage, validate_cfa

# DNG CalibrationIlluminant code of D65, the white point rawcv's sRGB conversion assumes
_D65 = 21


class _QuietWhileProbing(logging.Filter):
    """Drops tifffile's log records raised inside :func:`_tiff_probe`, on that thread only.

    The probe is optional (LibRaw has the last word on every file), so tifffile's complaints about
    a damaged file (``<TiffTag.fromfile> raised ...``) would only be noise next to rawcv's one line.
    """

    active = threading.local()

    def filter(self, record) -> bool:
        return not getattr(self.active, "on", False)


_LOG = logging.getLogger(__name__)
_TIFFFILE_FILTER = _QuietWhileProbing()
logging.getLogger("tifffile").addFilter(_TIFFFILE_FILTER)


def _tiff_probe(path, *, dng_view: bool = False):
    """IFD0's tags where the file is TIFF-based ({} otherwise) and, for a DNG when ``dng_view``, what
    LibRaw would report for it worked out from the tags alone (:mod:`rawcv.io.dng_tags`), or the
    reason it cannot be (a string)."""
    _TIFFFILE_FILTER.active.on = True
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = {t.name: t.value for t in tif.pages[0].tags.values()}
            if "DNGVersion" in tags:
                tags[_OPCODE_LISTS] = _raw_ifd_opcode_lists(tif)
            view = None
            if dng_view and "DNGVersion" in tags:
                view = _dng_view(tif, tags, os.path.getsize(path))
    except Exception:  # not TIFF-based (or unreadable as TIFF): LibRaw's fields still apply
        return {}, None
    finally:
        _TIFFFILE_FILTER.active.on = False
    return tags, view


_OPCODE_LISTS = "rawcv: opcode lists"   # not a tag name: the raw IFD's lists, gathered by the probe
_OPCODE_LIST_TAGS = {51008: 1, 51009: 2, 51022: 3}


def _raw_ifd_opcode_lists(tif) -> tuple:
    """``((n, bytes), ...)``: the OpcodeListN tags of the IFD that holds the raw image (IFD0 or the
    SubIFD with NewSubfileType 0, where cameras put them)."""
    import tifffile

    pages = [tif.pages[0]]
    for k, offset in enumerate(tif.pages[0].subifds or ()):
        tif.filehandle.seek(offset)
        pages.append(tifffile.TiffPage(tif, index=(0, k)))
    for page in pages:
        subfile = page.tags.get(254)
        if subfile is None or int(subfile.value) == 0:
            lists = tuple((_OPCODE_LIST_TAGS[code], bytes(page.tags[code].value))
                          for code in sorted(_OPCODE_LIST_TAGS) if code in page.tags)
            compression = page.tags.get(259)
            if compression is not None and int(compression.value) == _LOSSY_DNG:
                lists = _without_decoded_polynomials(lists)
            return lists
    return ()


_LOSSY_DNG = 34892


def _without_decoded_polynomials(lists: tuple) -> tuple:
    """The lists less the ``MapPolynomial`` entries of list 2 that LibRaw already applied.

    LibRaw decodes a lossy (JPEG-compressed, 8-bit) DNG through a table built from list 2's
    MapPolynomial opcodes, in order until one it cannot take (a plane above 2 or a degree above 8),
    skipping the other opcodes; the values it returns are linear already. Applying those opcodes
    again would darken the image twice over, so they leave the list here.
    """
    from ..dng_opcodes import MapPolynomial, OpcodeError, decode_opcode_list, encode_opcode_list

    out = []
    for n, payload in lists:
        if n == 2:
            try:
                entries = decode_opcode_list(payload)
            except OpcodeError:
                out.append((n, payload))            # malformed: the pipeline reports it
                continue
            kept, consuming = [], True
            for entry in entries:
                record = entry.record
                if consuming and isinstance(record, MapPolynomial):
                    if record.area.plane <= 2 and len(record.coefficients) <= 9:
                        continue
                    consuming = False
                kept.append(entry)
            if not kept:
                continue
            payload = encode_opcode_list(kept) if len(kept) != len(entries) else payload
        out.append((n, payload))
    return tuple(out)


def _dng_view(tif, tags, size):
    from . import dng_tags

    try:
        import rawpy

        if tuple(rawpy.libraw_version[:2]) != dng_tags.LIBRAW_VERSION:
            return f"LibRaw {rawpy.libraw_version}: the tag replay follows LibRaw {dng_tags.LIBRAW_VERSION}"
        if _dng_xyz_to_cam(tags) is None:
            return "no ColorMatrix in IFD0 (LibRaw's own tables would apply)"
        return dng_tags.libraw_view(tif, size)
    except dng_tags.NotModelled as exc:
        return str(exc)
    except Exception as exc:    # anything the replay could not read: rawpy reads the file
        return f"{type(exc).__name__}: {exc}"


# What the decoders print to the C-level stderr (fd 2) about damaged data: LibRaw's default
# data-error callback names the file; libjpeg (lossy DNGs, some Kodak files) names nothing
_LIBRAW_LINE = re.compile(r"(?P<name>.*): (?P<what>Unexpected end of file|data corrupted at -?\d+)")
_UNNAMED_LINE = re.compile(r"(?P<what>Premature end of JPEG file|Corrupt JPEG data: .*)")


class _AmbiguousMessage(Exception):
    """A decoder message that names no file came while several files were being read."""


class _Fd2Guard:
    """Keeps the decoders' messages off the terminal while LibRaw runs and gives each reader the
    ones about its own file.

    fd 2 belongs to the whole process: the first of several concurrent readers points it at a
    temporary file and the last one points it back. A reader takes the lines that name its file,
    and the unnamed ones (libjpeg's) only when no other file was read meanwhile; otherwise it is
    told to read again alone. Any other text that reached fd 2 in the window (another thread's
    output) goes to the real stderr when the window closes, late but not lost.
    """

    def __init__(self):
        self.cond = threading.Condition()
        self.users = 0
        self.entries = 0
        self.exclusive = False
        self.queued_alone = 0
        self.saved = None
        self.sink = None

    @contextlib.contextmanager
    def messages(self, path: str, said: list, *, alone: bool = False):
        with self.cond:
            if alone:
                # new readers wait from now on, so the running ones drain and this one gets its turn
                self.queued_alone += 1
                while self.exclusive or self.users:
                    self.cond.wait()
                self.queued_alone -= 1
                self.exclusive = True
            else:
                while self.exclusive or self.queued_alone:
                    self.cond.wait()
            if self.users == 0:
                self._redirect()
            was_alone = self.users == 0
            self.users += 1
            self.entries += 1
            entries = self.entries
            start = os.lseek(2, 0, os.SEEK_CUR) if self.sink is not None else 0
        try:
            yield said
        finally:
            with self.cond:
                ambiguous = False
                if self.sink is not None:
                    end = os.lseek(2, 0, os.SEEK_CUR)
                    text = os.pread(self.sink.fileno(), max(0, end - start), start).decode("utf-8", "replace")
                    only_me = was_alone and entries == self.entries
                    for line in text.splitlines():
                        named, unnamed = _LIBRAW_LINE.fullmatch(line), _UNNAMED_LINE.fullmatch(line)
                        if named and named["name"] == path:
                            said.append(named["what"])
                        elif unnamed and only_me:
                            said.append(unnamed["what"])
                        elif unnamed:
                            ambiguous = True
                self.users -= 1
                if self.users == 0:
                    self._restore()
                if alone:
                    self.exclusive = False
                self.cond.notify_all()
            if ambiguous and not said:
                raise _AmbiguousMessage(path)

    def _redirect(self) -> None:
        try:
            sys.stderr.flush()      # Python's buffered text goes out before fd 2 moves
            self.saved = os.dup(2)
        except (OSError, ValueError, AttributeError):   # no fd 2 (a daemon): nothing to guard
            self.saved = None
            return
        self.sink = tempfile.TemporaryFile()
        os.dup2(self.sink.fileno(), 2)

    def _restore(self) -> None:
        if self.sink is None:
            return
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        end = os.lseek(2, 0, os.SEEK_CUR)
        os.dup2(self.saved, 2)
        os.close(self.saved)
        text = os.pread(self.sink.fileno(), end, 0).decode("utf-8", "replace")
        self.sink.close()
        self.sink = self.saved = None
        # decoder lines were claimed by their readers (or, as "buffer: ...", come from the
        # headerless probe); the rest was never theirs
        rest = "".join(line for line in text.splitlines(keepends=True)
                       if not (_LIBRAW_LINE.fullmatch(line.rstrip("\r\n"))
                               or _UNNAMED_LINE.fullmatch(line.rstrip("\r\n"))))
        if rest:
            with contextlib.suppress(OSError):
                os.write(2, rest.encode("utf-8"))


_FD2 = _Fd2Guard()


def _rational_matrix(values):
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 18:  # tifffile gives SRATIONAL as flat numerator, denominator pairs
        v = v[0::2] / v[1::2]
    return v.reshape(-1, 3)[:3] if v.size >= 9 else None


def _dng_color_matrices(tags, *, calibrations: bool = False) -> list:
    """``[(CalibrationIlluminantN, ColorMatrixN), ...]`` of a DNG's IFD0 (an illuminant the file
    leaves out is 0, "unknown", as the specification says); with ``calibrations``, the
    ``CameraCalibrationN`` of each instead (an identity where the file has none)."""
    out = []
    for i in (1, 2, 3):
        cm = tags.get(f"ColorMatrix{i}")
        m = None if cm is None else _rational_matrix(cm)
        if m is not None and m.shape == (3, 3):
            if calibrations:
                cc = tags.get(f"CameraCalibration{i}")
                cc = None if cc is None else _rational_matrix(cc)
                out.append(cc if cc is not None and cc.shape == (3, 3) else np.eye(3))
                continue
            illum = tags.get(f"CalibrationIlluminant{i}")
            out.append((int(getattr(illum, "value", illum) or 0), m))
    return out


def _analog_balance(tags) -> tuple:
    v = tags.get("AnalogBalance")
    if v is None:
        return (1.0, 1.0, 1.0)
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    v = v[0::2] / v[1::2] if v.size == 6 else v
    return tuple(float(x) for x in v[:3]) if v.size >= 3 and np.all(v[:3] > 0) else (1.0, 1.0, 1.0)


def _dng_xyz_to_cam(tags):
    """The DNG ColorMatrix for D65 (or the last one given), as XYZ -> camera."""
    candidates = _dng_color_matrices(tags)
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
        color_matrices=tuple(_dng_color_matrices(tags)),
        camera_calibrations=tuple(_dng_color_matrices(tags, calibrations=True)),
        analog_balance=_analog_balance(tags),
        opcode_lists=tags.get(_OPCODE_LISTS, ()),
    )


@dataclass(frozen=True)
class RawMetadata:
    """What :func:`read_metadata` returns: a file's :class:`~rawcv.meta.CameraMeta` and its size.

    ``width`` and ``height`` are those of the visible area, as ``read(path).data`` would have them.
    """

    path: str
    meta: CameraMeta
    width: int
    height: int


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
        Missing, unreadable, not RAW, truncated or corrupt file, or a headerless dump that LibRaw
        could only guess a camera for from its size (the message names the file; read such dumps
        with :func:`read_bayer`).
    UnsupportedCFAError
        X-Trans, 4-colour or otherwise non-Bayer sensors.

    Notes
    -----
    What LibRaw and libjpeg print about a damaged file (on the C-level stderr) does not reach the
    terminal: it ends up in the error's message. A file they report damaged data for is an error
    even where LibRaw returns an image, since the missing part of that image is made up.

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
    return _read(path, pixels=True)


def read_metadata(path) -> RawMetadata:
    """Read the :class:`~rawcv.meta.CameraMeta` and size :func:`read` gives, without its pixels.

    rawpy fills the CFA pattern, black and white levels, white balance and EXIF fields only after
    ``unpack()``, which decodes every pixel. For a DNG, the format rawcv writes, these values are
    worked out from the TIFF tags instead (:mod:`rawcv.io.dng_tags` replays what LibRaw does with
    them; tifffile reads the tags without touching the image data), so the time does not grow with
    the pixel count. Anything in a DNG that replay does not model (a LinearizationTable, MaskedAreas,
    maker notes, a compression LibRaw does not load as it is, no ColorMatrix, a make LibRaw
    special-cases ...) sends the file through rawpy, as do all other formats (NEF, CR2, ARW, KDC ...):
    LibRaw decodes the pixels then, and only the copy of the visible area is saved. Either way the
    result is the one :func:`read` gives (both turn LibRaw's values into a ``CameraMeta`` with the
    same function); a DNG whose compressed pixel data is damaged gives its metadata here while
    :func:`read` reports the damage.

    Parameters
    ----------
    path : str or path-like
        Any file :func:`read` takes.

    Returns
    -------
    RawMetadata

    Raises
    ------
    RawReadError, UnsupportedCFAError
        As :func:`read`.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from rawcv.io.dng import write_dng
    >>> path = os.path.join(tempfile.mkdtemp(), "flat.dng")
    >>> write_dng(path, np.full((32, 48), 1000, np.uint16), cfa="GRBG", black=512, white=4095,
    ...           color_matrix=np.eye(3))
    >>> info = read_metadata(path)
    >>> info.meta.cfa, info.meta.black_level, info.width, info.height
    ('GRBG', (512.0, 512.0, 512.0, 512.0), 48, 32)
    """
    return _read(path, pixels=False)


def _read(path, *, pixels: bool):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise RawReadError(f"{path}: no such file")
    if os.path.isdir(path):
        raise RawReadError(f"{path}: is a folder, not a RAW file")
    tags, view = _tiff_probe(path, dng_view=not pixels)
    if view is not None and not isinstance(view, str):
        return _metadata_from_tags(path, tags, view)
    if view is not None:
        _LOG.debug("%s: metadata through rawpy: %s", path, view)
    try:
        return _decode(path, tags, pixels=pixels, alone=False)
    except _AmbiguousMessage:
        return _decode(path, tags, pixels=pixels, alone=True)


@contextlib.contextmanager
def _naming(path: str):
    """The metadata errors of the tag path, named as :func:`_decode` names them."""
    try:
        yield
    except UnsupportedCFAError as exc:
        raise UnsupportedCFAError(f"{path}: {exc}") from None
    except ValueError as exc:
        raise RawReadError(f"{path}: inconsistent metadata ({exc})") from None


def _metadata_from_tags(path: str, tags: dict, view) -> RawMetadata:
    with _naming(path):
        cfa = None if view.linear else _cfa_name(view)
        meta = _meta_from_libraw(view, tags, linear=view.linear, cfa=cfa)
    return RawMetadata(path, meta, view.sizes.width, view.sizes.height)


def _decode(path: str, tags: dict, *, pixels: bool, alone: bool):
    import rawpy

    libraw_said: list = []
    try:
        if tags and "DNGVersion" not in tags and not tags.get("Make"):
            # LibRaw would decode any grey 16-bit TIFF as an RGGB "raw"; camera TIFF-based formats
            # (NEF, CR2, ARW, ...) always name their maker
            raise RawReadError(f"{path}: a plain TIFF image (no DNG or camera tags), not a RAW file")
        with _FD2.messages(path, libraw_said, alone=alone), rawpy.imread(path) as raw:
            if not tags and _identified_by_size_only(path):
                raise RawReadError(
                    f"{path}: no RAW file header (LibRaw would only guess a camera from the file size, "
                    f"{os.path.getsize(path)} bytes); a headerless sensor dump needs its layout: "
                    "--bayer WIDTHxHEIGHT:CFA:BITS [--black B] [--white W], or rawcv.read_bayer()")
            linear = raw.raw_type == rawpy.RawType.Stack
            cfa = None if linear else _cfa_name(raw)
            data = None
            if pixels:
                visible = raw.raw_image_visible
                data = np.array(visible[..., :3] if linear else visible, dtype=np.uint16, copy=True)
            meta = _meta_from_libraw(raw, tags, linear=linear, cfa=cfa)
            height, width = int(raw.sizes.height), int(raw.sizes.width)
    except UnsupportedCFAError as exc:
        raise UnsupportedCFAError(f"{path}: {exc}") from None
    except rawpy.LibRawFileUnsupportedError:
        said = f" (LibRaw: {'; '.join(libraw_said)})" if libraw_said else ""
        raise RawReadError(f"{path}: not a RAW file LibRaw can read (unsupported or not RAW){said}") from None
    except (rawpy.LibRawIOError, rawpy.LibRawDataError, rawpy.LibRawTooBigError) as exc:
        said = f": {'; '.join(libraw_said)}" if libraw_said else ""
        raise RawReadError(f"{path}: truncated or corrupt RAW data ({type(exc).__name__}{said})") from None
    except rawpy.LibRawError as exc:
        said = f"; LibRaw: {'; '.join(libraw_said)}" if libraw_said else ""
        raise RawReadError(f"{path}: LibRaw could not read it ({type(exc).__name__}: {exc}{said})") from None
    except ValueError as exc:
        raise RawReadError(f"{path}: inconsistent metadata ({exc})") from None
    if libraw_said:
        # the decoder reported damaged data and carried on, filling what it could not decode: the
        # pixels are not the file's
        raise RawReadError(f"{path}: corrupt RAW data (the decoder said: {'; '.join(libraw_said)})")
    if pixels:
        return RawImage(data, meta, path)
    return RawMetadata(path, meta, width, height)


def _identified_by_size_only(path) -> bool:
    """True when LibRaw took the file for a camera only because of its size.

    Files without a header LibRaw knows are looked up in its table of headerless formats by their
    exact byte count; the same bytes plus one then identify as nothing. A header-identified format
    does not care about a byte more at its end.
    """
    import rawpy

    with open(path, "rb") as fh:
        payload = fh.read() + b"\0"
    probe = rawpy.RawPy()
    try:
        probe.open_buffer(_Bytes(payload))
    except rawpy.LibRawFileUnsupportedError:
        return True
    except rawpy.LibRawError:
        return False    # identified, then failed on something else: the real open says what
    finally:
        probe.close()
    return False


class _Bytes:
    """The one ``read()`` rawpy's ``open_buffer`` makes, without a BytesIO copy of the payload."""

    def __init__(self, payload: bytes):
        self._payload = payload

    def read(self) -> bytes:
        return self._payload


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


__all__ = ["RawMetadata", "read", "read_bayer", "read_metadata"]
