"""The benchmark's input: a natural colour scene as a 14-bit RGGB DNG, generated once and cached.

Colour photographs from ``skimage.data`` are upscaled (bicubic) into a 2 x 2 grid, given a light
fine-grained texture (so that demosaicing sees detail at the pixel scale, as in a sharp photo),
decoded to linear light with :func:`rawcv.isp.srgb_decode`, divided by the as-shot white-balance
multipliers (what the sensor sees under a warm light), sampled through the CFA with
:func:`rawcv.isp.mosaic_rgb`, scaled to the 14-bit range above black and given mild shot and read
noise. A few highlights clip at the white level, as in real captures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BLACK = 512
WHITE = 16383
AS_SHOT_WB = (2.1, 1.0, 1.6)           # camera multipliers R, G, B
CFA = "RGGB"
# XYZ (D65) -> camera, the ColorMatrix1 of a Nikon D3200 (the shared sample's camera)
XYZ_TO_CAM = ((0.9020, -0.2890, -0.0715), (-0.4535, 1.2436, 0.2348), (-0.0934, 0.1919, 0.7086))
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
VERSION = 1                               # bump when the generator changes (new cache file)


def _fit(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Centre-crop ``img`` to the aspect of ``w x h`` and resize it there (bicubic)."""
    import cv2

    ih, iw = img.shape[:2]
    if iw * h > ih * w:
        cw = ih * w // h
        img = img[:, (iw - cw) // 2:(iw - cw) // 2 + cw]
    else:
        ch = iw * h // w
        img = img[(ih - ch) // 2:(ih - ch) // 2 + ch]
    return cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=cv2.INTER_CUBIC)


def scene_srgb(width: int, height: int, seed: int = 0) -> np.ndarray:
    """An 8-bit-like sRGB scene as float32 in [0, 1], H x W x 3."""
    import cv2
    import skimage.data

    rng = np.random.default_rng(seed)
    hw, hh = width // 2, height // 2
    tiles = [_fit(getattr(skimage.data, name)()[..., :3], w, h)
             for name, (w, h) in zip(PHOTOS, [(hw, hh), (width - hw, hh), (hw, height - hh),
                                               (width - hw, height - hh)])]
    img = np.empty((height, width, 3), np.float32)
    img[:hh, :hw], img[:hh, hw:], img[hh:, :hw], img[hh:, hw:] = (t.astype(np.float32) / 255 for t in tiles)
    # light texture: band-limited luminance variation of a few percent at the 1-3 pixel scale
    grain = cv2.GaussianBlur(rng.standard_normal((height, width), dtype=np.float32), (0, 0), 1.0)
    grain *= np.float32(0.04 / max(float(grain.std()), 1e-6))
    img *= (1 + grain)[..., None]
    return np.clip(img, 0, 1, out=img)


def scene_mosaic(width: int, height: int, seed: int = 0) -> np.ndarray:
    """The scene as the uint16 RGGB mosaic a 14-bit camera would record."""
    from rawcv import isp

    rng = np.random.default_rng(seed + 1)
    linear = isp.srgb_decode(scene_srgb(width, height, seed))
    linear /= np.asarray(AS_SHOT_WB, np.float32)             # the sensor's view under the light
    mosaic = isp.mosaic_rgb(linear, cfa=CFA)
    del linear
    signal = mosaic * np.float32(1.15 * (WHITE - BLACK))      # exposure: the brightest areas clip
    # shot noise (about one electron per DN) and a little read noise, in DN
    noise = rng.standard_normal(signal.shape, dtype=np.float32)
    noise *= np.sqrt(signal + np.float32(4.0))
    signal += noise
    signal += BLACK
    return np.clip(np.rint(signal), 0, WHITE).astype(np.uint16)


def write_scene_dng(path, width: int, height: int, mosaic=None) -> Path:
    from rawcv import write_dng

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mosaic is None:
        mosaic = scene_mosaic(width, height)
    write_dng(path, mosaic, cfa=CFA, black=BLACK, white=WHITE, as_shot_wb=AS_SHOT_WB,
              color_matrix=XYZ_TO_CAM, make="rawcv", model="benchmark scene", overwrite=True)
    return path


def cached_scene(cache_dir, width: int, height: int) -> Path:
    """The scene's DNG under ``cache_dir``, generated on first use."""
    path = Path(cache_dir) / f"scene_v{VERSION}_{width}x{height}.dng"
    if not path.exists():
        write_scene_dng(path, width, height)
    return path


def cached_copies(cache_dir, width: int, height: int, count: int) -> Path:
    """A folder of ``count`` identical mid-size scene DNGs (for files/s with --jobs)."""
    folder = Path(cache_dir) / f"copies_v{VERSION}_{width}x{height}_{count}"
    files = [folder / f"scene_{i:02d}.dng" for i in range(count)]
    if not all(f.exists() for f in files):
        import shutil

        first = write_scene_dng(files[0], width, height)
        for f in files[1:]:
            shutil.copyfile(first, f)
    return folder
