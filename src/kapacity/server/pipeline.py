"""Adapter from :mod:`kapacity.pipeline` tasks to the engine's :class:`RunningTask`.

Every alert event belongs to a topic: the script's ``.topic('name')`` or, like Kapacitor,
the anonymous topic ``main:<task>:<alert node>``. Only ``.topic()`` events are published to
topic handlers; chained handlers (``.kafka()``...) get every event of their node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kapacity.models import Point
from kapacity.alert.templates import GoStruct
from kapacity.pipeline import AlertEvent, Task, build_task
from kapacity.server.contracts import CompiledScript, Emitted, HandlerRef

#: Kapacitor's task master ID, the first part of anonymous topic names.
TASK_MASTER = "main"


def anonymous_topic(task_id: str, node: str) -> str:
    return f"{TASK_MASTER}:{task_id}:{node}"


def _topic_of(task_id: str, node: str, topic: str) -> str:
    return topic or anonymous_topic(task_id, node)


class PipelineTask:
    """A :class:`kapacity.pipeline.Task` as the engine sees it."""

    def __init__(self, task_id: str, task: Task) -> None:
        self.id = task_id
        self.task = task

    def _convert(self, events: list[AlertEvent]) -> list[Emitted]:
        return [
            Emitted(
                alert=e.data, topic=_topic_of(self.id, e.node, e.topic),
                handlers=[HandlerRef(h.kind, h.options) for h in e.handlers],
                publish=bool(e.topic), task=e.task, name=e.name, tags=e.tags,
            )
            for e in events
        ]

    def process(self, point: Point) -> list[Emitted]:
        events = self.task.process(point)
        return self._convert(events) if events else []

    def process_many(self, points: list[Point]) -> list[Emitted]:
        events = self.task.process_many(points)
        return self._convert(events) if events else []

    def tick(self, now_ns: int) -> list[Emitted]:
        events = self.task.tick(now_ns)
        return self._convert(events) if events else []

    def http_out(self, endpoint: str) -> str | None:
        if endpoint not in self.task.graph.http_outs:
            return None
        result = self.task.http_out(endpoint)
        # Before the first result Kapacitor answers with a nil series list.
        return '{"series":null}' if result is None or not result.series else result.to_json()

    def stats(self) -> dict[str, Any]:
        nodes = self.task.stats()
        return {
            "task-stats": {"throughput": 0.0},
            "node-stats": nodes,
        }

    def dot(self) -> str:
        return dot_graph(self.id, self.task.stats())

    def restore_levels(self, levels: Mapping[str, Mapping[str, tuple[int, int]]]) -> None:
        for node in self.task.alert_nodes:
            topic = _topic_of(self.id, node.name, node.config.topic)
            events = levels.get(topic)
            if events:
                node.seed_events(dict(events))


    def snapshot(self) -> dict[str, dict[str, Any]]:
        return self.task.snapshot()

    def restore(self, snapshot: dict[str, dict[str, Any]]) -> None:
        self.task.restore(snapshot)


def dot_graph(task_id: str, node_stats: Mapping[str, Mapping[str, Any]]) -> str:
    """A DOT graph of the nodes with their stats as attributes (Kapacitor's ``dot``).

    Nodes are listed in build order (a source first); edges link consecutive nodes, which is
    exact for the linear chains alerting tasks use.
    """
    names = list(node_stats)
    lines = [f'digraph {task_id} {{']
    for name in names:
        stats = node_stats[name]
        attrs = " ".join(f'{k}="{v}"' for k, v in stats.items() if k != "type")
        lines.append(f"{name} [{attrs} ];")
    for a, b in zip(names, names[1:], strict=False):
        lines.append(f"{a} -> {b};")
    lines.append("}")
    return "\n".join(lines)


class PipelineCompiler:
    """The engine's :class:`TaskCompiler` over :func:`kapacity.pipeline.build_task`."""

    def __init__(self, server_info: GoStruct | None = None) -> None:
        self._server_info = server_info

    def check(self, task_id: str, script: str, vars: Mapping[str, Any]) -> CompiledScript:
        task = build_task(script, task_name=task_id, vars=dict(vars), server_info=self._server_info)
        handlers = tuple(HandlerRef(h.kind, h.options) for a in task.alert_nodes for h in a.config.handlers)
        return CompiledScript(dbrps=tuple(task.dbrps), handlers=handlers)

    def start(self, task_id: str, script: str, vars: Mapping[str, Any]) -> PipelineTask:
        return PipelineTask(
            task_id, build_task(script, task_name=task_id, vars=dict(vars), server_info=self._server_info)
        )
