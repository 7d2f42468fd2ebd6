"""Procedural scenes with ground truth, and linear scenes from bundled photographs.

:func:`generate_scene` draws a few geometric objects (six shape classes) on a varied
background under a random illuminant and exposure, and returns the linear scene radiance
together with an exactly consistent per-pixel class mask and an image-level label. The
scenes are meant to be mosaiced, noised and pushed through the ISP, so the radiance is
linear (not gamma encoded) and may exceed 1 a little (headroom for highlights).

Everything is vectorised NumPy; objects and clutter are rasterised only inside their
bounding boxes, so a 256x256 scene takes a few milliseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

SHAPE_CLASSES = ("circle", "square", "triangle", "star", "ring", "cross")
#: Class names indexed by class id (0 is the background).
CLASS_NAMES = ("background",) + SHAPE_CLASSES

# Geometry of each shape in "unit" coordinates (the object's size s maps to 1).
_SQUARE_HALF = 0.8
_STAR_INNER = 0.45
_RING_INNER = 0.55
_CROSS_HALF_WIDTH = 0.32
# Exact areas of the unit shapes: the object size is derived from a target area fraction,
# so that the classes cannot be told apart by their area alone.
_UNIT_AREA = {
    "circle": np.pi,
    "square": (2 * _SQUARE_HALF) ** 2,
    "triangle": 3 * np.sqrt(3) / 4,
    "star": 5 * _STAR_INNER * np.sin(np.pi / 5),
    "ring": np.pi * (1 - _RING_INNER ** 2),
    "cross": 8 * _CROSS_HALF_WIDTH - 4 * _CROSS_HALF_WIDTH ** 2,
}
# Radius of the circle (unit coordinates) that encloses each shape at any rotation.
_UNIT_EXTENT = {
    "circle": 1.0, "square": _SQUARE_HALF * np.sqrt(2), "triangle": 1.0, "star": 1.0,
    "ring": 1.0, "cross": float(np.hypot(1.0, _CROSS_HALF_WIDTH)),
}
# Every object keeps at least this fraction of the image visible (after occlusion).
MIN_VISIBLE_FRACTION = 0.03


@dataclass
class Scene:
    """A generated scene and its ground truth.

    Attributes
    ----------
    radiance : ndarray, float32, H x W x 3
        Linear scene radiance (illuminant and brightness applied), non-negative.
    mask : ndarray, uint8, H x W
        Class id per pixel (0 background, 1..6 = ``SHAPE_CLASSES``); later objects
        occlude earlier ones.
    label : int
        Class id of the single object; with several objects, the class with the largest
        visible area (the class of the largest object unless classes repeat).
    objects : list of dict
        One entry per drawn object, in drawing order: ``class``, ``class_id``,
        ``centre`` (y, x), ``size`` (pixels, the unit radius), ``rotation`` (radians),
        ``colour`` (RGB albedo), ``shading`` and ``area`` (visible pixels).
    illuminant : ndarray, float32, (3,)
        Per-channel illuminant gains applied to the albedo.
    brightness : float
        Exposure scale applied to the albedo.
    background : ndarray, float32, H x W x 3
        The radiance of the background alone; equals ``radiance`` exactly where
        ``mask == 0``.
    instances : ndarray, uint8, H x W
        Object index per pixel (0 background, k = ``objects[k - 1]``).
    """

    radiance: np.ndarray
    mask: np.ndarray
    label: int
    objects: list
    illuminant: np.ndarray
    brightness: float
    background: Optional[np.ndarray] = field(default=None, repr=False)
    instances: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def label_name(self) -> str:
        """Class name of :attr:`label`."""
        return CLASS_NAMES[self.label]


# --------------------------------------------------------------------------- shapes


def _shape_inside(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean membership of unit-coordinate points ``(u, v)`` in the shape ``name``."""
    if name == "circle":
        return u * u + v * v <= 1.0
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= _SQUARE_HALF
    if name == "triangle":
        # Equilateral triangle inscribed in the unit circle: three half-planes whose
        # outward normals point away from the vertices; the inradius is 1/2.
        inside = np.ones(u.shape, dtype=bool)
        for ang in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3):
            inside &= -(u * np.cos(ang) + v * np.sin(ang)) <= 0.5
        return inside
    if name == "star":
        # Five-pointed star: fold the polar angle into half a sector and compare the
        # radius with the straight edge from an outer tip (phi = 0, r = 1) to an inner
        # vertex (phi = pi/5, r = _STAR_INNER), written in polar form.
        r = np.hypot(u, v)
        sector = 2 * np.pi / 5
        phi = np.mod(np.arctan2(v, u) - np.pi / 2, sector)
        phi = np.minimum(phi, sector - phi)
        ri = _STAR_INNER
        edge = ri * np.sin(np.pi / 5) / (np.sin(phi) - ri * np.sin(phi - np.pi / 5))
        return r <= edge
    if name == "ring":
        r2 = u * u + v * v
        return (r2 <= 1.0) & (r2 >= _RING_INNER ** 2)
    if name == "cross":
        au, av = np.abs(u), np.abs(v)
        w = _CROSS_HALF_WIDTH
        return ((au <= w) & (av <= 1.0)) | ((av <= w) & (au <= 1.0))
    raise ValueError(f"unknown shape class {name!r}: expected one of {', '.join(SHAPE_CLASSES)}")


