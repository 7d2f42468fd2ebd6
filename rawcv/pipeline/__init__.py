"""Pipelines: the stage registry, ``Pipeline``, YAML load/save and the fused fast path."""

from .core import Pipeline, PipelineResult, available_pipelines, load_pipeline
from .stages import STAGES, Param, Stage, make_stage, register_stage

__all__ = ["Pipeline", "PipelineResult", "load_pipeline", "available_pipelines", "STAGES", "Stage",
           "Param", "make_stage", "register_stage"]
