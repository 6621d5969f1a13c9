"""The queue-based runtime: the exactly-once engine and alert delivery on the internal queue.

>>> from kapacity.runtime import Runtime  # doctest: +SKIP
>>> rt = Runtime(config, data_dir); rt.start(); rt.submit_points(points); rt.stop(10)  # doctest: +SKIP

See ``docs/queue.md`` for the delivery guarantees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kapacity.runtime.errors import Backpressure, RuntimeStateError
from kapacity.runtime.records import EVENT_ID_HEADER, EventRecord, TaskDefinition

if TYPE_CHECKING:
    from kapacity.runtime.app import Runtime

__all__ = ["EVENT_ID_HEADER", "Backpressure", "EventRecord", "Runtime", "RuntimeStateError", "TaskDefinition"]


def __getattr__(name: str) -> Any:
    if name == "Runtime":
        from kapacity.runtime.app import Runtime

        return Runtime
    raise AttributeError(f"module 'kapacity.runtime' has no attribute {name!r}")