def _box(cy: float, cx: float, radius: float, h: int, w: int):
    """Integer bounding box (clipped to the image) of a disc; ``None`` if it is empty."""
    y0 = max(int(np.floor(cy - radius)), 0)
    y1 = min(int(np.ceil(cy + radius)) + 1, h)
    x0 = max(int(np.floor(cx - radius)), 0)
    x1 = min(int(np.ceil(cx + radius)) + 1, w)
    if y0 >= y1 or x0 >= x1:
        return None
    return y0, y1, x0, x1


# --------------------------------------------------------------------------- background


def _interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Linear-interpolation matrix mapping ``n_in`` grid samples to ``n_out`` pixels."""
    t = np.linspace(0.0, n_in - 1.0, n_out)
    i0 = np.clip(np.floor(t).astype(np.int64), 0, max(n_in - 2, 0))
    f = t - i0
    m = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    if n_in == 1:
        m[:, 0] = 1.0
        return m
    m[rows, i0] = 1.0 - f
    m[rows, i0 + 1] += f
    return m


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, channels: int) -> np.ndarray:
    """Band-limited noise: a coarse Gaussian grid upsampled bilinearly (H x W x C)."""
    gy = max(2, int(round(cells * h / max(h, w))) + 1)
    gx = max(2, int(round(cells * w / max(h, w))) + 1)
    grid = rng.standard_normal((channels, gy, gx))
    my, mx = _interp_matrix(h, gy), _interp_matrix(w, gx)
    out = np.einsum("yi,cij,xj->yxc", my, grid, mx, optimize=True)
    return out


def _background(rng: np.random.Generator, h: int, w: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Background albedo (H x W x 3, float64): gradient x vignette x texture + clutter."""
    n = max(h, w)
    c0 = rng.uniform(0.01, 0.9, 3)
    c1 = rng.uniform(0.01, 0.9, 3)
    ang = rng.uniform(0, 2 * np.pi)
    proj = (xx - w / 2) * np.cos(ang) + (yy - h / 2) * np.sin(ang)
    t = (proj - proj.min()) / max(np.ptp(proj), 1e-9)
    bg = c0 + (c1 - c0) * t[..., None]

    # Vignetting-like radial fall-off: realistic, and it gives dark regions that the
    # noise-estimation tests need to pin down the read-noise floor.
    vig = rng.uniform(0.0, 0.6)
    r2 = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (0.5 * n) ** 2
    bg = bg * (1.0 - vig * np.clip(r2, 0, 2) / 2)[..., None]

    texture = rng.choice(["none", "noise", "sinusoid", "both"], p=[0.25, 0.3, 0.2, 0.25])
    if texture in ("noise", "both"):
        cells = int(rng.choice([3, 6, 12, 24]))
        amp = rng.uniform(0.05, 0.3)
        chans = 3 if rng.random() < 0.5 else 1
        tex = _smooth_noise(rng, h, w, cells, chans)
        bg = bg * np.clip(1.0 + amp * tex, 0.1, None)
    if texture in ("sinusoid", "both"):
        for _ in range(int(rng.integers(1, 4))):
            # Periods of at least n/24 pixels keep gratings resolvable after mosaicing.
            period = n / rng.uniform(3.0, 24.0)
            a = rng.uniform(0, np.pi)
            phase = rng.uniform(0, 2 * np.pi)
            wave = np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period + phase)
            amp = rng.uniform(0.03, 0.15)
            tint = rng.uniform(0.5, 1.0, 3)
            bg = bg * (1.0 + amp * wave[..., None] * tint)

    _clutter(rng, bg, yy, xx, int(rng.integers(0, 16)))

    # A soft cast shadow over part of the frame: real scenes span a wide dynamic range,
    # and deep shadows are where read noise dominates (noise estimation needs them).
    if rng.random() < 0.7:
        depth = np.exp(rng.uniform(np.log(0.01), np.log(0.3)))
        a = rng.uniform(0, 2 * np.pi)
        offset = rng.uniform(-0.3, 0.3) * n
        dist = (xx - w / 2) * np.cos(a) + (yy - h / 2) * np.sin(a) - offset
        soft = rng.uniform(1.0, 0.05 * n)
        inside = 1.0 / (1.0 + np.exp(np.clip(-dist / soft, -50, 50)))
        bg = bg * (1.0 - (1.0 - depth) * inside)[..., None]
    return np.clip(bg, 0.0005, 1.0)


