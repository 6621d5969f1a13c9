"""Where the engine meets the concrete parts: pipeline, store, match expressions,
service tests. The only module that knows their APIs (see :mod:`.contracts`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kapacity.config.model import Config
from kapacity.server.contracts import Repository, TaskCompiler
from kapacity.server.engine import MatchCompiler, MatchContext, MatchFn
from kapacity.server.handlers import HandlerRegistry
from kapacity.server.memrepo import MemoryRepository
from kapacity.server.servicetests import ServiceTest, ServiceTests


def make_compiler(config: Config) -> TaskCompiler:
    from kapacity.alert.templates import server_info
    from kapacity.server.pipeline import PipelineCompiler

    # Templates see `.ServerInfo.Hostname` as Kapacitor's do (from `hostname`).
    return PipelineCompiler(server_info(hostname=config.hostname))


def memory_repository() -> Repository:
    return MemoryRepository()


def open_repository(data_dir: Path, *, persist_events: bool = True) -> Repository:
    """The SQLite store under ``data_dir``; a corrupt or newer store raises StoreError."""
    from kapacity.server.store import open_store

    return open_store(data_dir, persist_events=persist_events)


def make_match_compiler() -> MatchCompiler | None:
    """``match`` expressions via :mod:`kapacity.alert.match` (MatchError names the column)."""
    import dataclasses

    from kapacity.alert.match import MatchContext as EventContext
    from kapacity.alert.match import compile_match

    def compile_(text: str) -> MatchFn:
        matcher = compile_match(text)

        def match(ctx: MatchContext) -> bool:
            event = EventContext.from_alert(ctx.alert, ctx.task)
            if ctx.name or ctx.tags:
                event = dataclasses.replace(event, name=ctx.name or event.name, tags=dict(ctx.tags) or event.tags)
            return matcher(event)

        return match

    return compile_


def make_service_tests(config: Config, registry: HandlerRegistry) -> ServiceTests:
    """``/service-tests``: ``kafka`` (success only once the broker acknowledged)."""
    del registry
    from kapacity.handlers.kafka_service_test import kafka_service_test_options, run_kafka_service_test

    def kafka(options: dict[str, Any]) -> tuple[bool, str]:
        # "example" is Kapacitor's placeholder default: without a cluster of that name, the
        # test uses the only enabled cluster (as handlers without `cluster` do).
        if options.get("cluster") == "example" and not any(c.id == "example" for c in config.kafka):
            options = {**options, "cluster": ""}
        return run_kafka_service_test(config, options)

    return ServiceTests({"kafka": ServiceTest(kafka_service_test_options(), kafka)})
