"""Heteroscedastic raw noise: the model of Brooks et al. (CVPR 2019), sampling and estimation.

"Unprocessing Images for Learned Raw Denoising" models the noise of a normalised linear raw
value ``x`` in [0, 1] as Gaussian with variance ``lambda_shot * x + lambda_read`` and draws
camera-like parameter pairs with ``log(lambda_shot) ~ U(log 1e-4, log 1.2e-2)`` and
``log(lambda_read) = 2.18 * log(lambda_shot) + 1.20 + N(0, 0.26^2)``.

:func:`estimate` goes the other way: it fits ``lambda_shot`` and ``lambda_read`` to a single
noisy Bayer mosaic.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import numpy as np

# Log-linear relation between read and shot noise fitted by Brooks et al. on real cameras.
READ_SLOPE = 2.18
READ_INTERCEPT = 1.20
READ_LOG_SIGMA = 0.26
DEFAULT_SHOT_RANGE = (1e-4, 1.2e-2)


def noise_variance(x, lambda_shot, lambda_read, *, dtype=np.float64) -> np.ndarray:
    """The model variance ``lambda_shot * max(x, 0) + lambda_read`` of values ``x``, in ``dtype``.

    ``lambda_shot`` and ``lambda_read`` are numbers, or one value per entry of ``x``'s first axis
    (the channels of a packed ``4 x h x w`` array). The torch twin is
    :func:`rawcv.torch.augment.raw_noise_variance`.

    Examples
    --------
    >>> v = noise_variance(np.array([[[-0.1, 0.5]]] * 4, np.float32), 0.01, 1e-4, dtype=np.float32)
    >>> [round(float(a), 6) for a in v[0, 0]]
    [0.0001, 0.0051]
    """
    x = np.asarray(x, dtype=dtype)
    shot, read = np.asarray(lambda_shot, dtype=dtype), np.asarray(lambda_read, dtype=dtype)
    if shot.ndim:
        shot = shot.reshape((-1,) + (1,) * (x.ndim - 1))
    if read.ndim:
        read = read.reshape((-1,) + (1,) * (x.ndim - 1))
    return (shot * np.maximum(x, 0) + read).astype(dtype)


@dataclass(frozen=True)
class NoiseParams:
    """Parameters of the noise model ``var(x) = lambda_shot * x + lambda_read``.

    Parameters
    ----------
    lambda_shot : float
        Signal-dependent (shot, Poisson-like) variance gain on normalised values.
    lambda_read : float
        Signal-independent (read) variance.
    row_sigma : float
        Standard deviation of an optional per-row offset (banding); 0 disables it.
    """

    lambda_shot: float
    lambda_read: float
    row_sigma: float = 0.0

    def __post_init__(self):
        for name in ("lambda_shot", "lambda_read", "row_sigma"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite non-negative number, got {v!r}")
            object.__setattr__(self, name, v)

    def variance(self, x) -> np.ndarray:
        """Model variance at clean value(s) ``x`` (negative values count as 0)."""
        return noise_variance(x, self.lambda_shot, self.lambda_read)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NoiseParams":
        """Inverse of :meth:`to_dict`; unknown keys are an error so typos do not pass silently."""
        known = {f.name for f in dataclasses.fields(cls)}
        extra = set(d) - known
        if extra:
            raise ValueError(f"unknown noise parameter(s): {', '.join(sorted(extra))}")
        return cls(**{k: float(v) for k, v in d.items()})


def mean_read_noise(lambda_shot: float) -> float:
    """The read-noise variance that Brooks et al.'s relation pairs with ``lambda_shot`` (no jitter).

    Examples
    --------
    >>> round(mean_read_noise(0.012) * 1e4, 2)
    2.16
    """
    if lambda_shot <= 0:
        return 0.0
    return float(np.exp(READ_SLOPE * np.log(lambda_shot) + READ_INTERCEPT))


def sample_noise_params(rng, *, shot_range=DEFAULT_SHOT_RANGE) -> NoiseParams:
    """Draw camera-like noise parameters (Brooks et al. 2019).

    Parameters
    ----------
    rng : numpy.random.Generator or int
    shot_range : (float, float)
        Bounds of ``lambda_shot``; it is drawn log-uniformly between them.

    Returns
    -------
    NoiseParams

    Examples
    --------
    >>> import numpy as np
    >>> p = sample_noise_params(np.random.default_rng(0))
    >>> 1e-4 <= p.lambda_shot <= 1.2e-2
    True
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    lo, hi = (float(v) for v in shot_range)
    if not 0 < lo <= hi:
        raise ValueError(f"shot_range must satisfy 0 < lo <= hi, got {shot_range!r}")
    log_shot = rng.uniform(np.log(lo), np.log(hi))
    log_read = READ_SLOPE * log_shot + READ_INTERCEPT + rng.normal(0.0, READ_LOG_SIGMA)
    return NoiseParams(float(np.exp(log_shot)), float(np.exp(log_read)))


