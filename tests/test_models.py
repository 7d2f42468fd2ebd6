"""Tests of rawcv.models: the registry, every registered network, and architecture invariants."""

from __future__ import annotations

import inspect
import json

import pytest
import torch
from torch import nn

from rawcv.models import (
    MAX_PARAMETERS,
    TASKS,
    ModelArgumentError,
    UnknownModelError,
    count_parameters,
    create_model,
    freeze_backbone,
    list_models,
    model_arguments,
    model_task,
    register_model,
)
from rawcv.models.layers import make_activation, receptive_field
from rawcv.models.unet import UNet

# Narrow versions of the default architectures, so the whole file runs in seconds on a CPU.
# A model missing here is tested at its default size.
SMALL_KWARGS = {
    "vgg11": {"width": 8},
    "resnet18": {"width": 8},
    "densenet_small": {"growth_rate": 4, "block_layers": [2, 2, 2]},
    "googlenet_small": {"width": 16},
    "unet_small": {"base_width": 8},
    "unet": {"base_width": 8},
    "unet_generator": {"base_width": 8, "depth": 3},
    "patchgan70": {"base_width": 8},
}

EXPECTED_MODELS = {
    "classify": {"lenet5", "vgg11", "resnet18", "densenet_small", "googlenet_small"},
    "segment": {"unet_small", "unet"},
    "restore_generator": {"unet_generator"},
    "restore_discriminator": {"patchgan70"},
}


def _small_model(name: str, **overrides) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, **{**SMALL_KWARGS.get(name, {}), **overrides})


def _input_and_output_shape(task: str, config: dict, batch: int, size: int):
    """A random input for a model of ``task`` and the output shape its task promises."""
    x = torch.randn(batch, config["in_chans"], size, size)
    channels = config["num_classes"]
    if task == "classify":
        return x, (batch, channels)
    if task in ("segment", "restore_generator"):
        # Both are built for packed raw here, so the output is at full sensor resolution.
        return x, (batch, channels, 2 * size, 2 * size)
    if task == "restore_discriminator":
        # Three stride-2 4x4 convs give size/8, then two stride-1 4x4 convs (padding 1) lose 1 each.
        return x, (batch, channels, size // 8 - 2, size // 8 - 2)
    pytest.fail(f"no output-shape rule for task {task!r}; add one to this test")


# ---------------------------------------------------------------- every registered model


@pytest.mark.parametrize("name", list_models())
def test_every_model_forward_shape_and_gradients(name):
    task = model_task(name)
    overrides = {"in_chans": 4} if task == "segment" else {}  # packed raw -> full-res output
    model = _small_model(name, **overrides).train()
    x, expected_shape = _input_and_output_shape(task, model.rawcv_config, batch=2, size=64)

    output = model(x)

    assert tuple(output.shape) == expected_shape
    assert torch.isfinite(output).all()
    output.square().mean().backward()
    for param_name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name}: {param_name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name}: {param_name} has a non-finite gradient"
        # An all-zero gradient means a disconnected branch or a bias cancelled by BatchNorm.
        assert parameter.grad.abs().sum() > 0, f"{name}: {param_name} has an all-zero gradient"


def test_registry_lists_expected_models_by_task():
    for task in TASKS:
        assert set(list_models(task)) == EXPECTED_MODELS[task]
        for name in list_models(task):
            assert model_task(name) == task
    assert list_models() == sorted(set().union(*EXPECTED_MODELS.values()))


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS["classify"]))
def test_classifiers_accept_any_size_from_32(name):
    model = _small_model(name, in_chans=3, num_classes=7).eval()
    with torch.no_grad():
        assert tuple(model(torch.randn(1, 3, 32, 32)).shape) == (1, 7)
        assert tuple(model(torch.randn(1, 3, 40, 56)).shape) == (1, 7)


@pytest.mark.parametrize(
    "name, kwargs, expected_count",
    [
        # Reference counts of the published architectures.
        ("lenet5", {"in_chans": 1, "num_classes": 10}, 61_706),
        ("resnet18", {"in_chans": 3, "num_classes": 1000, "small_input": False}, 11_689_512),  # torchvision
        ("patchgan70", {"in_chans": 6}, 2_768_705),  # pix2pix NLayerDiscriminator, 3 layers
    ],
)
def test_parameter_counts_match_reference_architectures(name, kwargs, expected_count):
    model = create_model(name, **kwargs)
    assert sum(p.numel() for p in model.parameters()) == expected_count


# ---------------------------------------------------------------- registry behaviour


def test_unknown_model_error_lists_available_models():
    with pytest.raises(UnknownModelError) as excinfo:
        create_model("resnet19")
    message = str(excinfo.value)
    assert message.startswith("unknown model 'resnet19'")
    assert "did you mean 'resnet18'" in message
    for name in list_models():
        assert name in message
    assert isinstance(excinfo.value, KeyError) and isinstance(excinfo.value, ValueError)
    with pytest.raises(UnknownModelError, match="available: "):
        model_task("nope")


