"""Run a rawcv :class:`~rawcv.pipeline.Pipeline` on the torch backend (CPU or CUDA, batched).

The backend loops over the pipeline's stages and calls each one's torch twin
(:meth:`rawcv.isp.stage.Stage.torch`, attached by :mod:`rawcv.torch.isp`); it never looks at a
stage's name. Per-image metadata (CFA, black and white levels, as-shot gains, colour matrix) may
differ across the batch.

Examples
--------
>>> import numpy as np
>>> from rawcv.meta import CameraMeta, RawImage
>>> from rawcv.pipeline import load_pipeline
>>> raw = RawImage(np.full((8, 8), 1000, np.uint16), CameraMeta("RGGB", black_level=64, white_level=4095))
>>> run_pipeline_torch(load_pipeline("core"), raw, device="cpu").shape
torch.Size([1, 3, 8, 8])
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

from ..isp.frame import RAW, RAW_RGB
from ..meta import RawImage
from ..pipeline import Pipeline, load_pipeline
from ..pipeline.schedule import merge_steps
from .device import DEVICES, resolve_device
from .isp import TorchContext
from .tensors import RawBatch, meta_from_dict, sensor_tensor

def _inputs(raw_or_batch, device):
    """(sensor tensor N x C x H x W on device, list of CameraMeta)."""
    if isinstance(raw_or_batch, RawImage):
        raw_or_batch = [raw_or_batch]
    if isinstance(raw_or_batch, RawBatch):
        data, metas = raw_or_batch.data, raw_or_batch.camera_metas()
    elif isinstance(raw_or_batch, (list, tuple)) and raw_or_batch \
            and all(isinstance(r, RawImage) for r in raw_or_batch):
        shapes = {r.data.shape for r in raw_or_batch}
        if len(shapes) != 1:
            raise ValueError(f"a batch of raw images must share one shape, got {sorted(shapes)}")
        data = torch.stack([sensor_tensor(r, crop_even=False) for r in raw_or_batch])
        metas = [r.meta for r in raw_or_batch]
    else:
        raise TypeError("run_pipeline_torch takes a RawImage, a sequence of RawImage or a RawBatch, "
                        f"got {type(raw_or_batch).__name__}")
    if data.dim() != 4 or data.shape[1] not in (1, 3):
        raise ValueError(f"raw data must be N x 1 x H x W (mosaic) or N x 3 x H x W (linear), got {tuple(data.shape)}")
    linear = [bool(m.linear) for m in metas]
    if any(linear) != all(linear) or (data.shape[1] == 3) != all(linear):
        raise ValueError("a batch must be all Bayer mosaics or all linear raw images")
    return data.to(device), [meta_from_dict(m) for m in metas]


def run_pipeline_torch(pipeline: Union[Pipeline, str], raw_or_batch, device="auto", *,
                       dtype: torch.dtype = torch.float32, exact_levels: bool = True) -> torch.Tensor:
    """Run ``pipeline`` with the torch twins of its stages.

    Parameters
    ----------
    pipeline : Pipeline or str
        A pipeline, or a name / YAML path for :func:`rawcv.load_pipeline`.
    raw_or_batch : RawImage, sequence of RawImage, or RawBatch
        Images of one shape (each with its own metadata), or a :class:`~rawcv.torch.RawBatch` of
        sensor values (``N x 1 x H x W`` mosaics or ``N x 3 x H x W`` linear raw) with
        :func:`~rawcv.torch.meta_dict` metadata.
    device : {"auto", "cpu", "cuda"} or torch.device
        Where to run (``"auto"``: CUDA if available).
    dtype : torch.dtype
        Working float dtype (float32 reproduces the NumPy pipeline; float64 for gradients checks).
    exact_levels : bool
        Run each pair of stages that one step does at once (:meth:`~rawcv.isp.stage.Stage.fuse_with`)
        as that step, as the fused schedule does: ``gamma`` directly followed by ``quantize``
        computes the levels with :func:`~rawcv.torch.isp.encode_quantize` (rawcv's exact threshold
        table: the same levels as the NumPy pipeline bit for bit); ``False`` runs ``pow`` then
        rounding, which may differ by one level on rare values.

    Returns
    -------
    Tensor
        ``N x 3 x H x W`` float (``N x 1 x H x W`` if the pipeline never demosaics a mosaic), or
        the quantised levels as uint8 / uint16 when the pipeline ends with ``quantize``.
    """
    if not isinstance(pipeline, Pipeline):
        pipeline = load_pipeline(pipeline)
    dev = resolve_device(device)
    x, metas = _inputs(raw_or_batch, dev)
    x = x.to(dtype)
    stages = _stages_for_batch(pipeline, metas)
    ctx = TorchContext(metas, kind=RAW_RGB if metas[0].linear else RAW)
    for stage in (merge_steps(stages) if exact_levels else stages):
        x = stage.torch(x, ctx)
        ctx.kind = stage.produces(ctx.kind)
    return x


def _stages_for_batch(pipeline: Pipeline, metas) -> list:
    """The pipeline's stages with the batch's DNG opcodes inserted (:meth:`Pipeline.stages_for`):
    one list of stages runs on the whole batch, so its files must carry the same opcode lists."""
    if pipeline.opcodes != "off" and len({m.opcode_lists for m in metas}) > 1:
        raise ValueError("the images of a batch carry different DNG opcode lists: run them in separate batches, "
                         "or with the pipeline's opcodes off")
    return pipeline.stages_for(metas[0])[0]


def run_numpy_reference(pipeline: Union[Pipeline, str], raws: Sequence[RawImage]) -> torch.Tensor:
    """The NumPy/Numba pipeline's output for each image, stacked as ``N x C x H x W`` (for comparisons).

    Examples
    --------
    >>> from rawcv.meta import CameraMeta
    >>> raw = RawImage(np.full((8, 8), 1000, np.uint16), CameraMeta("RGGB", black_level=64, white_level=4095))
    >>> ref = run_numpy_reference("core", raw)
    >>> ref.shape, ref.dtype, bool(torch.equal(run_pipeline_torch("core", raw, device="cpu"), ref))
    (torch.Size([1, 3, 8, 8]), torch.uint8, True)
    """
    if not isinstance(pipeline, Pipeline):
        pipeline = load_pipeline(pipeline)
    if isinstance(raws, RawImage):
        raws = [raws]
    outs = [np.asarray(pipeline(r)) for r in raws]
    return torch.stack([torch.from_numpy(np.ascontiguousarray(o.transpose(2, 0, 1) if o.ndim == 3 else o[None]))
                        for o in outs])


__all__ = ["DEVICES", "resolve_device", "run_pipeline_torch", "run_numpy_reference"]
