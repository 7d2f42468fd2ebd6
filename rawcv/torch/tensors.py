"""Tensors from rawcv data: packed Bayer planes, sensor values, and batches that keep their metadata
(:func:`rawcv.torch.convert.to_tensor` turns a capture into a network input).

Layouts
-------
``"packed"``
    A Bayer mosaic ``H x W`` as ``4 x H/2 x W/2``, channels always in the order
    :data:`PACKED_CHANNELS` = ``(R, G1, G2, B)`` whatever the CFA, where ``G1`` is the green pixel
    on the red row and ``G2`` the green pixel on the blue row. A network trained on packed
    tensors therefore sees the same channel meaning for every camera.
``"rgb"``
    Linear RGB ``3 x H x W`` (rawcv's ``linear`` pipeline: black level, as-shot white balance,
    bilinear demosaicing, colour matrix).

Batches follow the torch convention ``N x C x H x W``; :func:`pack` and :func:`unpack` also take
unbatched tensors. Everything here runs on any device and keeps autograd.

Examples
--------
>>> import numpy as np
>>> from rawcv.meta import CameraMeta, RawImage
>>> m = torch.arange(16.0).reshape(1, 1, 4, 4)
>>> pack(m, "GRBG").shape
torch.Size([1, 4, 2, 2])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..meta import CameraMeta, RawImage, cfa_channel_map, validate_cfa
from ..options import LAYOUTS

#: Channel order of the packed layout, the same for every Bayer pattern.
PACKED_CHANNELS = ("R", "G1", "G2", "B")


# --------------------------------------------------------------------------- CFA helpers


def packed_positions(cfa: str) -> tuple:
    """The ``(dy, dx)`` tile positions of R, G1, G2 and B (the packed order) in a Bayer pattern.

    ``G1`` is the green that shares its row with red, ``G2`` the green on the blue row.

    Examples
    --------
    >>> packed_positions("RGGB")
    ((0, 0), (0, 1), (1, 0), (1, 1))
    >>> packed_positions("GBRG")
    ((1, 0), (1, 1), (0, 0), (0, 1))
    """
    m = cfa_channel_map(cfa)
    pos = {}
    for dy in range(2):
        for dx in range(2):
            c = int(m[dy, dx])
            if c == 0:
                pos["R"] = (dy, dx)
            elif c == 2:
                pos["B"] = (dy, dx)
            else:
                pos["G1" if m[dy, 1 - dx] == 0 else "G2"] = (dy, dx)
    return tuple(pos[k] for k in PACKED_CHANNELS)


def _pack_index(cfa: str) -> list:
    """For each packed channel, its raster index ``2 * dy + dx`` in the 2x2 tile."""
    return [2 * dy + dx for dy, dx in packed_positions(cfa)]


def cfa_list(cfa, n: int) -> list:
    """``n`` validated pattern names from one name or a sequence of ``n`` names (one per sample).

    Examples
    --------
    >>> cfa_list("rggb", 2)
    ['RGGB', 'RGGB']
    """
    if cfa is None:
        raise ValueError("a Bayer mosaic needs its cfa= pattern")
    if isinstance(cfa, str):
        return [validate_cfa(cfa)] * n
    names = [validate_cfa(c) for c in cfa]
    if len(names) != n:
        raise ValueError(f"got {len(names)} CFA patterns for a batch of {n}")
    return names


def cfa_codes(cfa, n: int, device=None) -> torch.Tensor:
    """``n x 4`` int64 tensor of colour ids (0=R, 1=G, 2=B) per tile position, raster order.

    Examples
    --------
    >>> cfa_codes(["RGGB", "GBRG"], 2).tolist()
    [[0, 1, 1, 2], [1, 2, 0, 1]]
    """
    codes = np.stack([cfa_channel_map(c).ravel() for c in cfa_list(cfa, n)])
    return torch.as_tensor(codes, dtype=torch.int64, device=device)


def _batched(x: torch.Tensor, what: str):
    """``x`` as N x C x H x W and the function that restores the caller's rank."""
    if x.dim() == 4:
        return x, lambda y: y
    if x.dim() == 3:
        return x.unsqueeze(0), lambda y: y.squeeze(0)
    if x.dim() == 2:
        return x[None, None], lambda y: y[0, 0] if y.shape[1] == 1 else y[0]
    raise ValueError(f"{what} must be N x C x H x W, C x H x W or H x W, got shape {tuple(x.shape)}")


# --------------------------------------------------------------------------- pack / unpack


