"""Per-image input transforms of ``rawcv train classify --input-transform`` against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rawcv.errors import RawcvError
from rawcv.train.classify import INPUT_TRANSFORMS, InputTransform


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 4, 8, 8, generator=gen, dtype=torch.float64)
    x[1] *= 10.0     # a brighter exposure of the same kind of content
    x[2, 0, 0, 0] = -0.01  # a noisy value below black
    return x


def _reference(name, x):
    out = x.numpy().copy()
    for i, img in enumerate(out):
        if name in ("mean", "mean_sqrt"):
            img = img / max(img.mean(), 1e-4)
        if name in ("sqrt", "mean_sqrt"):
            img = np.sqrt(np.maximum(img, 0))
        if name == "log":
            img = np.log(np.maximum(img, 0) + 1 / 256)
        out[i] = img
    return out


@pytest.mark.parametrize("name", INPUT_TRANSFORMS)
def test_input_transforms_match_closed_forms_per_image(batch, name):
    out = InputTransform(name)(batch)
    np.testing.assert_allclose(out.numpy(), _reference(name, batch), rtol=1e-12, atol=1e-12)
    # One image alone (C x H x W, as a Dataset yields it) gives what it gives inside a batch.
    np.testing.assert_allclose(InputTransform(name)(batch[1]).numpy(), out[1].numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", ["mean", "mean_sqrt"])
def test_exposure_invariant_transforms_ignore_exposure(batch, name):
    img = batch[0].clamp(min=0)
    tf = InputTransform(name)
    torch.testing.assert_close(tf(img * 7.5), tf(img), rtol=1e-12, atol=1e-12)


def test_mean_sqrt_stabilises_shot_noise_variance():
    """Poisson-like noise (variance proportional to the signal) has about the same standard
    deviation at every level after ``mean_sqrt``: what the transform is for."""
    gen = torch.Generator().manual_seed(1)
    levels = torch.tensor([0.05, 0.2, 0.8], dtype=torch.float64).repeat_interleave(20000)
    scale = 1e-3
    noisy = levels + torch.randn(levels.shape, generator=gen, dtype=torch.float64) * (scale * levels).sqrt()
    out = InputTransform("mean_sqrt")(noisy.reshape(1, 1, 3, 20000))[0, 0]
    stds = out.std(dim=1)
    assert float(stds.max() / stds.min()) < 1.1
    raw_stds = noisy.reshape(3, 20000).std(dim=1)
    assert float(raw_stds.max() / raw_stds.min()) > 3.5


def test_unknown_transform_names_the_choices():
    with pytest.raises(RawcvError, match="mean_sqrt"):
        InputTransform("gamma")


# ------------------------------------------------------------ --augment-noise (raw-domain noise augmentation)


def test_noise_augmentation_adds_the_camera_models_variance():
    """Flat packed images through the ``--augment --augment-noise high`` augmentation: the added
    variance is lambda_shot * level + lambda_read of the noise model, at whatever exposure the
    augmentation drew."""
    from rawcv.synth import parse_noise
    from rawcv.train.classify import default_augmentation

    torch.manual_seed(0)
    aug = default_augmentation("packed", "high")
    params = parse_noise("high")
    for _ in range(4):
        out = aug(torch.full((4, 96, 96), 0.25, dtype=torch.float64))
        level = float(out.mean())
        assert 0.25 * 0.69 < level < 0.25 * 1.41            # the exposure range (0.7, 1.4)
        expected = params.lambda_shot * level + params.lambda_read
        assert float(out.var()) == pytest.approx(expected, rel=0.06)


def test_noise_levels_sample_the_range_reproducibly_and_rgb_is_refused():
    from rawcv.train.classify import NoiseLevels, default_augmentation

    levels = NoiseLevels("1e-4:6e-3")
    drawn = [levels(torch.Generator().manual_seed(s)) for s in range(20)]
    assert all(1e-4 <= shot <= 6e-3 and read > 0 for shot, read in drawn)
    assert len({shot for shot, _ in drawn}) > 10
    assert levels(torch.Generator().manual_seed(3)) == drawn[3]
    with pytest.raises(RawcvError, match="needs --layout packed"):
        default_augmentation("rgb", "high")
    with pytest.raises(RawcvError, match="bad --augment-noise"):
        NoiseLevels("loud")
