"""rawcv.torch.tensors (packing, to_tensor, batches with metadata) and rawcv.torch.augment."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from rawcv import isp
from rawcv.meta import BAYER_PATTERNS, CameraMeta, RawImage, cfa_flip
from rawcv.pipeline import load_pipeline
from rawcv.torch import augment as aug
from rawcv.torch import isp as tisp
from rawcv.torch import tensors as tt
from rawcv.torch.convert import to_tensor

FLIPS = [dict(horizontal=h, vertical=v, transpose=t) for h, v, t in itertools.product((False, True), repeat=3)]
COLOURS = (1.0, 2.0, 3.0)   # R, G, B of a constant test image


@pytest.fixture(autouse=True, scope="module")
def _one_thread(single_threaded):
    """Tiny arrays: see ``single_threaded`` in conftest.py."""


def constant_mosaic(cfa, h=6, w=8, colours=COLOURS):
    """A mosaic of a constant-colour image: each value tells which colour the CFA put there."""
    rgb = torch.tensor(colours).reshape(3, 1, 1).expand(3, h, w)
    return tisp.mosaic_rgb(rgb[None], cfa=cfa)


def green_rows_mosaic(cfa, h=6, w=8):
    """Like :func:`constant_mosaic`, but greens on red rows read 2 and greens on blue rows 5."""
    m = constant_mosaic(cfa, h, w)
    (gy1, gx1), (gy2, gx2) = tt.packed_positions(cfa)[1:3]
    m[..., gy1::2, gx1::2] = 2.0
    m[..., gy2::2, gx2::2] = 5.0
    return m


def make_raw(cfa, shape=(10, 14), seed=0, linear=False):
    rng = np.random.default_rng(seed)
    data = rng.integers(40, 1000, shape + ((3,) if linear else ())).astype(np.uint16)
    meta = CameraMeta(None if linear else cfa, black_level=(40, 42, 44, 46), white_level=1023,
                      as_shot_wb=(2.0, 1.0, 1.5), linear=linear,
                      xyz_to_cam=((0.67, -0.06, -0.1), (-0.43, 1.25, 0.2), (-0.09, 0.22, 0.57)))
    return RawImage(data, meta)


# --------------------------------------------------------------------------- packing


def test_packed_positions_follow_the_definition():
    assert tt.PACKED_CHANNELS == ("R", "G1", "G2", "B")
    expected = {"RGGB": ((0, 0), (0, 1), (1, 0), (1, 1)), "BGGR": ((1, 1), (1, 0), (0, 1), (0, 0)),
                "GRBG": ((0, 1), (0, 0), (1, 1), (1, 0)), "GBRG": ((1, 0), (1, 1), (0, 0), (0, 1))}
    for cfa, positions in expected.items():
        assert tt.packed_positions(cfa) == positions
        r, g1, g2, b = positions
        assert g1[0] == r[0] and g2[0] == b[0]   # G1 shares the red row, G2 the blue row


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_pack_gives_r_g1_g2_b_for_every_cfa(cfa):
    packed = tt.pack(green_rows_mosaic(cfa), cfa)
    assert packed.shape == (1, 4, 3, 4)
    for k, value in enumerate((1.0, 2.0, 5.0, 3.0)):
        assert bool((packed[0, k] == value).all())
    m = torch.arange(24.0).reshape(4, 6)
    dy, dx = tt.packed_positions(cfa)[0]
    assert torch.equal(tt.pack(m, cfa)[0], m[dy::2, dx::2])   # unbatched H x W -> 4 x h x w


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_unpack_inverts_pack(cfa):
    m = torch.rand(3, 1, 6, 10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(tt.unpack(tt.pack(m, cfa), cfa), m)
    assert torch.equal(tt.unpack(tt.pack(m[0], cfa), cfa), m[0])
    p = torch.rand(2, 4, 3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.equal(tt.pack(tt.unpack(p, cfa), cfa), p)
    assert torch.autograd.gradcheck(lambda a: tt.unpack(a, cfa), (p,))


def test_pack_with_one_cfa_per_sample_and_errors():
    cfas = ["RGGB", "GBRG", "BGGR"]
    m = torch.stack([green_rows_mosaic(c)[0] for c in cfas])
    packed = tt.pack(m, cfas)
    for k, value in enumerate((1.0, 2.0, 5.0, 3.0)):
        assert bool((packed[:, k] == value).all())
    assert torch.equal(tt.unpack(packed, cfas), m)
    with pytest.raises(ValueError):
        tt.pack(torch.zeros(1, 1, 5, 6), "RGGB")          # odd height
    with pytest.raises(ValueError):
        tt.pack(m, ["RGGB"])                              # one pattern for three samples
    with pytest.raises(Exception):
        tt.pack(m, "RGBX")


# --------------------------------------------------------------------------- to_tensor


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_to_tensor_packed_from_raw_image(cfa):
    raw = make_raw(cfa, shape=(11, 15))   # odd: cropped to 10 x 14, origin (and CFA) kept
    x = to_tensor(raw)
    assert x.shape == (4, 5, 7) and x.dtype == torch.float32
    norm = isp.subtract_black_level(raw.data[:10, :14], black=raw.meta.black_level, white=raw.meta.white_level)
    for k, (dy, dx) in enumerate(tt.packed_positions(cfa)):
        np.testing.assert_allclose(x[k].numpy(), norm[dy::2, dx::2], rtol=0, atol=1e-6)
    assert torch.equal(to_tensor(raw, "packed", device="cpu"), x)


def test_to_tensor_rgb_from_raw_image_is_the_linear_pipeline():
    raw = make_raw("GRBG", shape=(11, 14))
    x = to_tensor(raw, "rgb")
    ref = load_pipeline("linear")(RawImage(raw.data[:10], raw.meta))
    assert x.shape == (3, 10, 14)
    np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), ref, rtol=0, atol=1e-6)
    lin = make_raw(None, shape=(6, 8), linear=True)
    np.testing.assert_allclose(to_tensor(lin).permute(1, 2, 0).numpy(), load_pipeline("linear")(lin), atol=1e-6)
    with pytest.raises(ValueError):
        to_tensor(lin, "packed")


def test_to_tensor_from_arrays():
    rgb = np.random.default_rng(1).random((4, 6, 3)).astype(np.float32)
    x = to_tensor(rgb)
    assert x.shape == (3, 4, 6) and torch.equal(x, torch.from_numpy(rgb).permute(2, 0, 1))
    mos = np.random.default_rng(2).random((6, 8)).astype(np.float32)
    p = to_tensor(mos, cfa="BGGR")
    assert p.shape == (4, 3, 4) and torch.equal(p[0], torch.from_numpy(mos[1::2, 1::2]))   # R of BGGR
    demo = to_tensor(mos, "rgb", cfa="BGGR")
    np.testing.assert_allclose(demo.permute(1, 2, 0).numpy(), isp.demosaic_bilinear(mos, cfa="BGGR"), atol=1e-6)
    with pytest.raises(ValueError):
        to_tensor(mos)                 # a bare mosaic needs its pattern
    with pytest.raises(ValueError):
        to_tensor(rgb, "packed")
    with pytest.raises(ValueError):
        to_tensor(rgb, "planar")


# --------------------------------------------------------------------------- metadata and batches


def test_meta_dict_is_json_and_round_trips():
    raw = make_raw("GBRG")
    d = tt.meta_dict(raw)
    assert json.loads(json.dumps(d)) == d
    assert d["cfa"] == "GBRG" and d["black"] == [40.0, 42.0, 44.0, 46.0] and d["white"] == 1023.0
    assert d["gains"] == [2.0, 1.0, 1.5]
    np.testing.assert_allclose(d["matrix"], isp.camera_to_srgb_matrix(raw.meta.xyz_to_cam), atol=1e-12)
    assert tt.meta_from_dict(d) == raw.meta
    odd = CameraMeta("RGGB", as_shot_wb=(4.0, 2.0, 3.0))
    assert tt.meta_dict(odd)["gains"] == [2.0, 1.0, 1.5] and tt.meta_dict(odd)["matrix"] is None
    assert tt.meta_from_dict(tt.meta_dict(odd)) == odd


def test_collate_raw_keeps_per_image_metadata():
    raws = [make_raw(c, seed=i) for i, c in enumerate(("RGGB", "BGGR"))]
    raws[1] = RawImage(raws[1].data, raws[1].meta.replace(white_level=4095.0, xyz_to_cam=None))
    items = [(to_tensor(r), tt.meta_dict(r)) for r in raws[:1]] + [(to_tensor(raws[1]), raws[1].meta)]
    batch = tt.collate_raw(items)
    assert isinstance(batch, tt.RawBatch) and len(batch) == 2
    assert batch.data.shape == (2, 4, 5, 7)
    assert torch.equal(batch.data[1], to_tensor(raws[1]))
    assert batch.cfa == ["RGGB", "BGGR"] and batch.white == [1023.0, 4095.0]
    assert batch.black == [[40.0, 42.0, 44.0, 46.0]] * 2 and batch.gains == [[2.0, 1.0, 1.5]] * 2
    assert batch.matrix[0] is not None and batch.matrix[1] is None
    assert batch.black_tensor().shape == (2, 4) and batch.white_tensor().tolist() == [1023.0, 4095.0]
    assert batch.gains_tensor().dtype == torch.float32
    assert batch.to(torch.float64).data.dtype == torch.float64 and batch.to("cpu").cfa == batch.cfa
    assert [m.cfa for m in batch.camera_metas()] == ["RGGB", "BGGR"]
    json.dumps(batch.meta)
    with pytest.raises(ValueError):
        tt.collate_raw([(torch.zeros(4, 2, 2), {}), (torch.zeros(4, 3, 2), {})])
    with pytest.raises(ValueError):
        tt.collate_raw([])


# --------------------------------------------------------------------------- augmentation: geometry


def test_random_crop_offsets_are_even_and_keep_the_cfa():
    g = torch.Generator().manual_seed(0)
    m = constant_mosaic("GRBG", 20, 26)
    offsets = set()
    for _ in range(200):
        c, (top, left) = aug.random_crop(m, (6, 8), generator=g)
        assert top % 2 == 0 and left % 2 == 0 and c.shape[-2:] == (6, 8)
        assert torch.equal(c, m[..., top:top + 6, left:left + 8])
        assert torch.equal(c, constant_mosaic("GRBG", 6, 8))   # same pattern at the crop's origin
        offsets.add((top, left))
    assert len(offsets) > 20 and max(t for t, _ in offsets) == 14 and max(x for _, x in offsets) == 18
    for _ in range(50):
        c, (top, left) = aug.random_crop(torch.zeros(4, 9, 9), 4, layout="packed", generator=g)
        offsets.add((top % 2, left % 2))
    assert (1, 1) in offsets   # packed tensors may start anywhere
    with pytest.raises(ValueError):
        aug.crop(m, 1, 0, (6, 8))
    with pytest.raises(ValueError):
        aug.random_crop(m, (5, 8))
    with pytest.raises(ValueError):
        aug.random_crop(m, (40, 8))


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_flip_mosaic_remaps_the_cfa(cfa):
    for flips in FLIPS:
        out, new = aug.flip_mosaic(constant_mosaic(cfa), cfa, **flips)
        assert new == cfa_flip(cfa, **flips)
        h, w = out.shape[-2:]
        assert torch.equal(out, constant_mosaic(new, h, w))


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_flip_then_demosaic_equals_demosaic_then_flip(cfa):
    gen = torch.Generator().manual_seed(1)
    # values k / 4096: every neighbour sum is exact, so any summation order gives the same bits
    dyadic = torch.randint(0, 4096, (2, 1, 10, 14), generator=gen).float() / 4096
    noisy = torch.rand(2, 1, 10, 14, generator=gen)
    for flips in FLIPS:
        for m, exact in ((dyadic, True), (noisy, False)):
            flipped, new = aug.flip_mosaic(m, cfa, **flips)
            a = tisp.demosaic_bilinear(flipped, cfa=new)
            b, _ = aug.flip_mosaic(tisp.demosaic_bilinear(m, cfa=cfa), cfa, **flips)
            if exact:
                assert torch.equal(a, b)   # the whole image, mirrored borders included
            else:
                # arbitrary floats: a flip reorders the neighbour sums (kept in the Numba twin's
                # order), so the two may differ in the last place only
                assert torch.allclose(a, b, rtol=0, atol=3e-7)


def _bilinear_rggb(p):
    return tisp.demosaic_bilinear(tt.unpack(p, "RGGB"), cfa="RGGB")


def test_bayer_self_ensemble_keeps_the_cfa_in_every_branch():
    # bilinear demosaicing commutes with flips when the CFA is re-mapped, so if every one of the 8
    # branches feeds fn a true RGGB mosaic and maps its output back, the mean is bilinear itself
    # (inside: the flipped branches lose a border row/column and see mirrored borders there)
    p = torch.rand(2, 4, 9, 13, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    out = aug.bayer_self_ensemble(_bilinear_rggb, p)
    ref = _bilinear_rggb(p)
    assert out.shape == ref.shape == (2, 3, 18, 26)
    assert torch.allclose(out[..., 2:-2, 2:-2], ref[..., 2:-2, 2:-2], rtol=0, atol=1e-12)
    assert torch.allclose(out, ref, rtol=0, atol=0.5)     # borders: still estimates of the same pixels
    # a GRBG view of the same values (what a flip without the crop would feed) is far from it
    wrong = tisp.demosaic_bilinear(tt.unpack(p, "RGGB"), cfa="GRBG")
    assert float((wrong - ref)[..., 2:-2, 2:-2].abs().mean()) > 0.05


def test_bayer_self_ensemble_averages_over_the_eight_frames():
    # fn adds its own frame's column index: after mapping back (H x W full-resolution frame), x
    # appears as x and W - 2 - x (a flip, then the crop of one column) in the four untransposed
    # branches, y as y and H - 2 - y in the four transposed ones: their mean is (H + W - 4) / 4
    # wherever all 8 branches cover
    def with_ramp(p, v):
        y = _bilinear_rggb(p) + 0 * v.sum()
        return y + torch.arange(y.shape[-1], dtype=y.dtype)
    p = torch.rand(1, 4, 6, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    out = aug.bayer_self_ensemble(with_ramp, p, torch.zeros_like(p))
    H, W = 12, 20
    expected = _bilinear_rggb(p) + (H + W - 4) / 4
    assert torch.allclose(out[..., 2:-2, 2:-2], expected[..., 2:-2, 2:-2], rtol=0, atol=1e-9)
    constant = aug.bayer_self_ensemble(lambda p: torch.ones(1, 3, 2 * p.shape[-2], 2 * p.shape[-1]), p)
    assert torch.equal(constant, torch.ones(1, 3, H, W))        # every pixel covered, counts normalised
    with pytest.raises(ValueError, match="packed RGGB"):
        aug.bayer_self_ensemble(_bilinear_rggb, torch.zeros(1, 1, 4, 4))


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_flip_packed_is_pack_of_the_flipped_mosaic(cfa):
    m = torch.rand(2, 1, 6, 10, generator=torch.Generator().manual_seed(2))
    for flips in FLIPS:
        flipped, new = aug.flip_mosaic(m, cfa, **flips)
        assert torch.equal(aug.flip_packed(tt.pack(m, cfa), **flips), tt.pack(flipped, new))
    # the order stays R, G1 (red row), G2 (blue row), B: flips keep every green on its row, a
    # transpose turns the red-row greens (value 2) into blue-row greens, so they move to G2
    packed = tt.pack(green_rows_mosaic(cfa), cfa)
    for flips in FLIPS:
        out = aug.flip_packed(packed, **flips)
        expected = [1.0, 5.0, 2.0, 3.0] if flips["transpose"] else [1.0, 2.0, 5.0, 3.0]
        assert [float(out[0, k].unique()) for k in range(4)] == expected
    with pytest.raises(ValueError):
        aug.flip_packed(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError):
        aug.flip_mosaic(torch.zeros(1, 5, 4), cfa, horizontal=True)


# --------------------------------------------------------------------------- augmentation: photometric


def test_adjust_exposure():
    x = torch.tensor([[0.25, 0.75], [0.1, 0.6]])
    assert torch.equal(aug.adjust_exposure(x, 2.0), x * 2)
    assert torch.equal(aug.adjust_exposure(x, 2.0, clip=True), torch.tensor([[0.5, 1.0], [0.2, 1.0]]))
    assert float(aug.adjust_exposure(x, 4.0, clip=True, saturation=2.0).max()) == 2.0
    per_sample = aug.adjust_exposure(x, torch.tensor([1.0, 0.5]))
    assert torch.allclose(per_sample, torch.tensor([[0.25, 0.75], [0.05, 0.3]]))


def test_add_raw_noise_follows_the_variance_law():
    levels = torch.tensor([0.0, 0.1, 0.5, 0.9])
    shot, read = 1e-2, 1e-4
    x = levels.reshape(4, 1).expand(4, 200_000).contiguous()
    noisy = aug.add_raw_noise(x, shot, read, generator=torch.Generator().manual_seed(0))
    var = (noisy - x).var(dim=1)
    expected = shot * levels + read
    assert torch.allclose(var, expected, rtol=0.03)
    assert torch.allclose((noisy - x).mean(dim=1), torch.zeros(4), atol=3e-4)
    assert torch.allclose(aug.raw_noise_variance(torch.tensor([-1.0, 0.5]), shot, read),
                          torch.tensor([read, shot * 0.5 + read]), rtol=1e-6, atol=0)   # negatives count as 0
    # reproducible with a generator; per-sample parameters
    a = aug.add_raw_noise(x[:, :10], shot, read, generator=torch.Generator().manual_seed(5))
    b = aug.add_raw_noise(x[:, :10], shot, read, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    per = aug.add_raw_noise(torch.full((2, 100_000), 0.5), torch.tensor([0.0, 1e-2]), torch.tensor([1e-4, 0.0]),
                            generator=torch.Generator().manual_seed(1))
    assert torch.allclose(per.var(dim=1), torch.tensor([1e-4, 5e-3]), rtol=0.03)


def test_add_raw_noise_matches_the_synthetic_camera():
    noise = pytest.importorskip("rawcv.synth.noise")
    params = noise.NoiseParams(4e-3, noise.mean_read_noise(4e-3))
    levels = np.array([0.0, 0.2, 0.8], dtype=np.float32)
    clean = np.repeat(levels[:, None], 200_000, axis=1)
    var_np = (noise.add_noise(clean, params, np.random.default_rng(0)) - clean).var(axis=1)
    x = torch.from_numpy(clean)
    noisy = aug.add_raw_noise(x, params.lambda_shot, params.lambda_read, torch.Generator().manual_seed(0))
    var_t = (noisy - x).var(dim=1)
    law = params.variance(levels)
    np.testing.assert_allclose(aug.raw_noise_variance(torch.from_numpy(levels), params.lambda_shot,
                                                      params.lambda_read).numpy(), law, rtol=1e-6)
    np.testing.assert_allclose(var_np, law, rtol=0.03)
    np.testing.assert_allclose(var_t.numpy(), law, rtol=0.03)
    np.testing.assert_allclose(var_t.numpy(), var_np, rtol=0.05)


# --------------------------------------------------------------------------- BayerAugment


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_bayer_augment_mosaic_keeps_colours_where_the_cfa_says(cfa):
    a = aug.BayerAugment(crop=(6, 6), exposure=None, layout="mosaic", generator=torch.Generator().manual_seed(3))
    seen = set()
    for _ in range(40):
        out, new = a(constant_mosaic(cfa, 12, 16), cfa)
        assert out.shape[-2:] == (6, 6)
        assert torch.equal(out, constant_mosaic(new, 6, 6))
        seen.add(new)
    assert len(seen) == 4   # flips and transposes reach every layout


def test_bayer_augment_packed_keeps_the_channel_order_and_scales_exposure():
    packed = tt.pack(green_rows_mosaic("GBRG", 12, 16), "GBRG")
    a = aug.BayerAugment(crop=4, exposure=(0.5, 2.0), layout="packed", generator=torch.Generator().manual_seed(4))
    factors = []
    for _ in range(30):
        params = a.sample_params(packed.shape)
        out = a.apply(packed, params)
        assert out.shape == (1, 4, 4, 4)
        assert 0.5 <= params.exposure <= 2.0
        greens = [5.0, 2.0] if params.transpose else [2.0, 5.0]   # see test_flip_packed_...
        expected = torch.tensor([1.0, *greens, 3.0]) * params.exposure
        assert torch.allclose(out[0], expected.reshape(4, 1, 1).expand(4, 4, 4))
        factors.append(params.exposure)
    assert min(factors) < 0.8 and max(factors) > 1.25
    clipped = aug.BayerAugment(exposure=(2.0, 2.0), flip=False, transpose=False, clip=True)(packed)
    assert float(clipped.max()) == 1.0


def test_bayer_augment_noise_and_shared_parameters():
    clean = torch.full((1, 4, 32, 32), 0.5)
    a = aug.BayerAugment(crop=16, exposure=None, noise=(1e-2, 1e-4), generator=torch.Generator().manual_seed(5))
    params = a.sample_params(clean.shape)
    noisy = a.apply(clean, params)
    target = a.apply(clean, params, noise=False)
    assert torch.equal(target, torch.full((1, 4, 16, 16), 0.5))
    assert abs(float((noisy - target).var()) - (1e-2 * 0.5 + 1e-4)) < 1e-3

    class Levels:   # anything with lambda_shot / lambda_read (rawcv.synth's NoiseParams)
        lambda_shot, lambda_read = 0.0, 4e-4

    assert aug.BayerAugment(noise=Levels(), exposure=None).sample_params(clean.shape).lambda_read == 4e-4
    sampler = aug.BayerAugment(noise=lambda g: (float(torch.rand((), generator=g)) * 1e-2, 0.0),
                               generator=torch.Generator().manual_seed(6))
    assert 0 <= sampler.sample_params(clean.shape).lambda_shot <= 1e-2
    with pytest.raises(ValueError):
        aug.BayerAugment(crop=5, layout="mosaic")
    with pytest.raises(ValueError):
        aug.BayerAugment(layout="mosaic")(torch.zeros(1, 8, 8))   # needs the cfa
    with pytest.raises(ValueError):
        aug.BayerAugment(exposure=(2.0, 1.0))
