"""The synthetic camera: the ISP run backwards, then the sensor (Brooks et al., CVPR 2019).

linear sRGB radiance --inverse colour matrix--> white-balanced camera RGB --divide by WB gains-->
camera RGB [--lens distortion--] --vignetting falloff--> --Bayer sampling--> [--lens shading-->]
clean mosaic in [0, 1] --shot + read noise--> --black level, clip at white, quantise to 10/12/14
bits--> [--stuck pixels-->] uint16 mosaic

The bracketed steps are the optional lens and sensor flaws (:mod:`rawcv.synth.lens`), which the
DNG then carries as opcode lists.

Every step calls the forward stage's own maths from :mod:`rawcv.isp` (or its exact inverse), so the
camera and the ISP agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .. import isp
from ..meta import BAYER_PATTERNS, validate_cfa
from .lens import LensFlaws, distort, opcode_lists, shading_gain
from .noise import NoiseParams, add_noise

# A fixed default camera: the Nikon D3200's DNG ColorMatrix1 (XYZ D65 -> camera), a real sensor's
# colour response, so that camera RGB differs from sRGB the way it does in real files.
DEFAULT_XYZ_TO_CAM = np.array([[0.9020, -0.2890, -0.0715],
                               [-0.4535, 1.2436, 0.2348],
                               [-0.0934, 0.1919, 0.7086]])
WB_RED_RANGE = (1.9, 2.4)
WB_BLUE_RANGE = (1.5, 1.9)
BIT_DEPTHS = (10, 12, 14)


@dataclass
class CameraParams:
    """Everything the synthetic camera did to one image (recorded in the dataset manifest)."""

    cfa: str = "RGGB"
    bits: int = 14
    black: float = 512.0
    wb_gains: tuple = (2.1, 1.0, 1.7)            # multipliers the ISP must apply (R, G, B)
    xyz_to_cam: np.ndarray = field(default_factory=lambda: DEFAULT_XYZ_TO_CAM.copy())
    vignetting: tuple = (0.0, 0.0, 0.0)          # k1, k2, k3 of the correction gain
    noise: Optional[NoiseParams] = None
    row_noise: bool = False
    lens: Optional[LensFlaws] = None

    def __post_init__(self):
        self.cfa = validate_cfa(self.cfa)
        if self.bits not in BIT_DEPTHS:
            raise ValueError(f"bits must be one of {BIT_DEPTHS}, got {self.bits}")
        self.xyz_to_cam = np.asarray(self.xyz_to_cam, dtype=np.float64).reshape(3, 3)
        if not 0 <= self.black < self.white:
            raise ValueError(f"black level {self.black} must be in [0, white {self.white})")

    @property
    def white(self) -> int:
        return (1 << self.bits) - 1

    @property
    def cam_to_srgb(self) -> np.ndarray:
        return isp.camera_to_srgb_matrix(self.xyz_to_cam)

    def to_dict(self) -> dict:
        return {"cfa": self.cfa, "bits": self.bits, "black": self.black, "white": self.white,
                "wb_gains": [float(g) for g in self.wb_gains], "xyz_to_cam": self.xyz_to_cam.tolist(),
                "vignetting": [float(k) for k in self.vignetting],
                "noise": None if self.noise is None else self.noise.to_dict(), "row_noise": self.row_noise,
                "lens": None if self.lens is None else self.lens.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "CameraParams":
        d = dict(d)
        d.pop("white", None)
        noise = d.pop("noise", None)
        lens = d.pop("lens", None)
        return cls(**d, noise=None if noise is None else NoiseParams.from_dict(noise),
                   lens=None if lens is None else LensFlaws.from_dict(lens))


def random_camera(rng, *, cfa: Optional[str] = None, bits: int = 14, noise: Optional[NoiseParams] = None,
                  randomize_matrix: bool = True, vignetting: bool = True) -> CameraParams:
    """A camera with realistic random white balance, colour matrix and vignetting.

    Examples
    --------
    >>> cam = random_camera(np.random.default_rng(0))
    >>> 1.9 <= cam.wb_gains[0] <= 2.4 and 1.5 <= cam.wb_gains[2] <= 1.9
    True
    """
    rng = np.random.default_rng(rng)
    cfa = cfa or BAYER_PATTERNS[int(rng.integers(4))]
    matrix = DEFAULT_XYZ_TO_CAM.copy()
    if randomize_matrix:
        # perturb each row a little and renormalise: a plausible different sensor, still invertible
        matrix = matrix * (1.0 + rng.uniform(-0.15, 0.15, size=(3, 3)))
    ks = (float(rng.uniform(0.1, 0.5)), float(rng.uniform(-0.1, 0.1)), 0.0) if vignetting else (0.0, 0.0, 0.0)
    return CameraParams(
        cfa=cfa, bits=bits, black=float(1 << (bits - 5)),
        wb_gains=(float(rng.uniform(*WB_RED_RANGE)), 1.0, float(rng.uniform(*WB_BLUE_RANGE))),
        xyz_to_cam=matrix, vignetting=ks, noise=noise)


def srgb_to_camera(linear_srgb, params: CameraParams) -> np.ndarray:
    """Linear sRGB -> camera RGB as the sensor saw it (before white balance): the inverse of the
    ISP's colour matrix and white-balance stages."""
    cam_wb = isp.apply_color_matrix(linear_srgb, np.linalg.inv(params.cam_to_srgb))
    return isp.white_balance(cam_wb, 1.0 / np.asarray(params.wb_gains, dtype=np.float64))


