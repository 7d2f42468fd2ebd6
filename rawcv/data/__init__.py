"""Datasets of RAW captures for the torch stage: class folders and synthetic manifests.

>>> from rawcv.data import RawFolder, SynthDataset, split_indices
>>> ds = RawFolder("shapes/", layout="packed", cache="memory")          # doctest: +SKIP
>>> train = SynthDataset("synth/", split="train", target="label")      # doctest: +SKIP
"""

from .._optional import require as _require

_require("torch", "rawcv.data")

from .datasets import (
    LAYOUTS,
    RAW_SUFFIXES,
    DatasetError,
    RawFolder,
    SynthDataset,
    center_crop,
    input_spec,
    is_synth_dataset,
    pipeline_spec,
    raw_to_tensor,
    read_manifest,
    resolve_pipeline,
    rgb_array,
    split_indices,
)
from .loaders import make_loader, make_loaders, seed_worker
from .toy import TOY_CLASSES, make_toy_folder, make_toy_synth

__all__ = ["make_loader", "make_loaders", "seed_worker", "RawFolder", "SynthDataset", "split_indices", "raw_to_tensor", "input_spec",
           "resolve_pipeline", "pipeline_spec", "rgb_array", "center_crop", "is_synth_dataset", "read_manifest",
           "DatasetError", "LAYOUTS", "RAW_SUFFIXES", "make_toy_folder", "make_toy_synth", "TOY_CLASSES"]
