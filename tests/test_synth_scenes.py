"""Tests of rawcv.synth.scenes: procedural scenes, their ground truth, and photo scenes."""

import time

import numpy as np
import pytest

from rawcv.synth import scenes
from rawcv.synth.scenes import (CLASS_NAMES, MIN_VISIBLE_FRACTION, SHAPE_CLASSES, generate_scene,
                                load_skimage_scene, scene_from_image, skimage_scenes)


def _srgb_decode_reference(v):
    """IEC 61966-2-1, written out independently of the code under test."""
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


@pytest.mark.parametrize("size", [256, (96, 160)])
def test_shapes_dtypes_and_ranges(size):
    h, w = (size, size) if np.ndim(size) == 0 else size
    for seed in range(8):
        s = generate_scene(np.random.default_rng(seed), size=size)
        assert s.radiance.shape == (h, w, 3) and s.radiance.dtype == np.float32
        assert s.mask.shape == (h, w) and s.mask.dtype == np.uint8
        assert np.isfinite(s.radiance).all()
        assert s.radiance.min() >= 0.0
        # Linear radiance "typically in [0, 1] with some headroom".
        assert s.radiance.max() <= 2.0
        assert s.mask.max() <= len(SHAPE_CLASSES)
        assert 1 <= s.label <= len(SHAPE_CLASSES)
        assert s.illuminant.shape == (3,)
        assert np.all((s.illuminant >= 0.7) & (s.illuminant <= 1.3))
        assert 0.0 < s.brightness <= 1.0
        assert s.label_name == CLASS_NAMES[s.label]


def test_same_seed_same_scene_bit_for_bit_and_different_seeds_differ():
    a = generate_scene(np.random.default_rng(1234))
    b = generate_scene(np.random.default_rng(1234))
    c = generate_scene(np.random.default_rng(1235))
    assert np.array_equal(a.radiance.view(np.uint32), b.radiance.view(np.uint32))
    assert np.array_equal(a.mask, b.mask)
    assert a.label == b.label and a.objects == b.objects
    assert np.array_equal(a.illuminant, b.illuminant) and a.brightness == b.brightness
    assert not np.array_equal(a.radiance, c.radiance)
    # An integer seed is the same as a generator seeded with it.
    d = generate_scene(1234)
    assert np.array_equal(a.radiance, d.radiance)


def test_mask_is_exactly_where_objects_were_drawn():
    for seed in range(30):
        s = generate_scene(np.random.default_rng(seed), size=128)
        background = s.mask == 0
        # Outside the mask nothing but the background was drawn, bit for bit ...
        assert np.array_equal(s.radiance[background], s.background[background])
        # ... and inside it every pixel carries object radiance (continuous random colours
        # and shading never coincide exactly with the background).
        assert np.all(np.any(s.radiance != s.background, axis=-1)[~background])
        class_of = np.array([0] + [o["class_id"] for o in s.objects])
        assert np.array_equal(s.mask, class_of[s.instances])
        for k, o in enumerate(s.objects, start=1):
            assert o["area"] == int(np.count_nonzero(s.instances == k))


def test_label_objects_and_mask_agree():
    for seed in range(40):
        s = generate_scene(np.random.default_rng(seed), size=128, n_objects=(1, 3))
        counts = np.bincount(s.mask.ravel(), minlength=len(CLASS_NAMES))
        assert s.label == int(np.argmax(counts[1:]) + 1)
        ids_in_mask = set(np.unique(s.mask).tolist()) - {0}
        object_ids = {o["class_id"] for o in s.objects}
        assert ids_in_mask <= object_ids
        for o in s.objects:
            assert SHAPE_CLASSES[o["class_id"] - 1] == o["class"]
            # Every object keeps enough visible area to be learnable.
            assert o["area"] >= MIN_VISIBLE_FRACTION * s.mask.size
            assert o["class_id"] in ids_in_mask
        assert 1 <= len(s.objects) <= 3


def test_objects_contrast_with_what_they_cover():
    for seed in range(30):
        s = generate_scene(np.random.default_rng(seed), size=128)
        for k in range(1, len(s.objects) + 1):
            sel = s.instances == k
            inside = s.radiance[sel].mean(axis=0)
            covered = s.background[sel].mean(axis=0)
            assert np.linalg.norm(inside - covered) >= 0.1 * s.brightness