@dataclass
class Capture:
    """One synthetic exposure: the recorded mosaic and the clean intermediate states."""

    mosaic: np.ndarray          # uint16, what the DNG stores
    clean_mosaic: np.ndarray    # float32 normalised mosaic before noise (after vignetting)
    camera_rgb: np.ndarray      # float32 H x W x 3 camera RGB before vignetting and sampling
    params: CameraParams


def capture(linear_srgb, params: CameraParams, rng=None) -> Capture:
    """Photograph a linear sRGB radiance image with the synthetic camera.

    Examples
    --------
    >>> scene = np.full((8, 8, 3), 0.18, np.float32)
    >>> cap = capture(scene, CameraParams(cfa="GRBG", bits=12, black=256.0))
    >>> cap.mosaic.dtype, int(cap.mosaic.min()) > 256
    (dtype('uint16'), True)
    """
    rng = np.random.default_rng(rng)
    scene = np.ascontiguousarray(linear_srgb, dtype=np.float32)
    if scene.ndim != 3 or scene.shape[2] != 3 or scene.shape[0] % 2 or scene.shape[1] % 2:
        raise ValueError(f"scene must be H x W x 3 with even H and W, got {scene.shape}")
    camera_rgb = srgb_to_camera(scene, params)
    lens = params.lens
    seen = camera_rgb if lens is None else distort(camera_rgb, lens)
    k1, k2, k3 = params.vignetting
    falloff = isp.apply_vignetting(seen, k1=k1, k2=k2, k3=k3) if any(params.vignetting) else seen
    clean = isp.mosaic_rgb(falloff, cfa=params.cfa)
    if lens is not None:
        clean = clean / shading_gain(lens, clean.shape)
    signal = clean
    if params.noise is not None:
        signal = add_noise(clean, params.noise, rng, row_noise=params.row_noise)
    scale = params.white - params.black
    dn = np.rint(params.black + signal.astype(np.float64) * scale)
    mosaic = np.clip(dn, 0, params.white).astype(np.uint16)
    for y, x, level in (() if lens is None else lens.bad_pixels):
        mosaic[y, x] = np.uint16(round(params.black + level * scale))
    return Capture(mosaic, clean, camera_rgb, params)


def write_capture_dng(path, cap: Capture, *, overwrite: bool = False) -> None:
    """Write a capture as a DNG carrying its true CFA, levels, AsShotNeutral, ColorMatrix1 and
    NoiseProfile (variance = S x + O per plane, the model's lambda_shot and lambda_read)."""
    from ..io import write_dng

    p = cap.params
    noise_profile = None
    if p.noise is not None:
        noise_profile = [p.noise.lambda_shot, p.noise.lambda_read] * 3
    lists = None if p.lens is None else opcode_lists(p.lens, cap.mosaic.shape, vignetting=p.vignetting)
    write_dng(path, cap.mosaic, cfa=p.cfa, black=p.black, white=p.white, as_shot_wb=p.wb_gains,
              color_matrix=p.xyz_to_cam, noise_profile=noise_profile, overwrite=overwrite,
              model="synthetic camera", opcode_lists=lists)
