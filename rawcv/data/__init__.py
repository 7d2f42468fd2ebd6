"""Datasets of RAW captures for the torch stage: class folders and synthetic manifests.

>>> from rawcv.data import RawFolder, SynthDataset, split_indices
>>> ds = RawFolder("shapes/", layout="packed", cache="memory")          # doctest: +SKIP
>>> train = SynthDataset("synth/", split="train", target="label")      # doctest: +SKIP
"""

from .._optional import require as _require

_require("torch", "rawcv.data")

from .datasets import (
    LAYOUTS,
    TOY_CLASSES,
    RAW_SUFFIXES,
    DatasetError,
    RawFolder,
    SynthDataset,
    center_crop,
    input_spec,
    is_synth_dataset,
    make_toy_folder,
    make_toy_synth,
    pipeline_spec,
    raw_to_tensor,
    read_manifest,
    resolve_pipeline,
    rgb_array,
    split_indices,
)

__all__ = ["RawFolder", "SynthDataset", "split_indices", "raw_to_tensor", "input_spec",
           "resolve_pipeline", "pipeline_spec", "rgb_array", "center_crop", "is_synth_dataset", "read_manifest",
           "DatasetError", "LAYOUTS", "RAW_SUFFIXES", "make_toy_folder", "make_toy_synth", "TOY_CLASSES"]
