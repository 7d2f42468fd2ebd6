"""The peers rawcv is measured against: the same chains written with OpenCV + NumPy, rawpy/LibRaw,
colour-demosaicing and kornia.

The OpenCV + NumPy chains are what a careful user would write with those libraries: NumPy for the
black level and white balance (one broadcast pass over the 2 x 2 CFA tile, in float32), OpenCV's
bilinear Bayer demosaic on uint16 (its fast path), ``cv2.medianBlur`` on 16-bit data, the
vignetting gain map and the tone-curve table precomputed once per image size (not timed, as a
user would cache them), ``cv2.transform`` for the colour matrix, and a 65536-entry table lookup
for the sRGB curve + 8-bit quantisation.
"""

from __future__ import annotations

import numpy as np

# OpenCV 5 names Bayer codes by the literal top-left 2 x 2 pattern (see tests/test_isp_reference.py)
OPENCV_BAYER = {"RGGB": "COLOR_BayerRGGB2RGB", "BGGR": "COLOR_BayerBGGR2RGB", "GRBG": "COLOR_BayerGRBG2RGB",
                "GBRG": "COLOR_BayerGBRG2RGB"}


def opencv_bayer_code(cfa: str) -> int:
    import cv2

    return getattr(cv2, OPENCV_BAYER[cfa])


class OpenCVChain:
    """The core chain (and, with ``full=True``, the default pipeline's stages) in OpenCV + NumPy.

    Data run through uint16 (what ``cvtColor`` and ``medianBlur`` take): the mosaic is normalised
    and white balanced into [0, 65535], demosaiced, (median filtered, vignetting-corrected and
    colour-corrected in float32), and encoded + quantised by a 65536-entry table.
    """

    def __init__(self, shape, cfa, black4, white, gains, matrix=None, vignetting=(0.0, 0.0, 0.0),
                 full: bool = False):
        from rawcv import isp
        from rawcv.meta import cfa_code
        from rawcv.isp.vignetting import vignetting_gain

        h, w = shape
        code = cfa_code(cfa)
        black4 = np.asarray(black4, np.float32).reshape(2, 2)
        gains4 = np.asarray(gains, np.float32)[code].reshape(2, 2)
        # (v - black) * scale per CFA position, broadcast over the (h/2, 2, w/2, 2) view of the mosaic
        self.black = black4[None, :, None, :]
        self.scale = (np.float32(65535.0) * gains4 / (np.float32(white) - black4))[None, :, None, :]
        self.code = opencv_bayer_code(cfa)
        levels = np.arange(65536, dtype=np.float32) / np.float32(65535.0)
        self.lut = isp.quantize(isp.srgb_encode(levels.reshape(256, 256)), bits=8).reshape(-1)
        self.full = full
        if full:
            k1, k2, k3 = vignetting
            self.gain = vignetting_gain((h, w), k1=k1, k2=k2, k3=k3)[..., None]
            self.matrix = np.asarray(matrix if matrix is not None else np.eye(3), np.float32)
        self.shape = shape

    def normalise(self, mosaic: np.ndarray) -> np.ndarray:
        h, w = mosaic.shape
        v = mosaic.reshape(h // 2, 2, w // 2, 2).astype(np.float32)
        v -= self.black
        v *= self.scale
        np.clip(v, 0, 65535, out=v)
        v += np.float32(0.5)
        return v.reshape(h, w).astype(np.uint16)

    def __call__(self, mosaic: np.ndarray) -> np.ndarray:
        import cv2

        rgb16 = cv2.cvtColor(self.normalise(mosaic), self.code)
        if not self.full:
            return self.lut[rgb16]
        rgb16 = cv2.medianBlur(rgb16, 3)
        rgb = rgb16.astype(np.float32)
        rgb *= self.gain
        rgb = cv2.transform(rgb, self.matrix)
        np.clip(rgb, 0, 65535, out=rgb)
        rgb += np.float32(0.5)
        return self.lut[rgb.astype(np.uint16)]


def rawpy_decode(path):
    """rawpy.imread + unpack (LibRaw reads and decodes the file); returns the open RawPy."""
    import rawpy

    raw = rawpy.imread(str(path))
    raw.unpack()
    return raw


def rawpy_process(raw, demosaic: str = "LINEAR") -> np.ndarray:
    """LibRaw's processing of an unpacked file: the ``demosaic`` algorithm (bilinear unless
    told), camera WB, no auto-brightness, 8-bit output (its default colour space, sRGB, and
    default gamma)."""
    import rawpy

    return raw.postprocess(demosaic_algorithm=rawpy.DemosaicAlgorithm[demosaic], use_camera_wb=True,
                           no_auto_bright=True, output_bps=8)


def colour_demosaicing_bilinear():
    """``colour_demosaicing.demosaicing_CFA_Bayer_bilinear`` or None (with the reason)."""
    try:
        import colour_demosaicing
    except Exception as exc:  # pragma: no cover - optional dependency
        return None, f"colour-demosaicing not importable ({type(exc).__name__}: {exc})"
    return colour_demosaicing.demosaicing_CFA_Bayer_bilinear, None


def kornia_raw_to_rgb(cfa: str, probe_mosaic: np.ndarray, reference_rgb: np.ndarray):
    """A callable ``f(tensor) -> tensor`` running ``kornia.color.raw_to_rgb`` on CPU with the CFA
    enum that matches ``cfa`` (kornia's names follow OpenCV 4's convention, so the right one is
    picked by comparing against a reference on a small probe), or None with the reason."""
    try:
        import kornia
        import torch
    except Exception as exc:  # pragma: no cover - optional dependency
        return None, None, f"kornia not importable ({type(exc).__name__}: {exc})"
    probe = torch.from_numpy(np.ascontiguousarray(probe_mosaic, np.float32))[None, None]
    best, best_err = None, np.inf
    for member in kornia.color.CFA:
        out = kornia.color.raw_to_rgb(probe, member)[0].permute(1, 2, 0).numpy()
        err = float(np.abs(out[2:-2, 2:-2] - reference_rgb[2:-2, 2:-2]).mean())
        if err < best_err:
            best, best_err = member, err
    return (lambda t: kornia.color.raw_to_rgb(t, best)), best, None