def noise_params_from_iso(iso: float, *, base_iso: float = 100.0, base_shot: float = 1e-4) -> NoiseParams:
    """An ISO-like knob: ``lambda_shot`` grows linearly with ``iso`` (as analogue gain does).

    Examples
    --------
    >>> round(noise_params_from_iso(1200).lambda_shot, 6)
    0.0012
    """
    if iso < 0 or base_iso <= 0:
        raise ValueError(f"iso must be >= 0 and base_iso > 0, got iso={iso!r}, base_iso={base_iso!r}")
    shot = base_shot * float(iso) / float(base_iso)
    return NoiseParams(shot, mean_read_noise(shot))


NOISE_PRESETS = {
    "low": NoiseParams(1e-3, mean_read_noise(1e-3)),
    "medium": NoiseParams(4e-3, mean_read_noise(4e-3)),
    "high": NoiseParams(1.2e-2, mean_read_noise(1.2e-2)),
}


def parse_noise(spec) -> Union[NoiseParams, Callable[[np.random.Generator], NoiseParams]]:
    """Turn a user noise specification into parameters or a parameter sampler.

    Parameters
    ----------
    spec : str, float, tuple or NoiseParams
        ``"low"`` / ``"medium"`` / ``"high"`` (presets), ``"none"`` (no noise), a number
        (``lambda_shot``, read noise from the mean relation), ``"A:B"`` or ``(A, B)``
        (``lambda_shot`` log-uniform in [A, B] with Brooks et al.'s random read noise), or
        ``"random"`` (the full default range).

    Returns
    -------
    NoiseParams or callable
        Fixed parameters, or a function ``rng -> NoiseParams`` for ranges.

    Examples
    --------
    >>> parse_noise("high").lambda_shot
    0.012
    >>> import numpy as np
    >>> sampler = parse_noise("1e-3:4e-3")
    >>> 1e-3 <= sampler(np.random.default_rng(0)).lambda_shot <= 4e-3
    True
    """
    if isinstance(spec, NoiseParams):
        return spec
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        return _range_sampler(float(spec[0]), float(spec[1]))
    if isinstance(spec, (int, float, np.floating, np.integer)) and not isinstance(spec, bool):
        return _fixed(float(spec), spec)
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s in NOISE_PRESETS:
            return NOISE_PRESETS[s]
        if s in ("none", "off", "0"):
            return NoiseParams(0.0, 0.0)
        if s == "random":
            return _range_sampler(*DEFAULT_SHOT_RANGE)
        if ":" in s:
            parts = s.split(":")
            if len(parts) == 2:
                try:
                    return _range_sampler(float(parts[0]), float(parts[1]))
                except ValueError:
                    pass
        else:
            try:
                return _fixed(float(s), spec)
            except ValueError:
                pass
    raise ValueError(
        f"bad noise specification {spec!r}: expected one of {', '.join(NOISE_PRESETS)}, 'none', "
        "'random', a lambda_shot value such as 0.004, or a range such as 1e-3:1.2e-2"
    )


def _fixed(shot: float, spec) -> NoiseParams:
    if not math.isfinite(shot) or shot < 0:
        raise ValueError(f"bad noise specification {spec!r}: lambda_shot must be >= 0")
    return NoiseParams(shot, mean_read_noise(shot))


def _range_sampler(lo: float, hi: float) -> Callable[[np.random.Generator], NoiseParams]:
    if not 0 < lo <= hi:
        raise ValueError(f"bad noise range {lo:g}:{hi:g}: expected 0 < A <= B")

    def sampler(rng) -> NoiseParams:
        return sample_noise_params(rng, shot_range=(lo, hi))

    sampler.shot_range = (lo, hi)
    return sampler