def _clutter(rng, img, yy, xx, count):
    """Draw small blobs and thin line segments in place (distractors, not classes)."""
    h, w = img.shape[:2]
    n = max(h, w)
    for _ in range(count):
        colour = rng.uniform(0.02, 0.95, 3)
        if rng.random() < 0.5:
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(1.0, 0.025 * n + 1.0, 2)
            box = _box(cy, cx, max(ry, rx), h, w)
            if box is None:
                continue
            y0, y1, x0, x1 = box
            sel = ((yy[y0:y1, x0:x1] - cy) / ry) ** 2 + ((xx[y0:y1, x0:x1] - cx) / rx) ** 2 <= 1.0
        else:
            py, px = rng.uniform(0, h), rng.uniform(0, w)
            length = rng.uniform(0.04, 0.2) * n
            a = rng.uniform(0, 2 * np.pi)
            qy, qx = py + length * np.sin(a), px + length * np.cos(a)
            half = rng.uniform(0.5, 1.5)
            box = _box((py + qy) / 2, (px + qx) / 2, length / 2 + half + 1, h, w)
            if box is None:
                continue
            y0, y1, x0, x1 = box
            dy, dx = yy[y0:y1, x0:x1] - py, xx[y0:y1, x0:x1] - px
            ey, ex = qy - py, qx - px
            s = np.clip((dy * ey + dx * ex) / (ey * ey + ex * ex), 0.0, 1.0)
            sel = np.hypot(dy - s * ey, dx - s * ex) <= half
        img[y0:y1, x0:x1][sel] = colour


# --------------------------------------------------------------------------- scene


def _as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _illuminant(rng: np.random.Generator) -> np.ndarray:
    """Colour-temperature-like gains: warm/cool along R-B plus a small green tint."""
    t = rng.uniform(-1.0, 1.0)
    gains = np.array([1.0 + 0.28 * t, 1.0 + rng.normal(0.0, 0.05), 1.0 - 0.28 * t])
    return np.clip(gains, 0.7, 1.3)


