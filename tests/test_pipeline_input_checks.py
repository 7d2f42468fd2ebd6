"""Inputs the pipeline must refuse the same way on every backend: frames too small for a stage's
window, white-balance gains that are not positive finite numbers, malformed pipeline files."""

from __future__ import annotations

import numpy as np
import pytest

from rawcv import PipelineError, load_pipeline
from rawcv.meta import CameraMeta, RawImage
from rawcv.pipeline import Pipeline

BACKENDS = ("fused", "numba")
PIPELINES = ("default", "linear", "core", "camera")


def raw_of_shape(shape, *, wb=(2.0, 1.0, 1.5), cfa="RGGB"):
    data = np.random.default_rng(0).integers(0, 4096, shape).astype(np.uint16)
    return RawImage(data, CameraMeta(cfa, black_level=64, white_level=4095, as_shot_wb=wb))


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (2, 3), (3, 2), (1, 40), (40, 2)])
def test_mosaics_too_small_to_demosaic_give_one_error_on_every_backend(pipeline, shape):
    raw = raw_of_shape(shape)
    messages = set()
    for backend in BACKENDS:
        with pytest.raises(PipelineError) as err:
            load_pipeline(pipeline).run(raw, backend=backend)
        messages.add(str(err.value))
    assert len(messages) == 1
    h, w = shape
    (message,) = messages
    assert f"the image is {w} x {h} pixels" in message and "needs at least" in message


@pytest.mark.parametrize("shape", [(3, 3), (3, 4), (4, 3), (5, 7)])
def test_smallest_mosaics_that_demosaic_agree_across_backends(shape):
    # the fused kernel's windows are not bounds-checked: at the smallest legal sizes it must read
    # exactly what the stand-alone kernels read, on every run
    raw = raw_of_shape(shape)
    p = load_pipeline("default")
    reference = p.run(raw, backend="numba").image
    for _ in range(3):
        assert np.array_equal(p.run(raw, backend="fused").image, reference)


def test_mosaic_denoise_needs_its_own_minimum():
    # a same-colour 5 x 5 filter on the mosaic needs 3 samples per colour plane: 6 pixels
    p = Pipeline(["black_level", {"stage": "denoise", "method": "mean", "size": 5}, "demosaic"])
    for backend in BACKENDS:
        with pytest.raises(PipelineError, match="stage 'denoise' needs at least 6 x 6"):
            p.run(raw_of_shape((5, 8)), backend=backend)
        assert p.run(raw_of_shape((6, 6)), backend=backend).image.shape == (6, 6, 3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 0.0, -1.0])
@pytest.mark.parametrize("channel", [0, 1, 2])
def test_bad_as_shot_gains_are_refused_by_every_backend(bad, channel):
    wb = [2.0, 1.0, 1.5]
    wb[channel] = bad
    raw = raw_of_shape((8, 8), wb=tuple(wb))
    messages = set()
    for backend in BACKENDS:
        with pytest.raises(PipelineError, match="as-shot white balance") as err:
            load_pipeline("default").run(raw, backend=backend)
        messages.add(str(err.value))
    assert len(messages) == 1


def test_as_shot_gains_are_scaled_to_green_one_on_every_backend():
    raw = raw_of_shape((8, 8), wb=(4.0, 2.0, 3.0))
    records = [load_pipeline("core").run(raw, backend=b).record for b in BACKENDS]
    assert records[0] == records[1]
    assert records[0][1]["gains"] == [2.0, 1.0, 1.5]


def test_yaml_that_is_not_utf8_is_one_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\nstages: [black_level, demosaic]\n".encode("latin-1"))
    with pytest.raises(PipelineError, match=r"latin1\.yaml: not UTF-8 text \(byte 0xe9 at offset 9\)"):
        load_pipeline(path)


@pytest.mark.parametrize("text, value", [("1e30", 1e30), ("-2.5E-3", -2.5e-3), ("+3e2", 300.0), ("1.0e+1", 10.0)])
def test_yaml_reads_exponents_without_a_dot_as_numbers(tmp_path, text, value):
    # YAML 1.2 reads these as floats; YAML 1.1 (PyYAML's default) needs a dot and gave strings
    path = tmp_path / "p.yaml"
    path.write_text(f"stages:\n- black_level\n- demosaic\n- {{stage: vignetting, k1: {text}}}\n")
    assert load_pipeline(path).stages[2].k1 == value


def test_yaml_strings_that_look_like_words_stay_strings(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("stages:\n- black_level\n- demosaic\n- {stage: vignetting, k1: e30}\n")
    with pytest.raises(PipelineError, match="parameter 'k1' must be a number, got 'e30'"):
        load_pipeline(path)
