"""Pipelines: ``Pipeline`` (an ordered, validated list of stages), YAML load/save, and the fused
schedule (:mod:`rawcv.pipeline.schedule`). The stages themselves live beside their maths in
:mod:`rawcv.isp`."""

from ..isp.frame import ColorSpace, Frame
from ..isp.stage import STAGES, Param, Stage, make_stage, register_stage
from .core import Pipeline, PipelineResult, available_pipelines, load_pipeline

__all__ = ["Pipeline", "PipelineResult", "load_pipeline", "available_pipelines", "STAGES", "Stage",
           "Param", "make_stage", "register_stage", "Frame", "ColorSpace"]