def _place_objects(rng, names, h, w, single, overlap):
    """Sample sizes and centres; reject layouts whose circumscribed discs overlap a lot.

    ``overlap`` is the smallest allowed centre distance as a fraction of the sum of the
    enclosing radii (1.0 means the enclosing discs never intersect, so nothing occludes).
    """
    n_img = h * w
    placed = []
    for name in names:
        lo, hi = (0.05, 0.16) if single else (0.04, 0.09)
        for _attempt in range(40):
            frac = rng.uniform(lo, hi)
            size = float(np.sqrt(frac * n_img / _UNIT_AREA[name]))
            extent = size * _UNIT_EXTENT[name]
            if 2 * extent + 4 >= min(h, w):
                size = (min(h, w) - 6) / (2 * _UNIT_EXTENT[name])
                extent = size * _UNIT_EXTENT[name]
            # Keep objects wholly inside the frame so their area is what was asked for.
            cy = rng.uniform(extent + 1, h - extent - 1)
            cx = rng.uniform(extent + 1, w - extent - 1)
            ok = all(np.hypot(cy - p["cy"], cx - p["cx"]) >= overlap * (extent + p["extent"])
                     for p in placed)
            if ok:
                placed.append(dict(name=name, size=size, extent=extent, cy=cy, cx=cx))
                break
    return placed


def _draw_objects(rng, background, placed, yy, xx):
    """Rasterise the placed objects over a copy of the background albedo.

    Returns the albedo image, the instance map (k = k-th object, 0 = background) and the
    object records. Albedo and instance map are written with the same boolean masks, so
    the ground truth matches the drawn pixels exactly.
    """
    h, w = background.shape[:2]
    albedo = background.copy()
    instances = np.zeros((h, w), dtype=np.uint8)
    objects = []
    for k, p in enumerate(placed, start=1):
        name, s, cy, cx = p["name"], p["size"], p["cy"], p["cx"]
        rot = float(rng.uniform(0, 2 * np.pi))
        y0, y1, x0, x1 = _box(cy, cx, p["extent"] + 1, h, w)
        dy, dx = yy[y0:y1, x0:x1] - cy, xx[y0:y1, x0:x1] - cx
        c, sn = np.cos(rot), np.sin(rot)
        u = (dx * c + dy * sn) / s
        v = (-dx * sn + dy * c) / s
        inside = _shape_inside(name, u, v)

        # Contrast with what lies beneath makes the object learnable: draw a few albedos
        # and keep the one farthest from the local background mean.
        under = albedo[y0:y1, x0:x1][inside].mean(axis=0)
        best, best_d = None, -1.0
        for _ in range(12):
            cand = rng.uniform(0.03, 0.9, 3)
            d = float(np.linalg.norm(cand - under))
            if d > best_d:
                best, best_d = cand, d
            if d >= 0.35:
                break
        # Shading: a linear ramp across the object and a radial (dome) fall-off.
        g_ang = rng.uniform(0, 2 * np.pi)
        g_amp = rng.uniform(0.0, 0.3)
        radial = rng.uniform(0.0, 0.35)
        shade = (1.0 + g_amp * (u * np.cos(g_ang) + v * np.sin(g_ang))) * (1.0 - radial * (u * u + v * v))
        shade = np.clip(shade, 0.1, 1.3)
        albedo[y0:y1, x0:x1][inside] = best * shade[inside][:, None]
        instances[y0:y1, x0:x1][inside] = k
        objects.append({
            "class": name, "class_id": SHAPE_CLASSES.index(name) + 1,
            "centre": (float(cy), float(cx)), "size": float(s), "rotation": rot,
            "colour": tuple(float(v) for v in best),
            "shading": {"gradient": float(g_amp), "gradient_angle": float(g_ang), "radial": float(radial)},
        })
    return albedo, instances, objects


