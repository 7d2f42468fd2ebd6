"""What LibRaw (through rawpy) reports about a DNG, worked out from its TIFF tags alone.

rawpy hands out black/white levels, CFA pattern, white balance and EXIF fields only after
``unpack()``, which decodes every pixel. For DNGs this module replays, on the tags tifffile reads
(without touching strip or tile data), the steps of LibRaw 0.22 that produce those values:
``parse_tiff_ifd`` and ``parse_exif`` in file order, ``apply_tiff`` (the raw IFD, shutter,
orientation), ``identify_process_dng_fields`` (levels, AsShotNeutral), the checks of ``identify``
and ``open_datastream`` (white-balance range, even margins, the linear-DNG white-balance fix), the
black-level folding of ``unpack`` and of rawpy's ``black_level_per_channel``, with LibRaw's integer
and float32 arithmetic. :class:`LibRawView` has the attributes of a ``rawpy.RawPy`` the reader
reads, so one function turns either into a ``CameraMeta``.

The replay covers a narrow set of files on purpose. Whatever it does not model raises
:class:`NotModelled` and the reader asks rawpy instead, so the output is never silently different:
a tag LibRaw acts on that is neither modelled nor known harmless here (LinearizationTable,
MaskedAreas, DNGPrivateData and EXIF maker notes, camera-specific tags ...), a CFA that is not a 2x2
RGB Bayer pattern, more than one main raw image or one that other LibRaw options could pick, nested
SubIFDs, a compression LibRaw does not load as it is (deflate: rawpy's LibRaw is built without zlib),
raw data past the end of the file, and the makes whose DNGs LibRaw special-cases (Leica, Olympus,
Pentax, Ricoh, Samsung, Panasonic, Sony, Fujifilm, Hasselblad, Phase One, Leaf, Kodak, Sinar,
Raspberry Pi, Nikon Z and D6). Damaged *compressed* pixel data cannot be seen without decoding it.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

LIBRAW_VERSION = (0, 22)                # the LibRaw (as rawpy bundles it) whose steps are replayed
_F32 = np.float32
_UINT_MAX = 0xFFFFFFFF
_ORIENTATION_TO_FLIP = "50132467"      # LibRaw: t_flip = "50132467"[Orientation & 7] - '0'
_CFA, _LINEAR_RAW = 32803, 34892
_MAX_IFDS = 8                           # LibRaw keeps 10 (LIBRAW_IFD_MAXCOUNT)

# Every tag parse_tiff_ifd (LibRaw metadata/tiff.cpp) has a case for; LibRaw skips all others
_LIBRAW_IFD_TAGS = frozenset((
    1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 14, 15, 16, 17, 18, 19, 23, 24, 25, 26, 28, 29, 30, 36, 37, 38, 39,
    45, 46, 47, 48, 49, 50, 55, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 254, 256,
    257, 258, 259, 262, 270, 271, 272, 273, 274, 277, 278, 279, 280, 284, 288, 289, 291, 305, 306, 315,
    317, 322, 323, 324, 325, 330, 338, 339, 400, 513, 514, 700, 4097, 4352, 4353, 4357, 4609, 4610,
    4611, 8201, 13344, 13345, 28672, 28688, 29184, 29185, 29217, 29264, 29443, 29456, 29459, 29895,
    29896, 32770, 32772, 32773, 33405, 33421, 33422, 33424, 33434, 33437, 34303, 34306, 34307, 34310,
    34665, 34675, 34853, 37122, 37381, 37386, 37393, 37397, 37400, 37888, 37889, 37890, 37891, 37892,
    37893, 40976, 41989, 42016, 42033, 42034, 42035, 42036, 42037, 46274, 46275, 46279, 50454, 50455,
    50458, 50459, 50706, 50708, 50709, 50710, 50711, 50712, 50713, 50714, 50715, 50716, 50717, 50718,
    50719, 50720, 50721, 50722, 50723, 50724, 50727, 50728, 50729, 50730, 50734, 50735, 50736, 50740,
    50752, 50778, 50779, 50781, 50827, 50829, 50830, 50831, 50964, 50965, 50970, 51008, 51009, 51022,
    51125, 61440, 61441, 61442, 61443, 61446, 61447, 61448, 61450, 61452, 61453, 61454, 64772, 64777,
    65024, 65026))
# ... of which these feed only what rawcv does not read (lens, serials, dates, crops, profiles,
# colour calibration, opcode lists; PlanarConfiguration is parsed only in Panasonic RW2 files)
_HARMLESS_IFD_TAGS = frozenset((
    270, 278, 279, 284, 305, 306, 315, 317, 322, 323, 325, 513, 514, 700, 34675, 34853, 37122, 37381,
    37386, 37393, 37397, 42016, 42033, 42034, 42035, 42036, 42037, 50708, 50709, 50719, 50720, 50721,
    50722, 50723, 50724, 50727, 50729, 50730, 50734, 50735, 50736, 50778, 50779, 50781, 50827, 50831,
    50964, 50965, 50970, 51008, 51009, 51022, 51125))
# ... and these the replay models
_MODELLED_IFD_TAGS = frozenset((
    254, 256, 257, 258, 259, 262, 271, 272, 273, 274, 277, 324, 330, 339, 33421, 33422, 33434, 33437,
    34665, 50706, 50710, 50711, 50713, 50714, 50715, 50716, 50717, 50718, 50728, 50829))
_NOT_MODELLED_IFD_TAGS = _LIBRAW_IFD_TAGS - _HARMLESS_IFD_TAGS - _MODELLED_IFD_TAGS
# parse_exif acts on these beyond the modelled (33434, 33437, 34855, 37377, 37378) and harmless ones
_EXIF_NOT_MODELLED = {37500: "MakerNote", 40962: "PixelXDimension", 40963: "PixelYDimension",
                      41730: "CFAPattern"}
_QUIRKY_MAKES = ("leica", "olympus", "om digital", "om system", "pentax", "ricoh", "samsung",
                 "panasonic", "lumix", "sony", "fuji", "hasselblad", "imacon", "phase one", "leaf",
                 "mamiya", "kodak", "eastman", "sinar", "raspberry", "broadcom", "rpi", "ov5647")


class NotModelled(Exception):
    """The file has something the tag replay does not model; rawpy has to read it."""


@dataclass
class Tag:
    code: int
    dtype: int
    count: int
    value: object
    valueoffset: int
    subs: list = field(default_factory=list)    # SubIFDs: their tag lists; ExifTag: its tags


@dataclass
class LibRawView:
    """The attributes of a ``rawpy.RawPy`` that the reader reads, as LibRaw would fill them."""

    raw_pattern: object
    color_desc: bytes
    black_level_per_channel: list
    white_level: int
    camera_whitebalance: list
    rgb_xyz_matrix: np.ndarray
    sizes: SimpleNamespace
    other: SimpleNamespace
    linear: bool


def libraw_view(tif, file_size: int) -> LibRawView:
    """What rawpy would report for the DNG open in the ``tifffile.TiffFile`` ``tif``.

    Raises :class:`NotModelled` where the file has anything the replay does not model.
    """
    return _Replay(read_ifds(tif), file_size).view()


# ------------------------------------------------------------------------------------------------
# the IFD tree, as tifffile reads it (tags only)
# ------------------------------------------------------------------------------------------------

def read_ifds(tif) -> list:
    """The top-level IFDs, each a list of :class:`Tag` in file order (LibRaw's parse order), with the
    SubIFDs and the EXIF IFD attached to their tags."""
    import tifffile

    if tif.is_bigtiff or tif.tiff.offsetsize != 4:
        raise NotModelled("BigTIFF")
    count = [0]

    def ifd(page, nested: bool) -> list:
        count[0] += 1
        if count[0] > _MAX_IFDS:
            raise NotModelled("too many IFDs")
        declared, found = _entry_count(tif, page.offset), list(page.tags.values())
        if declared != len(found) or declared > 512:
            raise NotModelled(f"IFD at {page.offset}: {declared} entries, tifffile read {len(found)}")
        out = []
        for t in sorted(found, key=lambda t: t.offset):
            tag = Tag(int(t.code), int(t.dtype), int(t.count), t.value, int(t.valueoffset))
            if tag.code == 330:
                if nested:
                    raise NotModelled("nested SubIFDs")
                for k, offset in enumerate(page.subifds or ()):
                    tif.filehandle.seek(offset)
                    tag.subs.append(ifd(tifffile.TiffPage(tif, index=(page.index, k)), True))
            elif tag.code == 34665:
                tag.subs = [_tag(tifffile.TiffTag.fromfile(tif, offset=tag.valueoffset + 2 + 12 * i))
                            for i in range(_entry_count(tif, tag.valueoffset))]
            out.append(tag)
        return out

    return [ifd(page, False) for page in tif.pages]


def _tag(t) -> Tag:
    return Tag(int(t.code), int(t.dtype), int(t.count), t.value, int(t.valueoffset))


def _entry_count(tif, offset: int) -> int:
    tif.filehandle.seek(offset)
    return struct.unpack(tif.byteorder + "H", tif.filehandle.read(2))[0]


# ------------------------------------------------------------------------------------------------
# values the way LibRaw's get2 / get4 / getint / getreal read them
# ------------------------------------------------------------------------------------------------

def _flat(tag: Tag) -> list:
    v = tag.value
    if isinstance(v, (bytes, bytearray)):
        return list(v)
    if isinstance(v, (tuple, list, np.ndarray)):
        return list(np.ravel(np.asarray(v, dtype=object)))
    return [v]


def _reals(tag: Tag) -> list:
    """getreal() of each value, as C doubles."""
    v = _flat(tag)
    if tag.dtype in (5, 10):                   # (S)RATIONAL: num / (den or 1)
        if len(v) != 2 * tag.count:
            raise NotModelled(f"tag {tag.code}: unexpected rational layout")
        return [float(n) / float(d if d else 1) for n, d in zip(v[0::2], v[1::2])]
    if tag.dtype in (3, 4, 8, 9, 11, 12):
        return [float(x) for x in v]
    raise NotModelled(f"tag {tag.code} has TIFF type {tag.dtype}")


def _ints(tag: Tag, *, short_only: bool = False) -> list:
    """getint() (or get2()) of each value; LibRaw would read other types as raw bytes."""
    if tag.dtype != 3 and (short_only or tag.dtype != 4):
        raise NotModelled(f"tag {tag.code} has TIFF type {tag.dtype}")
    return [int(x) for x in _flat(tag)]


def _unsigned(x) -> int:
    """C's conversion of a float to unsigned (truncation), where it is defined."""
    x = float(x)
    if not 0 <= x < 2 ** 32:
        raise NotModelled(f"level {x} out of range")
    return int(x)


def _powf64l(b) -> np.float32:
    b = _F32(b)
    return _F32(0) if b > 64 or b < -64 else np.power(_F32(2), b)


class _Cblack(dict):
    """LibRaw's cblack[] array: 0-3 per colour, 4-5 repeat dims, 6.. the repeat pattern."""

    def __missing__(self, key):
        return 0


# ------------------------------------------------------------------------------------------------
# the replay
# ------------------------------------------------------------------------------------------------

class _Ifd:
    """The fields of LibRaw's tiff_ifd[] entry that matter here."""

    def __init__(self, tags: list):
        self.tags = tags
        self.newsubfiletype = self.t_width = self.t_height = self.bps = self.samples = 0
        self.comp = self.phint = self.t_flip = self.sample_format = self.offset = 0
        self.tm = self.lm = self.vwidth = self.vheight = self.t_filters = 0
        self.t_shutter = _F32(0)
        self.tiled = False
        self.black_set = self.white_set = self.asn_set = False
        self.dng_black, self.dng_cblack, self.black_count = 0, _Cblack(), 0
        self.whitelevel = [0, 0, 0, 0]
        self.asn = [_F32(0)] * 4

    def ints(self, code: int) -> list:
        return next(([int(x) for x in _flat(t)] for t in self.tags if t.code == code), [])


class _Replay:
    def __init__(self, ifds: list, file_size: int):
        self.file_size = file_size
        self.ifds: list = []
        self.names: list = []
        self.cb4 = self.cb5 = 0                # LibRaw's global cblack[4], cblack[5]
        self.colors = 3
        self.shutter = self.aperture = _F32(0)
        self.iso = 0
        self.cam_mul = [_F32(0), _F32(1), _F32(0), _F32(0)]
        for top in ifds:
            self._parse_ifd(top)

    # -- parse_tiff_ifd / parse_exif ------------------------------------------------------------
    def _parse_ifd(self, tags: list) -> None:
        ifd = _Ifd(tags)
        self.ifds.append(ifd)
        where = f"IFD {len(self.ifds) - 1}"
        asn = [0.0] * 4
        cfa_pat, plen, seen = None, 16, set()
        for tag in tags:
            code = tag.code
            if code in _NOT_MODELLED_IFD_TAGS:
                raise NotModelled(f"tag {code} in {where}")
            if code in _MODELLED_IFD_TAGS and code in seen and code != 50706:
                raise NotModelled(f"tag {code} twice in {where}")
            seen.add(code)
            if code in (271, 272, 50708):
                self.names.append(str(tag.value))
            elif code == 254:
                ifd.newsubfiletype = int(_reals(tag)[0])
            elif code == 256:
                ifd.t_width = _ints(tag)[0]
            elif code == 257:
                ifd.t_height = _ints(tag)[0]
            elif code == 258:
                ifd.samples = ifd.samples or tag.count & 7
                ifd.bps = _ints(tag)[0]
            elif code == 259:
                ifd.comp = _ints(tag)[0]
            elif code == 262:
                ifd.phint = _ints(tag, short_only=True)[0]
            elif code in (273, 324):
                if tag.dtype != 4 or (code == 273 and not ifd.bps):
                    raise NotModelled(f"data offsets (tag {code}) LibRaw would probe as JPEG or misread")
                ifd.tiled = code == 324 and tag.count > 1
                ifd.offset = tag.valueoffset if ifd.tiled else _ints(tag)[0]
            elif code == 274:
                ifd.t_flip = int(_ORIENTATION_TO_FLIP[_ints(tag, short_only=True)[0] & 7])
            elif code == 277:
                ifd.samples = _ints(tag)[0] & 7
            elif code == 330:
                for sub in tag.subs:
                    self._parse_ifd(sub)
            elif code == 339:
                ifd.sample_format = _ints(tag)[0]
            elif code == 33421:
                if _ints(tag, short_only=True) != [2, 2]:
                    raise NotModelled(f"CFARepeatPatternDim {_flat(tag)}")
            elif code == 33422:
                cfa_pat = _flat(tag)
                plen = min(len(cfa_pat), 16)
                self.colors = len(set(cfa_pat[:plen]))
                ifd.t_filters = _filters(cfa_pat, plen)
            elif code == 50710:
                self.colors = min(tag.count, 4)
                if cfa_pat is None or _flat(tag) != [0, 1, 2]:
                    raise NotModelled(f"CFAPlaneColor {_flat(tag)}")
                ifd.t_filters = _filters(cfa_pat, plen)
            elif code == 50711:
                if _ints(tag, short_only=True)[0] == 2:
                    raise NotModelled("CFALayout 2 (Fuji SuperCCD)")
            elif code == 50713:
                ifd.black_set = True
                self.cb4, self.cb5 = _ints(tag, short_only=True)[:2]
                if self.cb4 * self.cb5 > 64:
                    raise NotModelled("BlackLevelRepeatDim too large")
                ifd.dng_cblack[4], ifd.dng_cblack[5] = self.cb4, self.cb5
            elif code == 50714:
                self._black_level(ifd, tag)
            elif code in (50715, 50716):           # BlackLevelDeltaH/V: their mean joins the black
                values = _reals(tag)[:65536]
                if values:
                    ifd.dng_black += _unsigned(sum(values) / tag.count + 0.5)
                    ifd.black_set = True
            elif code == 50717:
                ifd.white_set = True
                values = _ints(tag)
                ifd.whitelevel[0] = values[0]
                for i in range(1, min(len(values), 4) if ifd.samples > 1 else 1):
                    ifd.whitelevel[i] = values[i]
            elif code == 50718:
                q1, q2 = (_F32(v) for v in _reals(tag)[:2])
                if q1 > 0.00001 and q2 > 0.00001 and not 0.1 <= q1 / q2 <= 10:
                    raise NotModelled("DefaultScale out of LibRaw's pixel-aspect range")
            elif code == 50728:
                ifd.asn_set = ifd.asn_set or tag.count >= 3
                for c, v in enumerate(_reals(tag)[:4]):
                    asn[c], ifd.asn[c] = v, _F32(v)
            elif code == 50829:
                top, left, bottom, right = (_ints(tag) + [0] * 4)[:4]
                if tag.count != 4 or not (0 <= top < bottom and 0 <= left < right):
                    raise NotModelled(f"ActiveArea {_flat(tag)}")
                ifd.tm, ifd.lm, ifd.vheight, ifd.vwidth = top, left, bottom - top, right - left
            elif code == 33434:
                ifd.t_shutter = self.shutter = _F32(_reals(tag)[0])
            elif code == 33437:
                self.aperture = _F32(_reals(tag)[0])
            elif code == 34665:
                self._parse_exif(tag.subs)
        if asn[0]:                              # the end of parse_tiff_ifd
            self.cam_mul[3] = _F32(0)
            for c in range(self.colors):
                if abs(asn[c]) > 0.0001:
                    self.cam_mul[c] = _F32(1.0 / asn[c])

    def _black_level(self, ifd: _Ifd, tag: Tag) -> None:
        values, n, cb = [_F32(v) for v in _reals(tag)], tag.count, ifd.dng_cblack
        if ifd.samples > 1 and ifd.samples == n:                    # linear DNG, one per channel
            for i in range(min(n, 4)):
                cb[i] = _unsigned(values[i] + _F32(0.5))
            ifd.black_count, ifd.dng_black = n, 0
        elif ifd.samples > 1 and ifd.samples * self.cb4 * self.cb5 == n:   # linear, repeat pattern
            ifd.black_count = n
            for i in range(n):
                cb[6 + i] = _unsigned(values[i] + _F32(0.5))
        elif self.cb4 * self.cb5 < 2 and n == 1:
            ifd.dng_black = _unsigned(values[0])
        elif self.cb4 * self.cb5 <= n:                                # CFA repeat pattern
            for c in range(self.cb4 * self.cb5):
                cb[6 + c] = _unsigned(values[c])
            ifd.dng_black = 0
            for c in range(4):
                cb[c] = 0
        else:
            return
        ifd.black_set = True

    def _parse_exif(self, tags: list) -> None:
        for tag in tags:
            code = tag.code
            if code in _EXIF_NOT_MODELLED:
                raise NotModelled(f"EXIF {_EXIF_NOT_MODELLED[code]}")
            if code == 33434:
                self.shutter = self.ifds[-1].t_shutter = _F32(_reals(tag)[0])
            elif code == 33437:
                self.aperture = _F32(_reals(tag)[0])
            elif code == 34855:
                self.iso = _ints(tag, short_only=True)[0]
                if self.iso == 0xFFFF:
                    raise NotModelled("EXIF ISO 65535 (LibRaw looks elsewhere)")
            elif code == 37377:                # ShutterSpeedValue (APEX), when no ExposureTime yet
                expo = -_reals(tag)[0]
                if expo < 128 and self.shutter == 0:
                    self.shutter = self.ifds[-1].t_shutter = _powf64l(expo)
            elif code == 37378:                # ApertureValue (APEX), when no FNumber yet
                ape = _reals(tag)[0]
                if abs(ape) < 256.0 and not self.aperture:
                    self.aperture = _powf64l(ape / 2.0)

    # -- apply_tiff ------------------------------------------------------------------------------
    def _raw_ifd(self) -> _Ifd:
        haystack = " ".join(self.names).lower()
        for make in _QUIRKY_MAKES:
            if make in haystack:
                raise NotModelled(f"LibRaw special-cases DNGs of '{make}' cameras")
        if "nikon" in haystack and re.search(r"\bz|\bd6\b", haystack):
            raise NotModelled("LibRaw special-cases Nikon Z and D6 files")
        shutter = self.shutter                  # the shutter spreads to the IFDs before
        for ifd in reversed(self.ifds):
            shutter = ifd.t_shutter = ifd.t_shutter or shutter
        main = []
        for ifd in self.ifds:
            if not (1 <= ifd.t_width <= 65535 and 1 <= ifd.t_height <= 65535):
                continue
            raw_kind = ifd.phint in (_CFA, _LINEAR_RAW)
            if ifd.newsubfiletype == 0 and raw_kind:
                main.append(ifd)
            elif raw_kind or (ifd.newsubfiletype & 0xFFFF) == 4:
                raise NotModelled("an enhanced, preview or mask image other LibRaw options would pick")
        if len(main) != 1:
            raise NotModelled(f"{len(main)} main raw images")
        raw, ifd0 = main[0], self.ifds[0]
        if next(i for i in self.ifds if i.offset == raw.offset) is not raw:
            raise NotModelled("another IFD has the raw image's data offset")
        linear = raw.phint == _LINEAR_RAW
        if raw.samples != (3 if linear else 1) or not (linear or raw.t_filters):
            raise NotModelled(f"{raw.samples} samples per pixel, CFA pattern {raw.t_filters:#x}")
        for ifd in self.ifds:
            if ifd is raw:
                continue
            if ifd.t_filters or ifd.tm or ifd.vwidth:
                raise NotModelled("CFA tags or ActiveArea outside the raw IFD")
            if ifd is not ifd0 and (ifd.black_set or ifd.white_set or ifd.asn_set):
                raise NotModelled("levels in an IFD LibRaw does not take them from")
        self._check_data(raw)
        return raw

    def _check_data(self, raw: _Ifd) -> None:
        """A compression and sample format LibRaw loads as they are, and the data inside the file."""
        if raw.comp not in ((1, 7, 34892) if raw.phint == _LINEAR_RAW else (1, 7)):
            raise NotModelled(f"compression {raw.comp}")
        if raw.sample_format not in (0, 1) or raw.comp == 34892 and raw.bps != 8:
            raise NotModelled(f"sample format {raw.sample_format}, {raw.bps} bits")
        planes = 1 if raw.phint == _CFA else 4
        if self.file_size > 2 ** 31 - 1 or raw.t_width * raw.t_height * planes * 2 > 2 ** 30:
            raise NotModelled("larger than LibRaw's default limits")
        offsets = raw.ints(324) or raw.ints(273)
        counts = raw.ints(325) or raw.ints(279)
        if not offsets or len(offsets) != len(counts) or min(counts) <= 0:
            raise NotModelled("raw image data layout")
        if raw.comp == 1 and not raw.tiled:   # LibRaw reads the rows one after the other
            ends = [offsets[0] + (raw.t_width * raw.samples * raw.bps + 7) // 8 * raw.t_height]
        else:
            ends = [o + n for o, n in zip(offsets, counts)]
        if max(ends) > self.file_size:
            raise NotModelled("raw image data past the end of the file")

    # -- identify_process_dng_fields, identify, open_datastream, unpack, rawpy ----------------
    def view(self) -> LibRawView:
        raw = self._raw_ifd()
        ifd0, linear = self.ifds[0], raw.phint == _LINEAR_RAW
        flip = next((i.t_flip for i in self.ifds if i.t_flip), raw.t_flip)
        filters = 0 if linear else raw.t_filters
        width, height = raw.vwidth or raw.t_width, raw.vheight or raw.t_height
        tm, lm = raw.tm, raw.lm
        if tm + height > raw.t_height or lm + width > raw.t_width:
            raise NotModelled("ActiveArea outside the image")
        colors = 3 if linear else self.colors

        def source(flag):   # IFDLEVELINDEX: the raw IFD's value, else IFD0's
            return raw if getattr(raw, flag) else ifd0 if getattr(ifd0, flag) else None

        src = source("white_set")
        if src is not None and src.whitelevel[0]:
            white = list(src.whitelevel)
        elif raw.sample_format <= 2 and 0 < raw.bps < 32:
            white = [(1 << raw.bps) - 1] * 4
        else:
            raise NotModelled("no white level")
        cam_mul = list(self.cam_mul)
        src = source("asn_set")
        if src is not None and src.asn[0]:
            cam_mul[3] = _F32(0)
            for c in range(colors):
                if abs(src.asn[c]) > 0.0001:
                    cam_mul[c] = _F32(1) / src.asn[c]
        src = source("black_set")
        black = src.dng_black if src is not None else 0
        cb = _Cblack(src.dng_cblack if src is not None else {})
        if raw.comp == 34892:                   # lossy DNG: 8-bit JPEG data mapped to 16 bits
            maximum, white = 0xFFFF, [0xFFFF] * 4
        else:
            maximum = white[0]
        if 2 < raw.samples <= 4 and cb[4] * cb[5] * raw.samples == (src.black_count if src else 0):
            csum, ccount, i = [0] * 4, [0] * 4, 6     # per-channel repeat pattern: its averages
            for _ in range(cb[4] * cb[5]):
                for q in range(min(raw.samples, 4)):
                    csum[q], ccount[q], i = csum[q] + cb[i], ccount[q] + 1, i + 1
            for q in range(4):
                if ccount[q]:
                    cb[q] += csum[q] // ccount[q]
            cb[4] = cb[5] = 0

        if height < 22 or width < 22 or max(raw.t_width, raw.t_height) > 64000 or not 1 <= raw.bps <= 16:
            raise NotModelled("LibRaw refuses this image size or bit depth")
        ok = all(cam_mul[c] > 0.001 for c in range(colors))
        if ok:                                  # identify's white-balance range check
            cmin = min(float(cam_mul[c]) for c in range(colors))
            cnorm = [float(cam_mul[c]) / cmin for c in range(colors)]
            ok = not (min(cnorm) <= 0.01 or max(cnorm) > 100)
        if not ok:
            cam_mul[0] = _F32(0) if cam_mul[0] > 0 else cam_mul[0]
            cam_mul[3] = _F32(0)
        maximum = min(maximum or (1 << raw.bps) - 1, 0xFFFF)
        if filters:                             # 3 colours: the second green becomes colour 3
            filters |= ((filters >> 2 & 0x22222222) | (filters << 2 & 0x88888888)) & (filters << 1)
            filters &= _UINT_MAX

        if filters and (tm % 2 or lm % 2):      # open_datastream: Bayer margins made even
            dy, dx = tm % 2, lm % 2
            tm, height, lm, width = tm + dy, height - dy, lm + dx, width - dx
            filters = sum(_fc(filters, (c >> 1) + dy, (c & 1) + dx) << c * 2 for c in range(16))
        if not filters and 1 < colors < 5:      # open_datastream: linear DNG white balance fix
            delta = [_F32((white[c] - (black + cb[c])) & _UINT_MAX) for c in range(colors)]
            lo, hi = min(delta), max(delta)
            if lo > 1 and hi < lo * 20:
                for c in range(colors):
                    cam_mul[c] = _F32(cam_mul[c] / _F32(delta[c] / hi))
                maximum = _unsigned(_F32(cb[0]) + hi)
        if height < 22 or width < 22:
            raise NotModelled("LibRaw refuses this image size")

        common = min(cb[0], cb[1], cb[2], cb[3])   # unpack: the common part goes to black
        for c in range(4):
            cb[c] -= common
        return LibRawView(
            raw_pattern=None if linear else _raw_pattern(filters, tm, lm), color_desc=b"RGBG",
            black_level_per_channel=_rawpy_black(cb, black + common, filters),
            white_level=int(maximum), camera_whitebalance=[float(v) for v in cam_mul],
            rgb_xyz_matrix=np.zeros((4, 3), np.float32),
            sizes=SimpleNamespace(width=int(width), height=int(height), flip=int(flip)),
            other=SimpleNamespace(iso_speed=float(self.iso), shutter_speed=float(raw.t_shutter),
                                  aperture=float(self.aperture)),
            linear=linear)


def _filters(cfa_pat: list, plen: int) -> int:
    """LibRaw's 32-bit ``filters`` word of a DNG CFAPattern (guess_cfa_pc, CFAPlaneColor 0 1 2)."""
    if plen != 4 or sorted(cfa_pat[:4]) != [0, 1, 1, 2]:
        raise NotModelled(f"CFAPattern {cfa_pat} is not a 2x2 RGB Bayer pattern")
    filters = 0
    for i in range(15, -1, -1):
        filters = (filters << 2 | cfa_pat[i % plen]) & _UINT_MAX
    return filters


def _fc(filters: int, row: int, col: int) -> int:
    return filters >> ((((row << 1) & 14) | (col & 1)) << 1) & 3


def _raw_pattern(filters: int, tm: int, lm: int) -> np.ndarray:
    """rawpy's ``raw_pattern``: the colours of the raw image's 4x4 corner, 2x2 where it repeats."""
    pattern = np.array([[_fc(filters, y - tm, x - lm) for x in range(4)] for y in range(4)], np.uint8)
    tile = pattern[:2, :2]
    if all((tile == pattern[y:y + 2, x:x + 2]).all() for y in (0, 2) for x in (0, 2)):
        return tile.copy()
    return pattern


def _rawpy_black(cb: _Cblack, black: int, filters: int) -> list:
    """rawpy's ``black_level_per_channel`` (its copy of LibRaw's adjust_bl)."""
    if filters > 1000 and (cb[4] + 1) // 2 == 1 and (cb[5] + 1) // 2 == 1:
        clrs = [_fc(filters, c // 2, c % 2) for c in range(4)]
        greens = [c for c in range(4) if clrs[c] == 1]
        if len(greens) > 1:
            clrs[greens[-1]] = 3
        for c in range(4):
            cb[clrs[c]] += cb[6 + (c // 2) % cb[4] * cb[5] + (c % 2) % cb[5]]
        cb[4] = cb[5] = 0
    elif filters <= 1000 and cb[4] == 1 and cb[5] == 1:
        for c in range(4):
            cb[c] += cb[6]
        cb[4] = cb[5] = 0
    common = min(cb[0], cb[1], cb[2], cb[3])
    for c in range(4):
        cb[c] -= common
    black += common
    if cb[4] and cb[5]:
        black += min(cb[6 + c] for c in range(cb[4] * cb[5]))
    return [(cb[c] + black) & _UINT_MAX for c in range(4)]


__all__ = ["LIBRAW_VERSION", "LibRawView", "NotModelled", "Tag", "libraw_view", "read_ifds"]