def test_list_models_rejects_unknown_task():
    with pytest.raises(ValueError, match="unknown task 'classification'"):
        list_models("classification")


def test_register_model_rejects_duplicates_and_bad_tasks():
    before = list_models()
    with pytest.raises(ValueError, match="already registered"):
        register_model("resnet18", task="classify")
    with pytest.raises(ValueError, match="unknown task"):
        register_model("new_model", task="detect")
    with pytest.raises(TypeError, match="in_chans"):
        register_model("new_model", task="classify")(lambda num_classes=10: nn.Identity())
    with pytest.raises(TypeError, match="no \\*\\*kwargs"):
        register_model("new_model", task="classify")(lambda in_chans=4, num_classes=10, **kw: nn.Identity())
    assert list_models() == before


# ---------------------------------------------------------------- arguments and sizes


@pytest.mark.parametrize("name", list_models())
def test_a_wrong_argument_is_one_error_naming_every_argument_the_model_takes(name):
    reference = [k for k in inspect.signature(_factory(name)).parameters if k not in ("in_chans", "num_classes")]
    assert list(model_arguments(name)) == reference
    with pytest.raises(ModelArgumentError) as info:
        create_model(name, bogus=1)
    message = str(info.value)
    assert "\n" not in message and f"model {name!r} takes no argument 'bogus'" in message
    for argument in reference:
        assert argument in message
    assert isinstance(info.value, TypeError)          # what the factory itself would have raised


def _factory(name):
    from rawcv.models._registry import _REGISTRY

    return _REGISTRY[name].factory


@pytest.mark.parametrize("kwargs, expected", [
    ({"width": "16"}, "width must be an integer"),
    ({"width": 16.5}, "width must be an integer"),
    ({"small_input": 1}, "small_input must be true or false"),
    ({"width": 0}, "empty layer"),
    ({"width": -2}, "does not build"),
    ({"stem_stride": 3}, "stem_stride must be 1 or 2"),
])
def test_arguments_of_the_wrong_type_or_value_are_one_line_errors(kwargs, expected):
    with pytest.raises(ModelArgumentError, match=expected) as info:
        create_model("resnet18", **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("arguments", [{"in_chans": 4.0}, {"num_classes": True}, {"num_classes": 0}])
def test_channels_and_classes_must_be_positive_integers(arguments):
    with pytest.raises(ModelArgumentError, match="must be a positive integer"):
        create_model("lenet5", **arguments)


@pytest.mark.parametrize("kwargs", [{"width": 200_000}, {"num_classes": 10**9}])
def test_implausibly_large_models_are_refused_before_anything_is_allocated(kwargs):
    # resnet18 at width 200000 would hold about 1e14 parameters (400 TB): only a model that is
    # never allocated can be refused without the allocator failing first.
    with pytest.raises(ModelArgumentError, match=f"more than the {MAX_PARAMETERS:,}"):
        create_model("resnet18", **kwargs)


@pytest.mark.parametrize("name", list_models())
def test_count_parameters_equals_the_built_model(name):
    kwargs = SMALL_KWARGS.get(name, {})
    built = create_model(name, in_chans=5, num_classes=3, **kwargs)
    assert count_parameters(name, 5, 3, **kwargs) == sum(p.numel() for p in built.parameters())


# Kwargs whose effect is invisible in the state dict, to prove the config carries them.
ROUNDTRIP_EXTRA_KWARGS = {
    "unet_generator": {"final_activation": "sigmoid"},
    "unet_small": {"upsample": "bilinear"},
    "lenet5": {"drop_rate": 0.1},
}


@pytest.mark.parametrize("name", list_models())
def test_rawcv_config_rebuilds_identical_model(name):
    model = _small_model(name, in_chans=5, num_classes=6, **ROUNDTRIP_EXTRA_KWARGS.get(name, {}))
    assert model.rawcv_name == name
    config = json.loads(json.dumps(model.rawcv_config))  # as stored in and read from a checkpoint
    assert config["name"] == name and config["in_chans"] == 5 and config["num_classes"] == 6

    rebuilt = create_model(**config)

    original_state, rebuilt_state = model.state_dict(), rebuilt.state_dict()
    assert list(rebuilt_state) == list(original_state)
    for key, tensor in original_state.items():
        assert rebuilt_state[key].shape == tensor.shape, key
    assert rebuilt.rawcv_config == config
    rebuilt.load_state_dict(original_state)
    x = torch.randn(2, 5, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), model.eval()(x))


def test_config_records_factory_defaults_not_global_ones():
    config = create_model("patchgan70", base_width=8).rawcv_config
    assert config == {"name": "patchgan70", "in_chans": 7, "num_classes": 1, "kwargs": {"base_width": 8}}
    config = create_model("unet_generator", base_width=8, depth=2).rawcv_config
    assert (config["in_chans"], config["num_classes"]) == (8, 3)


def test_create_model_merges_kwargs_and_rejects_clashes_and_non_json():
    model = create_model("vgg11", kwargs={"width": 8}, drop_rate=0.5)
    assert model.rawcv_config["kwargs"] == {"width": 8, "drop_rate": 0.5}
    with pytest.raises(TypeError, match="given twice.*width"):
        create_model("vgg11", kwargs={"width": 8}, width=16)
    with pytest.raises(TypeError, match="JSON"):
        create_model("unet_small", final_activation=nn.Tanh())