def pack(mosaic: torch.Tensor, cfa) -> torch.Tensor:
    """Bayer mosaic ``N x 1 x H x W`` -> packed ``N x 4 x H/2 x W/2`` in the order R, G1, G2, B.

    Parameters
    ----------
    mosaic : Tensor
        ``N x 1 x H x W``, ``1 x H x W`` or ``H x W``; H and W must be even (crop first).
    cfa : str or sequence of str
        The pattern, or one pattern per sample.

    Returns
    -------
    Tensor
        ``N x 4 x H/2 x W/2`` (``4 x H/2 x W/2`` for an unbatched input). Differentiable.

    Examples
    --------
    >>> m = torch.tensor([[1., 2.], [3., 4.]])
    >>> pack(m, "GRBG").flatten().tolist()   # R, G1, G2, B
    [2.0, 1.0, 4.0, 3.0]
    """
    unbatched = mosaic.dim() < 4
    x = mosaic.reshape((1, 1) + tuple(mosaic.shape[-2:])) if mosaic.dim() == 2 else mosaic
    x = x.unsqueeze(0) if x.dim() == 3 else x
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"mosaic must be N x 1 x H x W, 1 x H x W or H x W, got shape {tuple(mosaic.shape)}")
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"packing needs an even-sized mosaic, got {h} x {w} (crop it first)")
    names = cfa_list(cfa, x.shape[0])
    planes = F.pixel_unshuffle(x, 2)   # channel 2 * dy + dx
    if len(set(names)) == 1:
        out = planes[:, _pack_index(names[0])]
    else:
        idx = torch.tensor([_pack_index(c) for c in names], device=x.device)
        out = planes[torch.arange(x.shape[0], device=x.device)[:, None], idx]
    return out[0] if unbatched else out


def unpack(packed: torch.Tensor, cfa) -> torch.Tensor:
    """Inverse of :func:`pack`: ``N x 4 x h x w`` (R, G1, G2, B) -> mosaic ``N x 1 x 2h x 2w``.

    Examples
    --------
    >>> m = torch.arange(16.).reshape(1, 1, 4, 4)
    >>> bool(torch.equal(unpack(pack(m, "BGGR"), "BGGR"), m))
    True
    """
    unbatched = packed.dim() == 3
    x = packed.unsqueeze(0) if unbatched else packed
    if x.dim() != 4 or x.shape[1] != 4:
        raise ValueError(f"packed must be N x 4 x h x w or 4 x h x w, got shape {tuple(packed.shape)}")
    names = cfa_list(cfa, x.shape[0])
    inverse = lambda c: list(np.argsort(_pack_index(c)))   # noqa: E731  raster index -> packed channel
    if len(set(names)) == 1:
        raster = x[:, inverse(names[0])]
    else:
        idx = torch.tensor([inverse(c) for c in names], device=x.device)
        raster = x[torch.arange(x.shape[0], device=x.device)[:, None], idx]
    out = F.pixel_shuffle(raster, 2)
    return out[0] if unbatched else out


# --------------------------------------------------------------------------- metadata


def meta_dict(meta) -> dict:
    """A JSON-able dictionary of what the torch ISP and the models need from a capture.

    Parameters
    ----------
    meta : CameraMeta or RawImage

    Returns
    -------
    dict
        :meth:`CameraMeta.to_dict <rawcv.meta.CameraMeta.to_dict>` plus what the torch stages
        derive from it: ``black`` (4 values, CFA raster order), ``white``, ``gains`` (as-shot
        white balance normalised to G = 1) and ``matrix`` (camera RGB -> linear sRGB, 3x3, or
        None). :func:`meta_from_dict` turns it back into a :class:`~rawcv.meta.CameraMeta`.

    Examples
    --------
    >>> d = meta_dict(CameraMeta("RGGB", black_level=64, white_level=1023, as_shot_wb=(2.0, 1.0, 1.5)))
    >>> d["cfa"], d["black"], d["white"], d["gains"], d["matrix"]
    ('RGGB', [64.0, 64.0, 64.0, 64.0], 1023.0, [2.0, 1.0, 1.5], None)
    """
    from ..isp import camera_to_srgb_matrix, normalize_gains
    from ..isp.color import file_xyz_to_camera

    if isinstance(meta, RawImage):
        meta = meta.meta
    if not isinstance(meta, CameraMeta):
        raise TypeError(f"meta_dict needs a CameraMeta or RawImage, got {type(meta).__name__}")
    matrix = None
    xyz_to_cam = file_xyz_to_camera(meta)[0]     # interpolated for the white of a two-illuminant DNG
    if xyz_to_cam is not None:
        try:
            matrix = camera_to_srgb_matrix(xyz_to_cam).tolist()
        except ValueError:   # singular: the pipeline's colour-matrix stage cannot use it either
            matrix = None
    return {**meta.to_dict(),
            "black": [float(v) for v in meta.black_level],
            "white": float(meta.white_level),
            "gains": [float(v) for v in normalize_gains(meta.as_shot_wb)],
            "matrix": matrix}


def meta_from_dict(d: dict) -> CameraMeta:
    """Inverse of :func:`meta_dict` (a :class:`CameraMeta` is returned as is).

    Examples
    --------
    >>> m = CameraMeta("BGGR", black_level=(1, 2, 3, 4), white_level=99, as_shot_wb=(2, 1, 3))
    >>> meta_from_dict(meta_dict(m)) == m
    True
    """
    if isinstance(d, CameraMeta):
        return d
    return CameraMeta.from_dict(d)