def test_every_class_appears_over_60_single_object_scenes():
    rng = np.random.default_rng(7)
    seen = []
    for _ in range(60):
        s = generate_scene(rng, size=64, single_object=True)
        present = set(np.unique(s.mask).tolist()) - {0}
        assert present == {s.label}
        assert len(s.objects) == 1 and s.objects[0]["class_id"] == s.label
        seen.append(s.label)
    assert set(seen) == set(range(1, len(SHAPE_CLASSES) + 1))


def test_n_objects_and_class_subset():
    for seed in range(10):
        s = generate_scene(seed, size=256, n_objects=3, classes=("ring", "star"))
        assert len(s.objects) == 3
        assert set(np.unique(s.mask).tolist()) - {0} <= {SHAPE_CLASSES.index("ring") + 1,
                                                          SHAPE_CLASSES.index("star") + 1}
    with pytest.raises(ValueError, match="unknown shape class"):
        generate_scene(0, classes=("hexagon",))
    with pytest.raises(ValueError):
        generate_scene(0, n_objects=0)


@pytest.mark.parametrize("name", SHAPE_CLASSES)
def test_unit_shape_areas_match_their_analytic_values(name):
    # Rasterise the unit shape finely at an arbitrary rotation; the area must match the
    # closed-form value that sizes the objects, and the shape must fit its enclosing disc.
    n = 1201
    t = np.linspace(-1.3, 1.3, n)
    u, v = np.meshgrid(t, t, indexing="ij")
    rot = 0.37
    ur, vr = u * np.cos(rot) + v * np.sin(rot), -u * np.sin(rot) + v * np.cos(rot)
    inside = scenes._shape_inside(name, ur, vr)
    area = inside.sum() * (t[1] - t[0]) ** 2
    assert area == pytest.approx(scenes._UNIT_AREA[name], rel=0.01)
    assert np.hypot(u, v)[inside].max() <= scenes._UNIT_EXTENT[name] + 0.01


def test_single_object_pixel_area_follows_its_size():
    for seed in range(12):
        s = generate_scene(seed, size=256, single_object=True)
        o = s.objects[0]
        expected = o["size"] ** 2 * scenes._UNIT_AREA[o["class"]]
        assert o["area"] == pytest.approx(expected, rel=0.05)


def test_generation_is_fast():
    rng = np.random.default_rng(0)
    generate_scene(rng)  # warm caches
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        generate_scene(rng, size=256)
        times.append(time.perf_counter() - t0)
    assert np.median(times) < 0.05


def test_scene_from_image_decodes_srgb():
    levels = np.array([0, 5, 10, 11, 50, 128, 200, 255], dtype=np.uint8)
    img = np.stack([levels, levels[::-1], levels], axis=-1)[None, :, :].repeat(2, axis=0)
    lin = scene_from_image(img)
    assert lin.dtype == np.float32 and lin.shape == img.shape
    np.testing.assert_allclose(lin, _srgb_decode_reference(img / 255.0), atol=2e-6)
    assert lin[0, 0, 0] == 0.0 and lin[0, -1, 0] == pytest.approx(1.0)
    # Float input is taken as encoded [0, 1]: mid-grey 0.5 decodes to 0.2140.
    assert float(scene_from_image(np.full((4, 4, 3), 0.5))[0, 0, 0]) == pytest.approx(0.21404, abs=1e-4)
    # Grey images gain three equal channels; alpha is dropped.
    grey = scene_from_image(np.full((3, 3), 128, np.uint8))
    assert grey.shape == (3, 3, 3) and np.ptp(grey) == 0
    rgba = np.concatenate([img, np.zeros(img.shape[:2] + (1,), np.uint8)], axis=-1)
    np.testing.assert_array_equal(scene_from_image(rgba), lin)
    with pytest.raises(ValueError):
        scene_from_image(np.zeros((4, 4, 2)))


def test_skimage_scenes_are_bundled_colour_photographs():
    names = skimage_scenes()
    assert {"astronaut", "chelsea", "coffee"} <= set(names)
    import skimage.data

    raw = load_skimage_scene("chelsea", linear=False)
    np.testing.assert_array_equal(raw, skimage.data.chelsea())
    lin = load_skimage_scene("chelsea")
    assert lin.shape == (300, 451, 3) and lin.dtype == np.float32
    assert 0.0 <= lin.min() and lin.max() <= 1.0
    np.testing.assert_allclose(lin, _srgb_decode_reference(raw / 255.0), atol=2e-6)
    for name in names:
        assert load_skimage_scene(name, linear=False).shape[2] == 3
    with pytest.raises(ValueError, match="unknown scikit-image scene"):
        load_skimage_scene("lena")
