"""Tasks: TICKscript graphs that turn points into alert events (pure, no I/O)."""

from kapacity.alert.config import AlertEvent, HandlerSpec, InhibitorRegistry
from kapacity.pipeline.errors import PipelineError
from kapacity.pipeline.task import Task, build_task

__all__ = ["AlertEvent", "HandlerSpec", "InhibitorRegistry", "PipelineError", "Task", "build_task"]