def generate_scene(
    rng,
    *,
    size: Union[int, Sequence[int]] = 256,
    n_objects: Union[int, Sequence[int]] = (1, 3),
    single_object: bool = False,
    classes: Sequence[str] = SHAPE_CLASSES,
) -> Scene:
    """Generate a random scene of shape objects with per-pixel and image-level labels.

    Parameters
    ----------
    rng : numpy.random.Generator or int
        Source of randomness (an int seeds a new generator). Same seed, same scene.
    size : int or (int, int)
        Image size ``H = W = size`` or ``(H, W)``.
    n_objects : int or (int, int)
        Number of objects, or an inclusive range to draw it from. Objects that cannot be
        placed without heavy overlap are dropped, so fewer may appear (never zero).
    single_object : bool
        Draw exactly one object (overrides ``n_objects``).
    classes : sequence of str
        Subset of :data:`SHAPE_CLASSES` to draw from; class ids stay those of
        :data:`SHAPE_CLASSES` (1-based).

    Returns
    -------
    Scene
        Radiance, mask, label and metadata; see :class:`Scene`.

    Examples
    --------
    >>> import numpy as np
    >>> s = generate_scene(np.random.default_rng(0), size=64, single_object=True)
    >>> s.radiance.shape, s.mask.dtype.name, 1 <= s.label <= 6
    ((64, 64, 3), 'uint8', True)
    """
    rng = _as_rng(rng)
    if np.ndim(size) == 0:
        h = w = int(size)
    else:
        h, w = (int(v) for v in size)
    if min(h, w) < 16:
        raise ValueError(f"scene size must be at least 16 pixels, got {h}x{w}")
    classes = tuple(classes)
    if not classes:
        raise ValueError("classes must not be empty")
    for c in classes:
        if c not in SHAPE_CLASSES:
            raise ValueError(f"unknown shape class {c!r}: expected one of {', '.join(SHAPE_CLASSES)}")
    if single_object:
        count = 1
    elif np.ndim(n_objects) == 0:
        count = int(n_objects)
    else:
        lo, hi = (int(v) for v in n_objects)
        count = int(rng.integers(lo, hi + 1))
    if count < 1:
        raise ValueError(f"n_objects must be at least 1, got {count}")

    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64) + 0.5, np.arange(w, dtype=np.float64) + 0.5,
                         indexing="ij")
    background = _background(rng, h, w, yy, xx)
    names = [classes[int(i)] for i in rng.integers(0, len(classes), count)]

    min_area = MIN_VISIBLE_FRACTION * h * w
    for layout in range(24):
        # Partial occlusion is allowed, but an object must keep enough visible area to be
        # learnable; after repeated failures fall back to non-overlapping layouts.
        placed = _place_objects(rng, names, h, w, single_object or count == 1,
                                0.8 if layout < 12 else 1.0)
        if not placed:
            continue
        albedo, instances, objects = _draw_objects(rng, background, placed, yy, xx)
        areas = np.bincount(instances.ravel(), minlength=len(objects) + 1)
        if areas[1:].min() >= min_area or layout == 23:
            break
    if not placed:  # pragma: no cover - only reachable for absurdly small images
        raise RuntimeError("could not place any object")

    class_of = np.array([0] + [o["class_id"] for o in objects], dtype=np.uint8)
    mask = class_of[instances]
    for o, a in zip(objects, areas[1:]):
        o["area"] = int(a)
    # The image-level label is the class covering most of the image; with distinct classes
    # that is the class of the largest visible object.
    class_area = np.bincount(mask.ravel(), minlength=len(CLASS_NAMES))
    label = int(np.argmax(class_area[1:]) + 1)

    illuminant = _illuminant(rng)
    brightness = float(np.exp(rng.uniform(np.log(0.2), np.log(0.9))))
    gain = (illuminant * brightness).astype(np.float32)
    radiance = albedo.astype(np.float32) * gain
    background = background.astype(np.float32) * gain
    return Scene(radiance=radiance, mask=mask, label=label, objects=objects,
                 illuminant=illuminant.astype(np.float32), brightness=brightness,
                 background=background, instances=instances)


# --------------------------------------------------------------------------- photographs