def add_noise(clean, params, rng, *, row_noise: bool = False, row_axis: int = 0) -> np.ndarray:
    """Add model noise to a clean normalised linear raw image.

    Parameters
    ----------
    clean : array_like
        Normalised raw values (any shape; typically an H x W mosaic).
    params : NoiseParams or callable
        The parameters, or a sampler ``rng -> NoiseParams`` (see :func:`parse_noise`).
    rng : numpy.random.Generator or int
    row_noise : bool
        Also add one Gaussian offset per row with standard deviation ``params.row_sigma``.
    row_axis : int
        The axis that indexes rows (0 for H x W and H x W x C arrays).

    Returns
    -------
    ndarray, float32
        ``clean + sqrt(lambda_shot * max(clean, 0) + lambda_read) * N(0, 1)``; not clipped.

    Examples
    --------
    >>> import numpy as np
    >>> y = add_noise(np.full((4, 4), 0.5), NoiseParams(1e-3, 1e-5), np.random.default_rng(0))
    >>> y.dtype.name, y.shape
    ('float32', (4, 4))
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if callable(params) and not isinstance(params, NoiseParams):
        params = params(rng)
    x = np.asarray(clean, dtype=np.float32)
    var = np.float32(params.lambda_shot) * np.maximum(x, 0) + np.float32(params.lambda_read)
    noisy = x + np.sqrt(var) * rng.standard_normal(x.shape, dtype=np.float32)
    if row_noise and params.row_sigma > 0:
        shape = [1] * x.ndim
        shape[row_axis] = x.shape[row_axis]
        noisy += (params.row_sigma * rng.standard_normal(x.shape[row_axis])).astype(np.float32).reshape(shape)
    return noisy.astype(np.float32, copy=False)


def noise_variance_map(noisy, params: NoiseParams) -> np.ndarray:
    """Per-pixel noise variance estimated from the noisy values themselves.

    Examples
    --------
    >>> import numpy as np
    >>> v = noise_variance_map(np.array([-0.1, 0.5]), NoiseParams(0.01, 1e-4))
    >>> [round(float(a), 6) for a in v]
    [0.0001, 0.0051]
    """
    x = np.asarray(noisy, dtype=np.float32)
    return (np.float32(params.lambda_shot) * np.maximum(x, 0) + np.float32(params.lambda_read)).astype(np.float32)


# --------------------------------------------------------------------------- estimation


@dataclass
class ChannelNoise:
    """Noise fit of one CFA colour channel (or one CFA position when the CFA is unknown)."""

    name: str
    lambda_shot: float
    lambda_read: float
    n_samples: int


@dataclass
class NoiseEstimate:
    """Result of :func:`estimate`.

    Attributes
    ----------
    lambda_shot, lambda_read : float
        Fit pooled over all CFA positions.
    per_channel : list of ChannelNoise
        Fits per colour channel (``R``, ``G``, ``B``) when the CFA is known, otherwise per
        2x2 position (``"p00"``, ``"p01"``, ``"p10"``, ``"p11"``).
    n_samples : int
        Number of flat blocks used by the pooled fit.
    """

    lambda_shot: float
    lambda_read: float
    per_channel: list = field(default_factory=list)
    n_samples: int = 0

    def to_params(self) -> NoiseParams:
        return NoiseParams(self.lambda_shot, self.lambda_read)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Noise-only blocks have v2 / v1 below 2.5 in 99.9 % of cases.
_MAX_RATIO = 2.5
_BLOCK = 8  # block side in a CFA plane: small enough to be flat, large enough to average


def _normalised_mosaic(raw, cfa, black, white):
    """Return (float64 mosaic in [0, 1] units, clipped-pixel mask, cfa)."""
    if hasattr(raw, "data") and hasattr(raw, "meta"):
        meta = raw.meta
        if getattr(meta, "linear", False):
            raise ValueError("noise estimation needs a Bayer mosaic, got linear (demosaiced) raw data")
        data = np.asarray(raw.data)
        cfa = cfa if cfa is not None else meta.cfa
        black = meta.black_level if black is None else black
        white = meta.white_level if white is None else white
    else:
        data = np.asarray(raw)
    if data.ndim != 2:
        raise ValueError(f"noise estimation needs a 2-D mosaic, got shape {data.shape}")
    if data.shape[0] < 4 * _BLOCK or data.shape[1] < 4 * _BLOCK:
        raise ValueError(f"mosaic {data.shape[1]}x{data.shape[0]} is too small to estimate noise")
    if np.issubdtype(data.dtype, np.integer) and black is None and white is None:
        black, white = 0.0, float(np.iinfo(data.dtype).max)
    x = data.astype(np.float64)
    clipped = np.zeros(x.shape, dtype=bool)
    if black is not None or white is not None:
        b = np.broadcast_to(np.asarray(0.0 if black is None else black, dtype=np.float64).reshape(-1), (4,))
        b = b.reshape(2, 2)
        wl = float(np.iinfo(data.dtype).max if white is None and np.issubdtype(data.dtype, np.integer)
                   else (1.0 if white is None else white))
        hh, ww = x.shape
        bmap = np.tile(b, ((hh + 1) // 2, (ww + 1) // 2))[:hh, :ww]
        clipped |= x >= wl
        x = (x - bmap) / (wl - bmap)
    if np.issubdtype(data.dtype, np.integer):
        clipped |= data <= 0  # the ADC floor, whatever the black level
    # Values that pile up at an extreme were clipped (black clipping, saturation, or an
    # explicit clip of float data); their variance is not the model's. A Gaussian tail
    # thins out towards the extreme, while a clip makes the extreme value the commonest.
    lo, hi = x.min(), x.max()
    if lo < hi:
        for extreme, nearest in ((lo, x[x > lo].min()), (hi, x[x < hi].max())):
            n_at = int(np.count_nonzero(x == extreme))
            if n_at >= 4 and n_at > 2 * int(np.count_nonzero(x == nearest)):
                clipped |= x == extreme
    clipped |= x >= 1.0
    return x, clipped, cfa


def _block_stats(plane: np.ndarray, bad: np.ndarray):
    """Per-block mean, noise variance and a structure ratio of one CFA plane.

    The mixed 2x2 difference ``(a - b - c + d) / 2`` cancels constants, planes and any
    purely horizontal or vertical pattern, and for independent noise its expected square
    is exactly the mean variance of the four pixels, i.e. the model
    ``lambda_shot * mean + lambda_read``. Smooth structure still leaks in, growing with
    the square of the lag, so the same difference at lag 2 sees it 16 times more strongly
    (in power) while the noise term is unchanged: ``(16 v1 - v2) / 15`` cancels the leak to
    leading order (Richardson extrapolation) and ``v2 / v1`` flags blocks with structure
    too strong to cancel (edges).
    """
    h, w = plane.shape
    nb_y, nb_x = h // _BLOCK, w // _BLOCK
    p = plane[: nb_y * _BLOCK, : nb_x * _BLOCK]
    bad = bad[: nb_y * _BLOCK, : nb_x * _BLOCK]

    def blocks(a):
        return a.reshape(nb_y, _BLOCK, nb_x, _BLOCK).swapaxes(1, 2)

    pb = blocks(p)
    mean = pb.mean(axis=(2, 3))
    d1 = 0.5 * (pb[:, :, :-1, :-1] - pb[:, :, :-1, 1:] - pb[:, :, 1:, :-1] + pb[:, :, 1:, 1:])
    d2 = 0.5 * (pb[:, :, :-2, :-2] - pb[:, :, :-2, 2:] - pb[:, :, 2:, :-2] + pb[:, :, 2:, 2:])
    v1 = np.mean(d1 * d1, axis=(2, 3))
    v2 = np.mean(d2 * d2, axis=(2, 3))
    var = (16.0 * v1 - v2) / 15.0
    ratio = v2 / np.maximum(v1, 1e-30)
    # Flatness: the 2x2-pixel means form a 4x4 grid whose scatter about a fitted plane is
    # pure noise (variance = model / 4) in flat blocks. It uses the low-pass part of the
    # block, nearly independent of the high-pass variance estimate, so selecting on it does
    # not bias that estimate. Blocks that straddle an edge fail it; they must go, because
    # their noise is a mix of two levels and no longer has the single-level distribution
    # that the truncated fit assumes.
    k = _BLOCK // 2
    sub = pb.reshape(nb_y, nb_x, k, 2, k, 2).mean(axis=(3, 5)).reshape(nb_y, nb_x, k * k)
    resid = sub @ _PLANE_RESIDUAL_MAKER.T
    sub_var = np.sum(resid * resid, axis=2) / (k * k - 3)
    ok = ~blocks(bad).any(axis=(2, 3))
    return mean.ravel(), var.ravel(), ratio.ravel(), sub_var.ravel(), ok.ravel()


def _plane_residual_maker(k: int) -> np.ndarray:
    """Matrix that maps a flattened k x k grid to its residual from the least-squares plane."""
    yy, xx = np.meshgrid(np.arange(k, dtype=np.float64), np.arange(k, dtype=np.float64), indexing="ij")
    A = np.stack([np.ones(k * k), yy.ravel(), xx.ravel()], axis=1)
    return np.eye(k * k) - A @ np.linalg.pinv(A)


_PLANE_RESIDUAL_MAKER = _plane_residual_maker(_BLOCK // 2)
# Flat blocks have sub_var / (model / 4) ~ chi2(13) / 13, above 3 with probability 2e-4.
_MAX_FLAT = 3.0

# For Gaussian noise, 8x8 blocks and the estimator of _block_stats (after the ratio cut),
# a block's variance estimate divided by its expectation has a fixed distribution (mean 1,
# standard deviation 0.30). Blocks above _TRUNC times the model are treated as structure
# and dropped; _TRUNC_MEAN is the mean of that ratio below the cut, simulated once with
# 10^6 blocks (tests/test_noise_model.py checks that flat-field estimates are unbiased).
_TRUNC = 1.5
_TRUNC_MEAN = 0.9535
_MIN_BLOCKS = 24


def _fit(mean, var, ratio, sub_var):
    """Fit ``var = a * mean + b`` to block statistics; returns (a, b, blocks used).

    Structure (edges, clutter, fine texture) only ever adds variance and affects a varying
    fraction of blocks, so plain least squares is biased upwards and even medians shift.
    Blocks are sorted by mean into bins; in each bin only flat blocks below ``_TRUNC``
    times the current model are kept, and their mean is matched to the mean that pure
    noise has under the same truncation, which gives the bin's noise level. A weighted
    line through the bins updates the model; the two steps are iterated to a fixed point
    (the cuts depend on the model, so a few iterations are needed).
    """
    keep = np.isfinite(var) & np.isfinite(mean) & (ratio < _MAX_RATIO)
    m, v, sv = mean[keep], var[keep], sub_var[keep]
    n = int(m.size)
    if n < _MIN_BLOCKS:
        return float("nan"), float("nan"), n
    n_bins = int(np.clip(n // 96, 2, 48))
    bins = np.array_split(np.argsort(m, kind="stable"), n_bins)
    m_bin = np.array([m[i].mean() for i in bins])
    n_bin = np.array([i.size for i in bins], dtype=np.float64)

    # Start from bin medians (biased up by structure; the iterations remove that).
    y0 = np.array([np.median(v[i]) for i in bins]) / 0.9639
    a, b = _weighted_line(m_bin, y0, n_bin / np.maximum(y0, 1e-30) ** 2)
    used = n
    for _ in range(60):
        model_bin = np.maximum(a * m_bin + b, 1e-30)
        model = np.maximum(a * m + b, 1e-30)
        rel = v / model
        rel[sv > _MAX_FLAT * model / 4] = np.inf  # not flat: excluded below
        scale = np.empty(n_bins)
        cnt = np.empty(n_bins)
        for k, i in enumerate(bins):
            r = rel[i]
            r = r[r < _TRUNC]
            cnt[k] = r.size
            scale[k] = r.mean() / _TRUNC_MEAN if r.size >= 4 else np.nan
        good = np.isfinite(scale)
        if good.sum() < 2:
            break
        y = scale[good] * model_bin[good]
        a_new, b_new = _weighted_line(m_bin[good], y, cnt[good] / model_bin[good] ** 2)
        used = int(cnt[good].sum())
        done = abs(a_new - a) <= 1e-6 * abs(a) + 1e-18 and abs(b_new - b) <= 1e-6 * abs(b) + 1e-18
        a, b = a_new, b_new
        if done:
            break
    return a, b, used


def _weighted_line(x, y, w):
    """Weighted least-squares line ``y = a x + b`` with ``a, b >= 0``."""
    sw = np.sqrt(w)
    A = np.stack([x, np.ones_like(x)], axis=1) * sw[:, None]
    (a, b), *_ = np.linalg.lstsq(A, y * sw, rcond=None)
    # Negative variance components are not physical: refit with that term removed.
    if b < 0:
        b = 0.0
        a = float(np.sum(w * x * y) / max(np.sum(w * x * x), 1e-300))
    if a < 0:
        a = 0.0
        b = float(np.sum(w * y) / np.sum(w))
    return float(a), float(b)


def estimate(raw_or_mosaic, *, cfa: Optional[str] = None, black=None, white=None) -> NoiseEstimate:
    """Estimate ``lambda_shot`` and ``lambda_read`` from one noisy Bayer mosaic.

    The mosaic is split into its four CFA planes; each plane is cut into 8x8 blocks whose
    mean and noise variance (from mixed 2x2 differences, blind to smooth structure) give
    one (mean, variance) sample. Blocks touching clipped pixels, lying within a few noise
    sigmas of a clip level, or showing structure are dropped, and
    ``variance = lambda_shot * mean + lambda_read`` is fitted by an iterated, truncated
    (structure-rejecting) weighted fit over bins of block means, per channel and pooled.

    ``lambda_read`` is only identifiable from dark regions, where it is a sizeable part of
    the variance: roughly, the frame needs flat areas with mean below a few times
    ``lambda_read / lambda_shot``. Float data clipped at 0 loses exactly those regions.

    Parameters
    ----------
    raw_or_mosaic : ndarray or RawImage
        A 2-D float mosaic already normalised to [0, 1] (black removed), or an object with
        ``.data`` (integer mosaic) and ``.meta`` (``black_level``, ``white_level``,
        ``cfa``) such as :class:`rawcv.meta.RawImage`.
    cfa : str, optional
        Bayer pattern, used to name and group the per-channel fits.
    black, white : optional
        Override the black level(s) (scalar or 4 values in raster order) and white level;
        when given for an array input, it is normalised with them.

    Returns
    -------
    NoiseEstimate

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clean = np.repeat(np.linspace(0.05, 0.9, 256), 256).reshape(256, 256)
    >>> est = estimate(add_noise(clean, NoiseParams(4e-3, 2e-5), rng))
    >>> abs(est.lambda_shot / 4e-3 - 1) < 0.1
    True
    """
    x, clipped, cfa = _normalised_mosaic(raw_or_mosaic, cfa, black, white)
    floor = _clip_floor(x, clipped)
    per_pos = []
    for dy in range(2):
        for dx in range(2):
            per_pos.append(_block_stats(x[dy::2, dx::2], clipped[dy::2, dx::2]))

    def fit(groups):
        m = np.concatenate([per_pos[g][0] for g in groups])
        v = np.concatenate([per_pos[g][1] for g in groups])
        r = np.concatenate([per_pos[g][2] for g in groups])
        sv = np.concatenate([per_pos[g][3] for g in groups])
        ok = np.concatenate([per_pos[g][4] for g in groups])
        m, v, r, sv = m[ok], v[ok], r[ok], sv[ok]
        a, b, n = _fit(m, v, r, sv)
        if np.isfinite(a):
            # Blocks within a few noise sigmas of a clip level lost part of their noise
            # distribution to the clip (selection bias); drop them and refit.
            sd = np.sqrt(np.maximum(a * np.maximum(m, 0) + b, 0))
            far = (m - 4 * sd > floor) & (m + 4 * sd < 1.0)
            if _MIN_BLOCKS <= far.sum() < m.size:
                a, b, n = _fit(m[far], v[far], r[far], sv[far])
        return a, b, n

    a, b, n = fit(range(4))
    per_channel = []
    if cfa is not None:
        from rawcv.meta import cfa_channel_map

        cmap = cfa_channel_map(cfa).ravel()
        for ch, name in enumerate("RGB"):
            ca, cb, cn = fit([i for i in range(4) if cmap[i] == ch])
            per_channel.append(ChannelNoise(name, ca, cb, cn))
    else:
        for i in range(4):
            ca, cb, cn = fit([i])
            per_channel.append(ChannelNoise(f"p{i // 2}{i % 2}", ca, cb, cn))
    return NoiseEstimate(lambda_shot=a, lambda_read=b, per_channel=per_channel, n_samples=n)


def _clip_floor(x, clipped):
    """The lower clip level if the data were clipped there, else -inf."""
    if clipped.any():
        vals = x[clipped]
        low = vals[vals < 0.5]
        if low.size:
            return float(low.max())
    return -np.inf


__all__ = [
    "noise_variance",
    "NoiseParams", "NoiseEstimate", "ChannelNoise", "NOISE_PRESETS", "DEFAULT_SHOT_RANGE",
    "mean_read_noise", "sample_noise_params", "noise_params_from_iso", "parse_noise",
    "add_noise", "noise_variance_map", "estimate",
]
