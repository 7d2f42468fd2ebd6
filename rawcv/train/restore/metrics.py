"""Image-quality scores of a restored image against its ground truth: PSNR, SSIM and how much
of the truth's fine detail it has (NumPy, on ``H x W x 3`` arrays)."""

from __future__ import annotations

import numpy as np


def psnr(a, b, data_range: float = 1.0) -> float:
    """PSNR of two arrays clipped to ``[0, data_range]`` (skimage.metrics)."""
    from skimage.metrics import peak_signal_noise_ratio

    a = np.clip(np.asarray(a, np.float64), 0, data_range)
    b = np.clip(np.asarray(b, np.float64), 0, data_range)
    return float(peak_signal_noise_ratio(a, b, data_range=data_range))


def ssim(a, b, data_range: float = 1.0) -> float:
    """SSIM of two ``H x W x 3`` arrays clipped to ``[0, data_range]`` (skimage.metrics, per channel)."""
    from skimage.metrics import structural_similarity

    a = np.clip(np.asarray(a, np.float64), 0, data_range)
    b = np.clip(np.asarray(b, np.float64), 0, data_range)
    return float(structural_similarity(a, b, data_range=data_range, channel_axis=-1))


def detail_band(image, *, sigma: float = 1.0) -> np.ndarray:
    """The finest detail of an ``H x W x 3`` image in ``[0, 1]``: its channel mean minus a Gaussian blur of it.

    The band of :func:`high_frequency_detail`; ``0.5 + gain * band`` shows it as an image.
    """
    from scipy.ndimage import gaussian_filter

    luma = np.clip(np.asarray(image, np.float64), 0, 1).mean(axis=-1)
    return luma - gaussian_filter(luma, sigma, mode="reflect")


def high_frequency_detail(image, reference, *, sigma: float = 1.0) -> dict:
    """How much of ``reference``'s fine detail ``image`` has: a sharpness score beside PSNR / SSIM.

    Both ``H x W x 3`` arrays are clipped to ``[0, 1]`` and reduced to the mean of their channels;
    the detail band is what a Gaussian blur of ``sigma`` pixels removes, ``h = x - G * x``
    (:func:`detail_band`).

    Returns
    -------
    dict with ``detail_gain`` = <h(image), h(reference)> / <h(reference), h(reference)>,
    ``detail_energy`` = <h(image), h(image)> / <h(reference), h(reference)> and
    ``detail_invented`` = |h(image) - detail_gain * h(reference)|^2 / <h(reference), h(reference)>.
        A blurred image has a gain below 1 (the gain of ``a * reference + c`` is ``a``); noise
        independent of the reference leaves the gain unchanged but raises the energy, and so does
        invented texture (what a GAN adds): an energy near 1 with a gain below 1 is texture that
        looks sharp but is not the reference's. ``detail_invented`` is that part alone, the
        energy of the detail band orthogonal to the reference's (``energy = gain**2 + invented``):
        0 for any ``a * reference + c``, up for noise, artefacts and invented texture, so
        "sharper" (gain up) and "grainier" (invented up) can be told apart.

    Examples
    --------
    >>> ref = np.random.default_rng(0).random((32, 32, 3))
    >>> d = high_frequency_detail(0.5 * ref + 0.25, ref)
    >>> round(d["detail_gain"], 6), round(d["detail_energy"], 6), round(d["detail_invented"], 6)
    (0.5, 0.25, 0.0)
    """
    shapes = np.shape(image), np.shape(reference)
    if shapes[0] != shapes[1] or len(shapes[0]) != 3 or shapes[0][-1] != 3:
        raise ValueError(f"image and reference must be H x W x 3 of one shape, got {shapes[0]} and {shapes[1]}")
    h_img, h_ref = detail_band(image, sigma=sigma), detail_band(reference, sigma=sigma)
    ref_energy = max(float(np.vdot(h_ref, h_ref)), np.finfo(np.float64).tiny)
    gain = float(np.vdot(h_img, h_ref)) / ref_energy
    # the residual itself, not energy - gain**2: no cancellation when both are large
    invented = h_img - gain * h_ref
    return {"detail_gain": gain,
            "detail_energy": float(np.vdot(h_img, h_img)) / ref_energy,
            "detail_invented": float(np.vdot(invented, invented)) / ref_energy}


def image_scores(image_linear, truth_linear, image_srgb, truth_srgb) -> dict:
    """Every score of one restored image, in linear camera RGB and in display sRGB: ``psnr_linear``,
    ``ssim_linear``, ``psnr_srgb``, ``ssim_srgb`` and the :func:`high_frequency_detail` of the
    sRGB values (sharpness is what the eye sees)."""
    return {"psnr_linear": psnr(image_linear, truth_linear), "ssim_linear": ssim(image_linear, truth_linear),
            "psnr_srgb": psnr(image_srgb, truth_srgb), "ssim_srgb": ssim(image_srgb, truth_srgb),
            **high_frequency_detail(image_srgb, truth_srgb)}


__all__ = ["psnr", "ssim", "detail_band", "high_frequency_detail", "image_scores"]
