"""One shared tester over every registered stage (kornia's BaseTester, timm's loop over models):
for each stage, each of its parameter cases and each place in a pipeline it accepts, on every
Bayer layout:

* smoke and shapes: the stage-by-stage (Numba) run gives the kind and shape the stage declares;
* the fused schedule gives the stage-by-stage result bit for bit (image, saturation, record);
* the torch twin gives the Numba result (to float32 rounding; quantised levels exactly);
* exception messages name the stage and the parameter;
* gradcheck of the torch twin where its output is continuous.

A stage added to :mod:`rawcv.isp` is picked up here without a line of test code; the last tests
add a toy stage from outside the package to prove that a stage needs nothing but its declaration.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from rawcv.errors import PipelineError
from rawcv.isp import STAGES, FusedOp, Fusion, Param, Stage, register_stage
from rawcv.isp.frame import DISPLAY, MOSAIC, QUANTIZED, RAW, RGB
from rawcv.meta import BAYER_PATTERNS, CameraMeta, RawImage
from rawcv.pipeline import Pipeline

SHAPE = (13, 18)            # odd height: a partial 2 x 2 tile at the bottom
BLACK = (60.0, 64.0, 58.0, 62.0)
WHITE = 4000.0
XYZ_TO_CAM = ((0.9020, -0.2890, -0.0715), (-0.4535, 1.2436, 0.2348), (-0.0934, 0.1919, 0.7086))

# parameter values a generic walk over choices and numbers would not reach (required together)
EXTRA_CASES = {
    "black_level": [{"black": [50, 70, 55, 65], "white": 3900.0}],
    "white_balance": [{"method": "manual", "gains": [2.0, 1.0, 1.5]}],
    "color_matrix": [{"matrix": [1.2, -0.1, -0.1, -0.2, 1.3, -0.1, 0.0, -0.3, 1.3]}],
}


def parameter_cases(cls) -> list:
    """Defaults, every choice of every parameter, every number moved off its default, and the
    extra cases above; combinations the stage itself refuses are left out."""
    raw = [{}]
    for p in cls.params:
        if p.choices:
            raw += [{p.name: c} for c in p.choices if c != p.default]
        elif p.kind == "float" and p.default is not None:
            raw.append({p.name: p.default + 0.3})
    raw += EXTRA_CASES.get(cls.name, [])
    cases = []
    for values in raw:
        try:
            cls(**values)
        except PipelineError:
            continue
        cases.append(values)
    return cases


def placements(stage) -> list:
    """Pipelines that put ``stage`` at each kind of input it accepts (and those that continue
    past it to a demosaic where it leaves a mosaic)."""
    out = []
    if RAW in stage.accepts:
        out += [[stage], [stage, "demosaic"]]
    if MOSAIC in stage.accepts:
        out += [["black_level", stage], ["black_level", stage, "demosaic"]]
    if RGB in stage.accepts:
        out.append(["black_level", "demosaic", stage])
    if DISPLAY in stage.accepts:
        out.append(["black_level", "demosaic", "gamma", stage])
    pipelines = []
    for steps in out:
        try:
            pipelines.append(Pipeline(steps, name=f"{stage.name} test"))
        except PipelineError:
            continue            # e.g. a stage that must stay last, followed by demosaic
    return pipelines


CASES = [pytest.param(cls, values, id=f"{name}-{'-'.join(f'{k}={v}' for k, v in values.items()) or 'defaults'}")
         for name, cls in STAGES.items() for values in parameter_cases(cls)]


def make_raw(cfa, *, seed=0) -> RawImage:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 4096, SHAPE).astype(np.uint16)
    data.flat[::23] = 0              # below black
    data.flat[5::29] = 4095          # above white: saturation
    meta = CameraMeta(cfa, black_level=BLACK, white_level=WHITE, as_shot_wb=(1.9, 1.0, 1.4), xyz_to_cam=XYZ_TO_CAM)
    return RawImage(data, meta)


def expected_shape(pipeline) -> tuple:
    """What the stages declare: each one's ``output_shape`` along the kinds it ``produces`` from
    the raw input of SHAPE; three channels once a stage has made RGB of a mosaic."""
    shape, kind = SHAPE, RAW
    for stage in pipeline.stages:
        shape, kind = stage.output_shape(kind, shape), stage.produces(kind)
    demosaics = any(s.produces(MOSAIC) == RGB and MOSAIC in s.accepts for s in pipeline.stages)
    return shape + (3,) if demosaics else shape


def test_every_stage_is_tested():
    assert {p.values[0].name for p in CASES} == set(STAGES)
    for cls in STAGES.values():
        assert placements(cls()), f"stage {cls.name!r} fits nowhere in a pipeline"


@pytest.mark.parametrize("cls, values", CASES)
def test_fused_equals_stage_by_stage_for_every_placement_and_layout(cls, values):
    for pipeline in placements(cls(**values)):
        for cfa in BAYER_PATTERNS:
            raw = make_raw(cfa)
            numba = pipeline.run(raw, backend="numba")
            fused = pipeline.run(raw, backend="fused")
            where = f"{pipeline.stages} on {cfa}"
            # smoke and shapes: what the stages declare
            assert numba.kind == pipeline.output_kind, where
            assert numba.image.shape == expected_shape(pipeline), where
            assert fused.image.dtype == numba.image.dtype and fused.kind == numba.kind, where
            assert np.array_equal(fused.image, numba.image, equal_nan=True), where
            assert np.array_equal(fused.saturation, numba.saturation), where
            assert fused.record == numba.record, where


@pytest.mark.parametrize("cls, values", CASES)
def test_torch_twin_equals_numba_for_every_placement_and_layout(cls, values):
    torch = pytest.importorskip("torch")
    from rawcv.torch.backend import run_pipeline_torch

    for pipeline in placements(cls(**values)):
        raws = [make_raw(cfa, seed=i) for i, cfa in enumerate(BAYER_PATTERNS)]
        got = run_pipeline_torch(pipeline, raws, device="cpu")      # one batch, a layout per sample
        for raw, out in zip(raws, got):
            ref = pipeline.run(raw, backend="numba").image
            ref = ref.transpose(2, 0, 1) if ref.ndim == 3 else ref[None]
            where = f"{pipeline.stages} on {raw.meta.cfa}"
            if pipeline.output_kind == QUANTIZED:
                assert out.dtype == (torch.uint8 if ref.dtype == np.uint8 else torch.uint16), where
                assert np.array_equal(out.numpy().astype(np.int64), ref.astype(np.int64)), where
            else:
                np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5, err_msg=where)


@pytest.mark.parametrize("name", list(STAGES))
def test_parameter_errors_name_the_stage_and_the_parameter(name):
    cls = STAGES[name]
    with pytest.raises(PipelineError, match=f"stage '{name}': unknown parameter 'bogus'"):
        cls(bogus=1)
    for p in cls.params:
        wrong = "text" if p.kind in ("float", "int", "floats") else 3
        with pytest.raises(PipelineError) as err:
            cls(**{p.name: wrong})
        assert f"stage '{name}'" in str(err.value) and f"'{p.name}'" in str(err.value)


def _gradcheck_cases():
    for param in CASES:
        cls, values = param.values
        stage = cls(**values)
        for pipeline in placements(stage):
            position = pipeline.stages.index(stage) if stage in pipeline.stages else 0
            kind = RAW
            for s in pipeline.stages[:position]:
                kind = s.produces(kind)
            if stage.produces(kind) not in (QUANTIZED,):
                yield pytest.param(cls, values, kind, id=f"{param.id}-{kind}")
                break


@pytest.mark.parametrize("cls, values, kind", list(_gradcheck_cases()))
def test_gradcheck_torch_twin(cls, values, kind):
    torch = pytest.importorskip("torch")
    from rawcv.torch.isp import TorchContext

    stage = cls(**values)
    channels = 3 if kind in (RGB, DISPLAY) else 1
    gen = torch.Generator().manual_seed(0)
    if kind == RAW:
        x = 100 + 3000 * torch.rand(2, 1, 6, 8, generator=gen, dtype=torch.float64)
    else:
        # distinct values away from 0: medians, percentiles and curves are smooth there
        x = (torch.randperm(2 * channels * 48, generator=gen).to(torch.float64) + 20) / (2 * channels * 48 + 40)
        x = x.reshape(2, channels, 6, 8)
    metas = [make_raw(cfa).meta for cfa in ("RGGB", "GBRG")]
    ctx = TorchContext(metas)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: stage.torch(a, ctx), (x,), eps=1e-6, atol=1e-4)


# --- a stage from outside the package: its declaration is all it needs ----------------------------

@njit(cache=False, nogil=True)
def _toy_offset_fused_row(src_row, y, args, scratch, out_row):
    for j in range(src_row.size):
        out_row[j] = src_row[j] + args[0]


class ToyOffset(Stage):
    name = "toy_offset"
    doc = "Add a constant (a test of the stage contract)."
    params = (Param("offset", "float", 0.125, "what to add"),)
    accepts = (MOSAIC, RGB)

    def apply(self, frame):
        out = np.empty(frame.data.shape, np.float32)
        h = out.shape[0]
        flat_in, flat_out = np.ascontiguousarray(frame.data, np.float32).reshape(h, -1), out.reshape(h, -1)
        for y in range(h):
            _toy_offset_fused_row(flat_in[y], y, (np.float32(self.offset),), flat_in[y, :0], flat_out[y])
        return frame.with_data(out)

    def fusion(self, kind):
        return Fusion.POINTWISE

    def fused_op(self, ctx):
        return FusedOp(_toy_offset_fused_row, (np.float32(self.offset),))


@ToyOffset.torch_twin
def _toy_offset_torch(stage, x, ctx):
    import torch
    return x + torch.tensor(stage.offset, dtype=torch.float32).to(x.dtype)


@pytest.fixture
def toy_stage():
    register_stage(ToyOffset)
    yield ToyOffset
    del STAGES["toy_offset"]


def test_a_new_stage_runs_on_every_backend_from_its_declaration_alone(toy_stage):
    steps = ["black_level", {"stage": "toy_offset", "offset": 0.25}, "white_balance", "demosaic",
             {"stage": "toy_offset"}, "gamma", "quantize"]
    p = Pipeline(steps)            # by name, as a YAML file would
    assert p.fused_plan() == [("fused", ["black_level", "toy_offset", "white_balance", "demosaic", "toy_offset",
                                         "gamma+quantize"])]
    for cfa in BAYER_PATTERNS:
        raw = make_raw(cfa)
        numba = p.run(raw, backend="numba").image
        assert np.array_equal(p.run(raw, backend="fused").image, numba)
        unshifted = Pipeline([s for s in steps if not (isinstance(s, dict) and s["stage"] == "toy_offset")])
        assert not np.array_equal(unshifted.run(raw).image, numba)      # the stage did something
    torch = pytest.importorskip("torch")
    from rawcv.torch.backend import run_pipeline_torch

    got = run_pipeline_torch(p, make_raw("RGGB"), device="cpu")[0].permute(1, 2, 0).numpy()
    assert np.array_equal(got, p.run(make_raw("RGGB")).image)
    assert torch.is_tensor(run_pipeline_torch(p, make_raw("GRBG"), device="cpu"))


def test_a_stage_without_a_torch_twin_says_so():
    pytest.importorskip("torch")
    from rawcv.torch.backend import run_pipeline_torch

    class NoTwin(ToyOffset):
        name = "no_twin"

    with pytest.raises(PipelineError, match="stage 'no_twin' has no torch implementation"):
        run_pipeline_torch(Pipeline(["black_level", NoTwin()]), make_raw("RGGB"), device="cpu")