@dataclass
class RawBatch:
    """A stacked tensor with each sample's metadata kept as lists (what :func:`collate_raw` returns).

    Attributes
    ----------
    data : Tensor
        ``N x C x H x W``.
    meta : list of dict
        One :func:`meta_dict` per sample.
    cfa, black, white, gains, matrix : list
        Per-sample values pulled out of ``meta`` (``matrix`` entries may be None).
    """

    data: torch.Tensor
    meta: list
    cfa: list = field(init=False)
    black: list = field(init=False)
    white: list = field(init=False)
    gains: list = field(init=False)
    matrix: list = field(init=False)

    def __post_init__(self):
        if len(self.meta) != self.data.shape[0]:
            raise ValueError(f"RawBatch: {len(self.meta)} metadata entries for {self.data.shape[0]} samples")
        self.cfa = [m.get("cfa") for m in self.meta]
        self.black = [list(m.get("black", [0.0] * 4)) for m in self.meta]
        self.white = [m.get("white", 65535.0) for m in self.meta]
        self.gains = [list(m.get("gains", [1.0, 1.0, 1.0])) for m in self.meta]
        self.matrix = [m.get("matrix") for m in self.meta]

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def to(self, *args, **kwargs) -> "RawBatch":
        """A batch with ``data.to(*args, **kwargs)`` and the same metadata."""
        return RawBatch(self.data.to(*args, **kwargs), self.meta)

    def black_tensor(self, dtype=torch.float64) -> torch.Tensor:
        """``N x 4`` black levels on the data's device."""
        return torch.tensor(self.black, dtype=dtype, device=self.data.device)

    def white_tensor(self, dtype=torch.float64) -> torch.Tensor:
        """``N`` white levels on the data's device."""
        return torch.tensor(self.white, dtype=dtype, device=self.data.device)

    def gains_tensor(self, dtype=torch.float32) -> torch.Tensor:
        """``N x 3`` as-shot gains on the data's device."""
        return torch.tensor(self.gains, dtype=dtype, device=self.data.device)

    def camera_metas(self) -> list:
        """The per-sample metadata as :class:`~rawcv.meta.CameraMeta` objects."""
        return [meta_from_dict(m) for m in self.meta]


def collate_raw(items: Sequence) -> RawBatch:
    """Collate ``(tensor, meta)`` pairs into a :class:`RawBatch` (a ``DataLoader`` ``collate_fn``).

    Parameters
    ----------
    items : sequence of (Tensor, dict or CameraMeta)
        Tensors of one shape (``C x H x W``); metadata as :func:`meta_dict` dictionaries or
        ``CameraMeta`` objects (converted with :func:`meta_dict`).

    Examples
    --------
    >>> a = (torch.zeros(4, 2, 2), meta_dict(CameraMeta("RGGB", white_level=100)))
    >>> b = (torch.ones(4, 2, 2), meta_dict(CameraMeta("BGGR", white_level=200)))
    >>> batch = collate_raw([a, b])
    >>> batch.data.shape, batch.cfa, batch.white
    (torch.Size([2, 4, 2, 2]), ['RGGB', 'BGGR'], [100.0, 200.0])
    """
    items = list(items)
    if not items:
        raise ValueError("collate_raw needs at least one item")
    tensors, metas = [], []
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError("collate_raw takes (tensor, meta) pairs")
        t, m = item
        tensors.append(torch.as_tensor(t))
        metas.append(meta_dict(m) if isinstance(m, (CameraMeta, RawImage)) else dict(m))
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"collate_raw needs tensors of one shape, got {sorted(shapes)}")
    return RawBatch(torch.stack(tensors), metas)


# --------------------------------------------------------------------------- sensor values


def sensor_tensor(raw: RawImage, *, crop_even: bool = True) -> torch.Tensor:
    """The sensor values of a :class:`RawImage` as float32 ``1 x H x W`` (Bayer) or ``3 x H x W``.

    Conversion is exact (uint16 fits float32); nothing is normalised. ``crop_even`` drops a last
    odd row / column (the origin, and so the CFA, is kept).

    Examples
    --------
    >>> raw = RawImage(np.full((5, 6), 7, np.uint16), CameraMeta("RGGB"))
    >>> sensor_tensor(raw).shape, sensor_tensor(raw, crop_even=False).shape
    (torch.Size([1, 4, 6]), torch.Size([1, 5, 6]))
    """
    data = np.asarray(raw.data)
    if crop_even:
        data = data[: data.shape[0] & ~1, : data.shape[1] & ~1]
    t = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    return t.permute(2, 0, 1).contiguous() if t.dim() == 3 else t.unsqueeze(0)


__all__ = ["PACKED_CHANNELS", "LAYOUTS", "packed_positions", "cfa_list", "cfa_codes", "pack", "unpack",
           "meta_dict", "meta_from_dict", "RawBatch", "collate_raw", "sensor_tensor"]