# ---------------------------------------------------------------- transfer learning


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS["classify"]))
def test_freeze_backbone_leaves_only_head_trainable(name):
    model = freeze_backbone(_small_model(name))

    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"}
    model(torch.randn(2, 4, 32, 32)).sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.head.parameters())


def test_freeze_backbone_rejects_models_without_backbone():
    with pytest.raises(TypeError, match="backbone"):
        freeze_backbone(_small_model("unet_small"))


# ---------------------------------------------------------------- PatchGAN


def test_receptive_field_formula_on_hand_computed_chains():
    assert receptive_field([(3, 1)]) == 3
    assert receptive_field([(3, 1), (3, 1)]) == 5
    assert receptive_field([(2, 2), (3, 1)]) == 6  # 3 pooled cells of 2 pixels each
    assert receptive_field([(4, 2), (4, 2), (4, 2), (4, 1), (4, 1)]) == 70


def test_patchgan_receptive_field_is_70_analytically():
    model = _small_model("patchgan70")
    assert model.kernel_strides() == [(4, 2), (4, 2), (4, 2), (4, 1), (4, 1)]
    assert model.receptive_field == 70


def test_patchgan_receptive_field_is_70_empirically():
    # Eval mode: train-mode BatchNorm mixes statistics of all positions, so every input
    # pixel would influence every logit. Float64 keeps tiny far-field gradients from rounding.
    model = _small_model("patchgan70", in_chans=3).double().eval()
    image = torch.randn(1, 3, 128, 128, dtype=torch.float64, requires_grad=True)
    logits = model(image)
    assert tuple(logits.shape) == (1, 1, 14, 14)

    logits[0, 0, 7, 7].backward()

    influence = image.grad.abs().sum(dim=(0, 1)) > 0
    rows = influence.any(dim=1).nonzero().flatten()
    cols = influence.any(dim=0).nonzero().flatten()
    # Logit o sees input pixels 8*o - 23 ... 8*o + 46 (padding 1 at every layer).
    assert (rows.min().item(), rows.max().item()) == (33, 102)
    assert (cols.min().item(), cols.max().item()) == (33, 102)
    assert influence.sum().item() == 70 * 70  # every pixel of the window counts, none outside


# ---------------------------------------------------------------- U-Net


@pytest.mark.parametrize("name", ["unet_small", "unet"])
@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_unet_output_size_matches_odd_input_size(name, upsample):
    rgb_model = _small_model(name, in_chans=3, num_classes=2, upsample=upsample).eval()
    packed_model = _small_model(name, in_chans=4, num_classes=2, upsample=upsample).eval()
    with torch.no_grad():
        assert tuple(rgb_model(torch.randn(1, 3, 50, 70)).shape) == (1, 2, 50, 70)
        # Packed raw of a 50x70 sensor is 25x35; the prediction is back at 50x70.
        assert tuple(packed_model(torch.randn(1, 4, 25, 35)).shape) == (1, 2, 50, 70)


def test_unet_packed_input_follows_in_chans_unless_given():
    assert UNet(in_chans=4, depth=1, base_width=4).output_scale == 2
    assert UNet(in_chans=3, depth=1, base_width=4).output_scale == 1
    assert UNet(in_chans=4, depth=1, base_width=4, packed_input=False).output_scale == 1
    assert create_model("unet_generator", base_width=4, depth=1).output_scale == 2  # 8 channels, still packed


def test_unet_final_activation_is_applied():
    model = _small_model("unet_small", in_chans=3, final_activation="sigmoid").eval()
    with torch.no_grad():
        output = model(torch.randn(1, 3, 16, 16) * 10)
    assert output.min() >= 0 and output.max() <= 1
    with pytest.raises(ValueError, match="unknown activation 'softplus2'"):
        make_activation("softplus2")
    with pytest.raises(ValueError, match="unknown upsample"):
        UNet(upsample="nearest")


def test_resnet18_stem_stride_1_on_packed_matches_rgb_feature_maps():
    """Packed raw (H/2 x W/2) with stem_stride=1 reaches the first stage at the size the default
    ImageNet stem gives the full-resolution RGB image (the raw-vs-RGB comparison depends on it)."""
    rgb = create_model("resnet18", in_chans=3, num_classes=6, width=8, small_input=False).eval()
    packed = create_model("resnet18", in_chans=4, num_classes=6, width=8, small_input=False, stem_stride=1).eval()
    with torch.no_grad():
        rgb_stem = rgb.backbone[0](torch.zeros(1, 3, 128, 128))
        packed_stem = packed.backbone[0](torch.zeros(1, 4, 64, 64))
    assert rgb_stem.shape == packed_stem.shape == (1, 8, 32, 32)
    with pytest.raises(ValueError, match="stem_stride must be 1 or 2"):
        create_model("resnet18", small_input=False, stem_stride=4)
