"""Raw restoration: on-the-fly pairs, the variance map, the Anscombe transform, tiled inference,
the PatchGAN pair, the options and their command line, GAN checkpoints (their discriminator view,
old configs, resume), a CPU training smoke test, and ``rawcv predict|eval restore`` through the
command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rawcv.baselines import gat, gat_inverse
from rawcv.data.restore import (RestorePairs, SynthRestoreSet, canonical_crop, fresh_loader, pack_mosaic,
                                packed_variance)
from rawcv.models import create_model
from rawcv.options import RestoreOptions
from rawcv.train.checkpoint import CONFIG_VERSION, CheckpointError, load_checkpoint, migrate_config
from rawcv.train.restore import (D_DETAIL_SIGMA, DISCRIMINATOR_CHANNELS, DISCRIMINATOR_VIEW, RestorationTask,
                                 RestoreTrainer, build_discriminator, camera_to_output, discriminator_pair,
                                 display_view, gaussian_blur, generator_input, high_frequency_detail,
                                 load_restorer, tiled_apply, train_restorer)

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("single_threaded")   # tiny models: one torch / Numba thread
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}   # small models: one thread is faster on a busy 2-core machine
TINY_G = {"base_width": 8, "depth": 2}
TINY_D = {"base_width": 8}
# a tiny GAN run of train_restorer (8 on-the-fly 32 x 32 pairs per epoch)
TINY_GAN_RUN = dict(model_kwargs=TINY_G, disc_kwargs=TINY_D, noise="high", crop=32, train_size=8, val_size=4,
                    batch_size=8, device="cpu", progress=False)


def rawcv(*args, timeout=170):
    return subprocess.run([sys.executable, "cli.py", *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=ENV)


# --------------------------------------------------------------------------------------------
# Pairs
# --------------------------------------------------------------------------------------------

def test_pairs_are_deterministic_per_seed_split_and_index():
    a = RestorePairs(4, seed=3, size=32, noise="1e-3:1.2e-2")
    b = RestorePairs(4, seed=3, size=32, noise="1e-3:1.2e-2")
    for i in (0, 1, 7, 123456789):
        pa, pb = a.pair(i), b.pair(i)
        assert np.array_equal(pa.packed, pb.packed) and np.array_equal(pa.target, pb.target)
        assert pa.lambda_shot == pb.lambda_shot
    assert not np.array_equal(a.pair(0).packed, RestorePairs(4, seed=4, size=32).pair(0).packed)
    assert not np.array_equal(a.pair(0).packed, RestorePairs(4, seed=3, size=32, split="val").pair(0).packed)
    item = a[2]
    assert item["input"].shape == (4, 16, 16) and item["variance"].shape == (4, 16, 16)
    assert item["target"].shape == (3, 32, 32) and item["gains"].shape == (3,)


def test_fresh_loader_gives_new_pairs_each_epoch_reproducibly():
    ds = RestorePairs(4, size=32, noise="high")
    loader = fresh_loader(ds, batch_size=2, seed=0)

    def epoch(seed):
        loader.generator.manual_seed(seed)
        return torch.cat([b["input"] for b in loader])

    e1, e2, e1_again = epoch(11), epoch(12), epoch(11)
    assert torch.equal(e1, e1_again) and not torch.equal(e1, e2)


def test_variance_map_is_lambda_shot_x_plus_lambda_read():
    p = RestorePairs(2, size=32, noise="high").pair(0)
    expected = p.lambda_shot * np.maximum(p.packed.astype(np.float64), 0) + p.lambda_read
    np.testing.assert_allclose(p.variance, expected, rtol=1e-6, atol=1e-9)
    assert p.lambda_shot == pytest.approx(0.012)
    assert (p.packed < 0).any()                       # read noise dips below black: clipped at 0 in the map
    assert p.variance.min() == pytest.approx(p.lambda_read)
    # per packed channel lambdas, and the values of a hand-made input
    x = np.array([[[-0.1, 0.5]]] * 4, np.float32)
    v = packed_variance(x, [0.01, 0.02, 0.02, 0.03], 1e-4)
    np.testing.assert_allclose(v[:, 0, 1], [0.0051, 0.0101, 0.0101, 0.0151], rtol=1e-6)
    np.testing.assert_allclose(v[:, 0, 0], 1e-4, rtol=1e-6)
    g = generator_input(torch.from_numpy(p.packed)[None], torch.from_numpy(p.variance)[None], 100.0)
    assert g.shape == (1, 8, 16, 16) and torch.allclose(g[0, 4:], torch.from_numpy(p.variance) * 100)


def test_target_is_white_balanced_camera_rgb_and_output_stages_invert_it():
    """The target through the linear pipeline's stages after demosaic (the colour matrix) is the
    scene's linear sRGB radiance; the display path gives 8-bit sRGB (the ISP's own stages)."""
    from rawcv.synth import generate_scene

    ds = RestorePairs(2, size=32, noise="none", sources="synthetic")
    p = ds.pair(1)
    radiance = generate_scene(ds.rng(1), size=32, n_objects=(1, 4)).radiance    # the same first draws
    np.testing.assert_allclose(camera_to_output(p.target, p.meta, "linear"), radiance, atol=2e-4)
    disp = camera_to_output(p.target, p.meta, "default")
    assert disp.dtype == np.uint8 and disp.shape == (32, 32, 3)


def test_canonical_crop_brings_any_bayer_pattern_to_rggb():
    from rawcv.meta import cfa_shift

    m = np.arange(8 * 10, dtype=np.float32).reshape(8, 10)
    for cfa in ("RGGB", "GRBG", "GBRG", "BGGR"):
        c, (dy, dx) = canonical_crop(m, cfa)
        assert cfa_shift(cfa, dy, dx) == "RGGB"
        assert c.shape[0] % 2 == 0 and c.shape[1] % 2 == 0
        assert c[0, 0] == m[dy, dx]
    assert pack_mosaic(m, "RGGB")[0, 0, 0] == m[0, 0] and pack_mosaic(m, "RGGB")[3, 0, 0] == m[1, 1]


# --------------------------------------------------------------------------------------------
# Variance-stabilising transform
# --------------------------------------------------------------------------------------------

def test_anscombe_round_trip_and_stabilisation():
    ls, lr = 0.012, 2.16e-4
    x = np.linspace(-0.02, 1.2, 200)
    np.testing.assert_allclose(gat_inverse(gat(x, ls, lr), ls, lr, method="algebraic"), x, atol=1e-12)
    rng = np.random.default_rng(0)
    for level in (0.05, 0.2, 0.6):
        # Poisson-Gaussian samples with var = ls * x + lr
        y = ls * rng.poisson(level / ls, 200_000) + rng.normal(0, np.sqrt(lr), 200_000)
        t = gat(y, ls, lr)
        assert np.var(t) == pytest.approx(1.0, abs=0.06)               # unit noise after the transform
        back = gat_inverse(np.mean(t), ls, lr, method="unbiased")       # the mean maps back to the level
        assert back == pytest.approx(level, rel=0.01)
        naive = gat_inverse(np.mean(t), ls, lr, method="algebraic")
        assert abs(back - level) < abs(naive - level)
    with pytest.raises(ValueError):
        gat(x, 0.0, lr)


def test_high_frequency_detail_scores_blur_noise_and_contrast():
    from scipy.ndimage import uniform_filter

    rng = np.random.default_rng(1)
    ref = uniform_filter(rng.random((96, 96, 3)), size=(2, 2, 1))     # detail at every scale, in [0, 1]
    same = high_frequency_detail(ref, ref)
    assert same["detail_gain"] == pytest.approx(1.0) and same["detail_energy"] == pytest.approx(1.0)
    # a * ref + c: the band is linear and blind to constants, so gain a and energy a^2 exactly
    half = high_frequency_detail(0.5 * ref + 0.25, ref)
    assert half["detail_gain"] == pytest.approx(0.5) and half["detail_energy"] == pytest.approx(0.25)
    # blur removes detail: both fall, and more blur removes more
    soft = high_frequency_detail(uniform_filter(ref, size=(3, 3, 1)), ref)
    softer = high_frequency_detail(uniform_filter(ref, size=(5, 5, 1)), ref)
    assert softer["detail_gain"] < soft["detail_gain"] < 0.8 and softer["detail_energy"] < soft["detail_energy"]
    # noise independent of the reference adds energy, not gain
    noisy = high_frequency_detail(np.clip(ref + rng.normal(0, 0.08, ref.shape), 0, 1), ref)
    assert noisy["detail_gain"] == pytest.approx(1.0, abs=0.05) and noisy["detail_energy"] > 1.2
    # "invented" is the energy orthogonal to the reference's band: none for a * ref + c, the
    # added energy for noise (about energy - 1 at gain 1), little for blur (it removes energy;
    # the box filter's negative lobes leave a little out of phase); and always
    # energy = gain^2 + invented (Pythagoras)
    assert same["detail_invented"] == pytest.approx(0.0, abs=1e-12)
    assert half["detail_invented"] == pytest.approx(0.0, abs=1e-12)
    assert noisy["detail_invented"] == pytest.approx(noisy["detail_energy"] - 1, abs=0.05)
    assert noisy["detail_invented"] > 0.4 and soft["detail_invented"] < noisy["detail_invented"] / 4
    for d in (same, half, soft, softer, noisy):
        assert d["detail_energy"] == pytest.approx(d["detail_gain"] ** 2 + d["detail_invented"], rel=1e-9, abs=1e-12)
    with pytest.raises(ValueError, match="one shape"):
        high_frequency_detail(ref[:64], ref)


# --------------------------------------------------------------------------------------------
# Tiled inference
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(70, 90), (64, 160), (101, 75)])
def test_tiling_with_overlap_reproduces_the_untiled_result(shape):
    torch.manual_seed(0)
    model = create_model("unet_generator", in_chans=8, num_classes=3, depth=1, base_width=4).eval()
    for m in model.modules():          # PyTorch's default init: outputs of order 0.1, not pix2pix's ~1e-7
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            m.reset_parameters()
    model.double()                     # float64: rounding of differently-sized convolutions stays far below 1e-5
    x = torch.rand(1, 8, *shape, dtype=torch.float64)
    with torch.no_grad():
        full = model(x)
        # receptive field ~ 11 packed pixels < overlap / 4 = 12
        tiled = tiled_apply(model, x, tile=64, overlap=48, align=2, scale=2)
        coarse = tiled_apply(model, x, tile=64, overlap=0, align=2, scale=2)
    assert tiled.shape == full.shape == (1, 3, 2 * shape[0], 2 * shape[1])
    assert float(full.std()) > 0.01
    assert float((tiled - full).abs().max()) < 1e-5
    assert float((coarse - full).abs().max()) > 1e-3        # without overlap the seams show: tiling did happen


# --------------------------------------------------------------------------------------------
# GAN parts
# --------------------------------------------------------------------------------------------

def test_patchgan_sees_the_condition_image_pair():
    d = create_model("patchgan70", in_chans=DISCRIMINATOR_CHANNELS, num_classes=1, base_width=8).eval()
    first = next(m for m in d.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == DISCRIMINATOR_CHANNELS == 10 and d.receptive_field == 70
    packed = torch.rand(2, 4, 32, 32)
    image = torch.rand(2, 3, 64, 64)
    pair = discriminator_pair(packed, image)
    assert pair.shape == (2, DISCRIMINATOR_CHANNELS, 64, 64)
    with torch.no_grad():
        a = d(pair)
        b = d(discriminator_pair(torch.rand(2, 4, 32, 32), image))     # same image, another condition
    assert a.shape == (2, 1, 6, 6) and not torch.allclose(a, b)


@pytest.mark.parametrize("sigma", [0.8, 1.5, 2.5])
def test_gaussian_blur_matches_scipy(sigma):
    from scipy.ndimage import gaussian_filter

    x = np.random.default_rng(3).random((2, 3, 20, 24)).astype(np.float32)
    ref = gaussian_filter(x.astype(np.float64), (0, 0, sigma, sigma), mode="mirror", truncate=3.0)
    np.testing.assert_allclose(gaussian_blur(torch.from_numpy(x), sigma).numpy(), ref, atol=1e-6)


def _srgb_curve_extended(x):
    """IEC 61966-2-1 sRGB encoding written out, continued below 0 (the linear segment) and above 1
    (the power law)."""
    x = np.asarray(x, np.float64)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.maximum(x, 0.0031308) ** (1 / 2.4) - 0.055)


def test_discriminator_display_view_continues_the_srgb_curve():
    rng = np.random.default_rng(6)
    packed = torch.from_numpy(rng.random((2, 4, 16, 16), dtype=np.float32) * 0.3 - 0.05)   # noisy raw dips below 0
    image = torch.from_numpy(rng.random((2, 3, 32, 32), dtype=np.float32) * 1.4 - 0.1)     # below 0 and above 1
    cond = np.repeat(np.repeat(packed.numpy(), 2, axis=2), 2, axis=3)       # nearest upsampling to 32 x 32
    pair = discriminator_pair(packed, image).numpy()
    np.testing.assert_allclose(pair[:, :4], _srgb_curve_extended(cond), atol=1e-5)
    np.testing.assert_allclose(pair[:, 4:7], _srgb_curve_extended(image.numpy()), atol=1e-5)
    # below 0 and above 1 the view still has a gradient, so the generator is told about values there
    x = torch.tensor([-0.02, 1.3], requires_grad=True)
    display_view(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [12.92, 1.055 / 2.4 * 1.3 ** (1 / 2.4 - 1)], rtol=1e-5)


def test_discriminator_detail_view_is_the_fine_band_of_the_display_image():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(4)
    packed = torch.from_numpy(rng.random((2, 4, 16, 16), dtype=np.float32))
    image = torch.from_numpy(rng.random((2, 3, 32, 32), dtype=np.float32) * 1.2)     # some values above 1
    pair = discriminator_pair(packed, image).numpy()
    shown = _srgb_curve_extended(image.numpy())
    band = shown - gaussian_filter(shown, (0, 0, D_DETAIL_SIGMA, D_DETAIL_SIGMA), mode="mirror", truncate=3.0)
    np.testing.assert_allclose(pair[:, 7:], band, atol=1e-5)
    assert DISCRIMINATOR_VIEW == {"name": "display+detail", "value_range": "extended", "detail_gain": 1.0,
                                  "detail_sigma": D_DETAIL_SIGMA}
    flat = discriminator_pair(packed, torch.full((2, 3, 32, 32), 0.3))
    assert float(flat[:, 7:].abs().max()) < 1e-6       # a flat image has no detail


# --------------------------------------------------------------------------------------------
# Options and their command line
# --------------------------------------------------------------------------------------------

def _train_restore_parser(parser):
    """The ``rawcv train restore`` sub-parser of ``parser``."""
    import argparse

    train = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    return next(a for a in train._actions if isinstance(a, argparse._SubParsersAction)).choices["restore"]


def test_train_restore_cli_options_are_the_fields_of_restore_options():
    import dataclasses

    from rawcv.cli import build_parser
    from rawcv.cli.dataclass_args import dataclass_from_args

    parser = build_parser()
    args = parser.parse_args(["train", "restore", "--out", "run"])
    assert dataclass_from_args(RestoreOptions, args) == RestoreOptions()
    given = parser.parse_args(["train", "restore", "--out", "run", "--l1-only", "--no-residual", "--no-progress",
                               "--model-arg", "base_width=32", "--model-arg", "depth=3", "--gan-loss", "lsgan",
                               "--crop", "96", "--ema", "0.999", "--data", "pairs"])
    options = dataclass_from_args(RestoreOptions, given)
    assert options == RestoreOptions(l1_only=True, residual=False, progress=False, gan_loss="lsgan", crop=96,
                                     model_kwargs={"base_width": 32, "depth": 3}, ema=0.999, data="pairs")
    # every field that the command line takes is an option of its own, under its name
    options_of_parser = {a.dest for a in _train_restore_parser(parser)._actions}
    for f in dataclasses.fields(RestoreOptions):
        if f.metadata.get("cli", True):
            assert f.name in options_of_parser or f"no_{f.name}" in options_of_parser, f.name
    # the experiments that lost are gone, and bad values are refused by argparse
    for removed in (["--d-view", "display"], ["--d-range", "clipped"], ["--d-detail-gain", "4"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "restore", "--out", "run", *removed])
    for bad in (["--ema", "0"], ["--ema", "1"], ["--ema", "x"], ["--gan-loss", "wgan"], ["--crop", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "restore", "--out", "run", *bad])


def test_restore_options_refuse_unknown_choices_and_removed_options(tmp_path):
    from rawcv.options import OptionError

    with pytest.raises(OptionError, match="unknown --sources 'photos': expected one of mixed, synthetic, skimage"):
        RestoreOptions(sources="photos")
    with pytest.raises(TypeError, match="d_view"):
        train_restorer(tmp_path / "run", d_view="display")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("option, model", [("--disc-arg", "patchgan70"), ("--model-arg", "unet_generator")])
def test_a_wrong_network_argument_is_one_line_naming_the_networks_arguments(option, model, tmp_path, capsys):
    from rawcv.cli import main
    from rawcv.models import model_arguments

    code = main(["train", "restore", "--out", str(tmp_path / "run"), option, "bogus=1", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"rawcv train: error: model {model!r} takes no argument 'bogus'")
    assert all(name in err for name in model_arguments(model))
    assert not (tmp_path / "run").exists()


def _tiny_trainer(out, *, epochs, l1_only=False, seed=0):
    from rawcv.train.engine import TrainConfig, make_loader

    train = RestorePairs(8, size=32, noise="high", seed=seed)
    val = RestorePairs(4, size=32, noise="high", seed=seed, split="val")
    torch.manual_seed(seed)
    g = create_model("unet_generator", in_chans=8, num_classes=3, **TINY_G)
    d = None if l1_only else create_model("patchgan70", in_chans=DISCRIMINATOR_CHANNELS, num_classes=1, **TINY_D)
    cfg = TrainConfig(epochs=epochs, lr=2e-4, device="cpu", seed=seed, progress=False)
    return RestoreTrainer(g, RestorationTask(), fresh_loader(train, batch_size=4, seed=seed),
                          make_loader(val, batch_size=4), discriminator=d, config=cfg, out_dir=out,
                          checkpoint_config={"task": "restore", "mode": "l1" if l1_only else "gan"},
                          log=lambda line: None)


def test_gan_checkpoint_round_trip_and_resume_equals_uninterrupted(tmp_path):
    straight = _tiny_trainer(tmp_path / "a", epochs=2)
    straight.fit()
    half = _tiny_trainer(tmp_path / "b", epochs=1)
    half.fit()
    ckpt = load_checkpoint(tmp_path / "b" / "last.pt")
    for key in ("state_dict", "discriminator", "d_optimizer", "optimizer"):
        assert key in ckpt, key
    # the discriminator's view travels with it, in its config
    disc = ckpt["config"]["discriminator"]
    assert disc["view"] == DISCRIMINATOR_VIEW and disc["in_chans"] == DISCRIMINATOR_CHANNELS
    assert ckpt["config"]["config_version"] == CONFIG_VERSION
    d = build_discriminator(ckpt)
    for k, v in half.discriminator.state_dict().items():
        assert torch.equal(d.state_dict()[k], v.cpu())
    resumed = _tiny_trainer(tmp_path / "b", epochs=2)
    resumed.fit(resume=True)
    for (k, v), w in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(v, w), k
    for v, w in zip(straight.discriminator.state_dict().values(), resumed.discriminator.state_dict().values()):
        assert torch.equal(v, w)
    # the optimizers are Adam with beta1 0.5 and the GAN logs the discriminator's loss per epoch
    assert straight.optimizer.param_groups[0]["betas"][0] == 0.5
    assert straight.d_optimizer.param_groups[0]["betas"][0] == 0.5
    assert all(row["train_d_loss"] > 0 for row in straight.history)


def test_gan_with_ema_validates_and_saves_the_averaged_generator(tmp_path):
    from rawcv.train.engine import make_loader
    from rawcv.train.restore import RestorationTask, generate_batch, load_restorer

    res = train_restorer(tmp_path / "run", epochs=2, ema=0.5, lr=1e-2, log=lambda line: None, **TINY_GAN_RUN)
    ckpt = torch.load(res.last_path, weights_only=True)
    assert ckpt["ema"]["decay"] == 0.5 and ckpt["ema"]["updates"] == 2 and "discriminator" in ckpt
    assert any(not torch.equal(v, ckpt["ema"]["training_state_dict"][k]) for k, v in ckpt["state_dict"].items())
    # the validation PSNR of the last epoch is the averaged generator's, recomputed here from last.pt
    model, loaded, _ = load_restorer(res.last_path, device="cpu")
    val = RestorePairs(4, split="val", seed=0, size=32, noise="high", sources="mixed")
    task = RestorationTask()

    def val_psnr(generator):
        state = task.init_metrics()
        with torch.no_grad():
            for batch in make_loader(val, batch_size=8):
                task.update_metrics(state, generate_batch(generator, batch, residual=True), batch["target"])
        return task.compute_metrics(state)["psnr"]

    averaged = val_psnr(model)
    assert res.history[-1]["val_psnr"] == pytest.approx(averaged, abs=1e-4)
    model.load_state_dict(ckpt["ema"]["training_state_dict"])
    assert abs(val_psnr(model) - averaged) > 1e-2          # the training weights score otherwise
    assert loaded["config"]["residual"] is True


def test_discriminator_scores_real_and_fake_in_one_batch(tmp_path):
    """Every discriminator call of a GAN step holds the fake AND the real pairs (2 x batch): with
    BatchNorm, separate batches are each normalised by their own statistics, which erases a
    difference of noise level or texture and left D at chance (0.50 / 0.50)."""
    trainer = _tiny_trainer(tmp_path, epochs=1)
    sizes = []
    trainer.discriminator.register_forward_hook(lambda module, args, out: sizes.append(args[0].shape[0]))
    batch = next(iter(trainer.train_loader))
    trainer._set_train_mode(True)
    trainer.train_step(batch)
    n = batch["target"].shape[0]
    assert sizes == [2 * n, 2 * n]


def test_train_smoke_loss_goes_down(tmp_path):
    res = train_restorer(tmp_path / "l1", l1_only=True, model_kwargs=TINY_G, noise="high", crop=32,
                         train_size=32, val_size=8, epochs=6, batch_size=8, lr=2e-3, device="cpu",
                         progress=False, log=lambda line: None)
    losses = [row["train_loss"] for row in res.history]
    assert losses[-1] < 0.75 * losses[0]   # 6 tiny epochs: a clear fall, not convergence
    assert res.history[-1]["val_psnr"] > res.history[0]["val_psnr"]
    gan = train_restorer(tmp_path / "gan", model_kwargs=TINY_G, disc_kwargs=TINY_D, noise="high", crop=32,
                         train_size=16, val_size=4, epochs=2, batch_size=8, device="cpu", progress=False,
                         log=lambda line: None)
    row = gan.history[-1]
    assert np.isfinite(row["train_d_loss"]) and row["train_d_loss"] > 0
    cfg = torch.load(tmp_path / "gan" / "best.pt", weights_only=True)["config"]
    assert cfg["mode"] == "gan" and cfg["target"] == "camera_wb_linear" and cfg["config_version"] == CONFIG_VERSION
    assert cfg["discriminator"]["view"] == DISCRIMINATOR_VIEW and cfg["discriminator"]["in_chans"] == 10
    assert not {"d_view", "d_range", "d_detail_gain"} & set(cfg)


def _as_version_1(path, **legacy):
    """Rewrite the GAN checkpoint ``path`` as rawcv wrote it before ``config_version``: no view in
    the discriminator's config, the options in ``legacy`` (``d_view``, ``d_range``,
    ``d_detail_gain``) at the top; an option left out did not exist yet."""
    ckpt = torch.load(path, weights_only=True)
    cfg = ckpt["config"]
    del cfg["config_version"]
    cfg["discriminator"].pop("view")
    cfg.update(legacy)
    ckpt["discriminator_config"] = dict(cfg["discriminator"])
    torch.save(ckpt, path)


#: The options of a version-1 run that saw its pairs as rawcv trains today.
TODAYS_VIEW_V1 = {"d_view": "display+detail", "d_range": "extended", "d_detail_gain": 1.0}


def test_migrate_config_upgrades_old_configs_step_by_step(tmp_path):
    disc = {"name": "patchgan70", "in_chans": 10, "num_classes": 1, "kwargs": {"base_width": 32}}
    gan = {"name": "unet_generator", "task": "restore", "mode": "gan", "discriminator": disc}
    today = migrate_config({**gan, **TODAYS_VIEW_V1})
    assert today["config_version"] == CONFIG_VERSION == 2
    assert today["discriminator"] == {**disc, "view": DISCRIMINATOR_VIEW}
    assert not {"d_view", "d_range", "d_detail_gain"} & set(today)
    assert migrate_config(today) == today                     # a current config is left as it is
    # written before the options existed: the pair alone, clipped (the rawcv of then)
    oldest = migrate_config(gan)
    assert oldest["discriminator"]["view"] == {"name": "display", "value_range": "clipped", "detail_gain": None,
                                               "detail_sigma": None}
    # before the gain was an option: the detail band at 4
    assert migrate_config({**gan, "d_view": "display+detail"})["discriminator"]["view"]["detail_gain"] == 4.0
    # an L1 run has no discriminator to record a view for
    l1 = migrate_config({"name": "unet_generator", "task": "restore", "mode": "l1", "discriminator": None,
                         "d_view": None, "d_range": None, "d_detail_gain": None})
    assert l1 == {"name": "unet_generator", "task": "restore", "mode": "l1", "discriminator": None,
                  "config_version": CONFIG_VERSION}
    assert "config_version" not in gan and "view" not in disc   # the input is not changed
    for bad in (3, 0, "2", 1.5):
        with pytest.raises(CheckpointError, match="config_version"):
            migrate_config({**gan, "config_version": bad})
    # every checkpoint that is read goes through it
    g = create_model("unet_generator", in_chans=8, num_classes=3, **TINY_G)
    torch.save({"state_dict": g.state_dict(), "config": {**g.rawcv_config, "task": "restore", "mode": "l1"}},
               tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["config"]["config_version"] == CONFIG_VERSION
    torch.save({"state_dict": g.state_dict(), "config": {**g.rawcv_config, "config_version": 9}}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match=r"new\.pt: its config has config_version 9; this rawcv reads 1 to 2"):
        load_checkpoint(tmp_path / "new.pt")


def test_gan_init_from_a_gan_keeps_its_discriminator(tmp_path):
    common = TINY_GAN_RUN
    train_restorer(tmp_path / "gan", epochs=1, log=lambda line: None, **common)
    source = torch.load(tmp_path / "gan" / "last.pt", weights_only=True)["discriminator"]
    weights = [k for k in source if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "last.pt").write_bytes((tmp_path / "gan" / "last.pt").read_bytes())
    _as_version_1(tmp_path / "v1" / "last.pt", **TODAYS_VIEW_V1)
    # from the GAN, and from the same run as an older rawcv wrote it (the same view once migrated)
    for start in ("gan", "v1"):
        lines = []
        # lr 1e-12: Adam moves every weight by ~1e-12, so they stay where the initialisation put them
        cont = train_restorer(tmp_path / f"cont_{start}", epochs=1, lr=1e-12, init=tmp_path / start / "last.pt",
                              seed=5, log=lines.append, **common)
        assert any("initialised the discriminator" in line for line in lines), start
        kept = torch.load(cont.last_path, weights_only=True)["discriminator"]
        assert weights and all(torch.allclose(kept[k], source[k], rtol=0, atol=1e-9) for k in weights)
    # another discriminator gets a fresh one; so does the same network that saw the pairs in a
    # view rawcv no longer trains (here the detail band at gain 4: the same 10 channels), with a note
    lines = []
    res = train_restorer(tmp_path / "other", epochs=1, lr=1e-12, init=tmp_path / "gan" / "last.pt",
                         log=lines.append, **{**common, "disc_kwargs": {"base_width": 4}})
    assert not any("initialised the discriminator" in line for line in lines)
    assert torch.load(res.last_path, weights_only=True)["config"]["discriminator"]["kwargs"]["base_width"] == 4
    (tmp_path / "v1" / "last.pt").write_bytes((tmp_path / "gan" / "last.pt").read_bytes())
    _as_version_1(tmp_path / "v1" / "last.pt", **{**TODAYS_VIEW_V1, "d_detail_gain": 4.0})
    lines = []
    train_restorer(tmp_path / "gain4", epochs=1, lr=1e-12, init=tmp_path / "v1" / "last.pt", log=lines.append,
                   **common)
    assert not any("initialised the discriminator" in line for line in lines)
    assert any("saw the pairs as display+detail (extended range, detail gain 4)" in line for line in lines)


def test_gan_resume_keeps_the_discriminator_and_its_view(tmp_path):
    common = dict(TINY_GAN_RUN, log=lambda line: None)
    train_restorer(tmp_path / "run", epochs=1, **common)
    first = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["discriminator"]
    res = train_restorer(tmp_path / "run", epochs=2, resume=True, **common)
    ckpt = load_checkpoint(res.last_path)
    assert len(res.history) == 2 and ckpt["config"]["discriminator"]["view"] == DISCRIMINATOR_VIEW
    assert any(not torch.equal(ckpt["discriminator"][k], first[k]) for k in first)      # and it went on training
    # a run of an older rawcv that saw the pairs as today resumes too
    _as_version_1(tmp_path / "run" / "last.pt", **TODAYS_VIEW_V1)
    res = train_restorer(tmp_path / "run", epochs=3, resume=True, **common)
    assert len(res.history) == 3 and load_checkpoint(res.last_path)["config"]["discriminator"]["view"] == \
        DISCRIMINATOR_VIEW


def test_a_run_in_a_removed_discriminator_view_predicts_but_does_not_resume(tmp_path, capsys):
    from rawcv.cli import main
    from rawcv.train.restore import generator_options, restore_packed

    train_restorer(tmp_path / "run", epochs=1, log=lambda line: None, **TINY_GAN_RUN)
    _as_version_1(tmp_path / "run" / "last.pt")     # before the view options: display, clipped
    # the generator is all that prediction needs
    model, ckpt, _ = load_restorer(tmp_path / "run" / "last.pt", device="cpu")
    assert ckpt["config"]["discriminator"]["view"]["value_range"] == "clipped"
    pair = RestorePairs(1, size=32, noise="high").pair(0)
    assert restore_packed(model, pair.packed, pair.variance, pair.gains, **generator_options(ckpt)).shape == \
        (32, 32, 3)
    code = main(["train", "restore", "--out", str(tmp_path / "run"), "--resume", "--epochs", "2", "--device", "cpu",
                 "--crop", "32", "--train-size", "8", "--val-size", "4", "--noise", "high", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "its discriminator saw the pairs as display (clipped range), a view rawcv no longer trains" in err
    assert "--init" in err and not (tmp_path / "run" / "run_resumed.json").exists()


# --------------------------------------------------------------------------------------------
# predict / eval through the command line
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("restore")
    train_restorer(root / "run", l1_only=True, model_kwargs=TINY_G, noise="high", crop=32, train_size=16,
                   val_size=4, epochs=1, batch_size=8, device="cpu", progress=False, log=lambda line: None)
    data = root / "data"
    res = rawcv("synth", "--task", "restore", "-n", 4, "--size", 48, "--noise", "high", "--cfa", "random",
                "--seed", 1, "--split", "0,0,4", "-o", data, "--quiet")
    assert res.returncode == 0, res.stderr
    return root / "run", data


def test_synth_restore_set_reads_the_manifest(trained):
    _, data = trained
    ds = SynthRestoreSet(data, "test")
    assert len(ds) == 4
    p = ds.pair(0)
    assert p.lambda_shot == pytest.approx(0.012)
    # the target brought back through the colour-matrix stage is the clean linear sRGB of the dataset
    clean = np.load(data / ds.items[0]["clean"])
    from rawcv.data.restore import canonical_offset

    dy, dx = canonical_offset(p.meta.cfa)
    h, w = p.target.shape[:2]
    np.testing.assert_allclose(camera_to_output(p.target, p.meta, "linear"), clean[dy:dy + h, dx:dx + w],
                               atol=1e-4)


def test_cli_predict_restore_png_tiff_and_no_overwrite(trained, tmp_path):
    import imageio.v3 as iio
    import tifffile

    run, data = trained
    files = sorted((data / "test").glob("*.dng"))
    res = rawcv("predict", "restore", "--weights", run, files[0], "-o", tmp_path / "out.png", "--device", "cpu",
                "--tile", 32, "--overlap", 16)
    assert res.returncode == 0, res.stderr
    assert "NoiseProfile" in res.stdout
    img = iio.imread(tmp_path / "out.png")
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    lin = rawcv("predict", "restore", "--weights", run, files[0], "-o", tmp_path / "out.tiff", "--linear",
                "--device", "cpu")
    assert lin.returncode == 0, lin.stderr
    arr = tifffile.imread(tmp_path / "out.tiff")
    assert arr.dtype == np.float32 and arr.shape == (48, 48, 3)
    again = rawcv("predict", "restore", "--weights", run, files[0], "-o", tmp_path / "out.png", "--device", "cpu")
    assert again.returncode == 1 and "exists" in again.stderr
    bad = rawcv("predict", "restore", "--weights", run, files[0], "-o", tmp_path / "x.png", "--linear")
    assert bad.returncode == 1 and ".tiff" in bad.stderr
    several = rawcv("predict", "restore", "--weights", run, data / "test", "-o", tmp_path / "many", "--device",
                    "cpu", "--noise", "high")
    assert several.returncode == 0, several.stderr
    assert len(list((tmp_path / "many").glob("*.png"))) == 4


def test_cli_eval_restore_reports_models_and_baselines(trained, tmp_path):
    run, data = trained
    res = rawcv("eval", "restore", "--weights", run, "--data", data, "--out", tmp_path, "--device", "cpu",
                "--show", 2, "--self-ensemble")
    assert res.returncode == 0, res.stderr
    for word in ("median3_mosaic", "mean3_rgb", "nlm_vst", "PSNR lin", "best classical"):
        assert word in res.stdout
    out = json.loads((tmp_path / "eval_restore.json").read_text())
    assert out["n"] == 4 and len(out["models"]) == 2 and len(out["weights"]) == 1
    plain, ensemble = out["models"]
    assert ensemble == plain + " x8"
    # the mean of 8 estimates of the same pixels: close to the plain output, not equal to it
    gap = abs(out["methods"][ensemble]["psnr_linear"] - out["methods"][plain]["psnr_linear"])
    assert 0 < gap < 3
    for name, m in out["methods"].items():
        assert np.isfinite(m["psnr_linear"]) and 0 < m["ssim_srgb"] <= 1, name
        assert m["detail_gain"] < 1.5 and m["detail_energy"] > 0 and m["detail_invented"] >= 0, name
    # denoising beats no denoising at high noise
    assert out["methods"]["nlm_vst"]["psnr_linear"] > out["methods"]["bilinear"]["psnr_linear"]
    assert (tmp_path / "restore_side_by_side.png").is_file()
    syn = rawcv("eval", "restore", "--synthetic", 2, "--size", 32, "--noise", "high", "--out", tmp_path / "s",
                "--no-nlm", "--json")
    assert syn.returncode == 0, syn.stderr
    assert "nlm_vst" not in json.loads(syn.stdout)["methods"]