def _srgb_decode_local(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB transfer curve, encoded [0, 1] -> linear."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def scene_from_image(image) -> np.ndarray:
    """Linear scene radiance from an sRGB-encoded photograph.

    Parameters
    ----------
    image : array_like
        H x W (grey), H x W x 3 or H x W x 4 (alpha dropped). Integer images are scaled
        by their dtype maximum; float images are taken as encoded values in [0, 1].

    Returns
    -------
    ndarray, float32, H x W x 3
        Linear radiance in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> float(scene_from_image(np.full((2, 2, 3), 255, np.uint8)).max())
    1.0
    """
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"expected an H x W, H x W x 3 or H x W x 4 image, got shape {img.shape}")
    img = img[..., :3]
    if np.issubdtype(img.dtype, np.integer):
        x = img.astype(np.float64) / float(np.iinfo(img.dtype).max)
    else:
        x = img.astype(np.float64)
    try:  # the ISP's tone module is the reference implementation when present
        from rawcv.isp.tone import srgb_decode
    except ImportError:
        srgb_decode = _srgb_decode_local
    return np.clip(np.asarray(srgb_decode(np.clip(x, 0.0, 1.0)), dtype=np.float32), 0.0, None)


# Colour photographs shipped inside scikit-image (no download): name -> (loader, file).
_SKIMAGE_SCENES = {
    "astronaut": ("astronaut", "astronaut.png"),
    "chelsea": ("chelsea", "chelsea.png"),
    "coffee": ("coffee", "coffee.png"),
    "rocket": ("rocket", "rocket.jpg"),
    "hubble_deep_field": ("hubble_deep_field", "hubble_deep_field.jpg"),
    "immunohistochemistry": ("immunohistochemistry", "ihc.png"),
    "retina": ("retina", "retina.jpg"),
    "motorcycle": ("stereo_motorcycle", "motorcycle_left.png"),
}


def _skimage_data_dir() -> Optional[str]:
    try:
        import skimage
    except ImportError:
        return None
    return os.path.join(os.path.dirname(skimage.__file__), "data")


def skimage_scenes() -> list:
    """Names of colour photographs bundled with scikit-image (usable offline).

    Returns
    -------
    list of str
        Names accepted by :func:`load_skimage_scene`; empty without scikit-image.

    Examples
    --------
    >>> "astronaut" in skimage_scenes()
    True
    """
    d = _skimage_data_dir()
    if d is None:
        return []
    return [name for name, (_, fname) in _SKIMAGE_SCENES.items() if os.path.isfile(os.path.join(d, fname))]


def load_skimage_scene(name: str, *, linear: bool = True) -> np.ndarray:
    """Load a bundled scikit-image photograph.

    Parameters
    ----------
    name : str
        One of :func:`skimage_scenes`.
    linear : bool
        Return linear radiance (float32, via :func:`scene_from_image`); ``False`` returns
        the sRGB uint8 image as stored.

    Returns
    -------
    ndarray
        H x W x 3 image.

    Examples
    --------
    >>> load_skimage_scene("chelsea").shape
    (300, 451, 3)
    """
    if name not in _SKIMAGE_SCENES:
        raise ValueError(f"unknown scikit-image scene {name!r}: expected one of {', '.join(_SKIMAGE_SCENES)}")
    import skimage.data

    loader, _ = _SKIMAGE_SCENES[name]
    img = getattr(skimage.data, loader)()
    if isinstance(img, tuple):  # stereo_motorcycle returns (left, right, disparity)
        img = img[0]
    img = np.asarray(img)[..., :3]
    return scene_from_image(img) if linear else img


def random_scene_crop(image, size: int, rng) -> np.ndarray:
    """A random ``size x size`` window of ``image`` (H x W x C), the image first enlarged (area
    interpolation, aspect kept) where a side is shorter than ``size``. Draws the top, then the
    left offset from ``rng``; returns a view where no enlargement was needed."""
    h, w = image.shape[:2]
    if h < size or w < size:
        import cv2

        scale = size / min(h, w)
        image = cv2.resize(image, (max(size, int(np.ceil(w * scale))), max(size, int(np.ceil(h * scale)))),
                           interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    return image[y:y + size, x:x + size]


__all__ = [
    "SHAPE_CLASSES", "CLASS_NAMES", "MIN_VISIBLE_FRACTION", "Scene", "generate_scene",
    "scene_from_image", "skimage_scenes", "load_skimage_scene", "random_scene_crop",
]
