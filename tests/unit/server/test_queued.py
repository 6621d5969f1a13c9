"""The Kafka-queue server mode over a fake runtime: writes and definitions are forwarded,
Backpressure answers 503 + Retry-After, ``GET /cluster`` shows the runtime's status."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
import pytest

from kapacity.alert.handlerspec import HandlerSpec
from kapacity.models import Point
from kapacity.runtime.errors import Backpressure, RuntimeStateError
from kapacity.server.app import create_app
from kapacity.server.engine import Engine
from kapacity.server.memrepo import MemoryRepository
from kapacity.server.queued import QueuedEngine
from kapacity.server.runner import BackgroundServer
from tests.unit.server.fakes import FakeCompiler, FakeFactory, fake_match

V1 = "/kapacitor/v1"
TASK = {"id": "cpu_alert", "script": "crit usage > 90 topic cpu", "dbrps": [{"db": "telegraf", "rp": "autogen"}],
        "status": "enabled"}


class FakeRuntime:
    """Records what the server forwards; ``full`` makes submit_points raise Backpressure."""

    def __init__(self) -> None:
        self.queue: object | None = None
        self.points: list[Point] = []
        self.calls: list[tuple[Any, ...]] = []
        self.full = False
        self.stopped = False

    def start(self) -> None:
        self.queue = object()

    def stop(self, timeout: float = 30.0) -> bool:
        self.stopped = True
        self.queue = None
        return True

    def submit_points(self, points: Sequence[Point]) -> None:
        if self.stopped:
            raise RuntimeStateError("the runtime is not running")
        if self.full:
            raise Backpressure(100, 100, 0.0)
        self.points.extend(points)

    def define_task(self, task_id: str, script: str, *, vars: Mapping[str, Any] | None = None,
                    dbrps: Sequence[tuple[str, str]] = (), enabled: bool = True) -> None:
        self.calls.append(("define", task_id, script, list(dbrps), enabled))

    def delete_task(self, task_id: str) -> None:
        self.calls.append(("delete", task_id))

    def put_handler(self, spec: HandlerSpec) -> HandlerSpec:
        self.calls.append(("put_handler", spec.topic, spec.id, spec.kind))
        return spec

    def delete_handler(self, topic: str, handler_id: str) -> None:
        self.calls.append(("delete_handler", topic, handler_id))

    def status(self) -> dict[str, Any]:
        return {"instance": "a", "queue": "kafka", "accepting": True, "pending_points": 0,
                "refused_points": 0, "stages": {"engine": {"partitions": [0, 1], "lag": 0}}}


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime()


def _serve(engine: Engine) -> Iterator[httpx.Client]:
    engine.start()
    server = BackgroundServer(create_app(engine)).start()
    try:
        with httpx.Client(base_url=server.url) as c:
            yield c
    finally:
        server.stop()
        engine.close()


@pytest.fixture
def client(runtime: FakeRuntime) -> Iterator[httpx.Client]:
    engine = QueuedEngine(runtime, compiler=FakeCompiler(), handlers=FakeFactory(),  # type: ignore[arg-type]  # duck-typed Runtime
                          repo=MemoryRepository(), match_compiler=fake_match, hostname="a")
    yield from _serve(engine)


def test_write_goes_to_the_runtime_with_db_and_rp(client: httpx.Client, runtime: FakeRuntime) -> None:
    r = client.post("/write", params={"db": "telegraf", "precision": "s"}, content=b"cpu,host=a usage=95 1\n")
    assert r.status_code == 204, r.text
    [p] = runtime.points
    assert (p.name, p.database, p.retention_policy, p.time) == ("cpu", "telegraf", "autogen", 10**9)


def test_backpressure_answers_503_with_retry_after(client: httpx.Client, runtime: FakeRuntime) -> None:
    runtime.full = True
    r = client.post("/write", params={"db": "telegraf"}, content=b"cpu usage=95\n")
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    assert "ingest buffer full" in r.text
    assert client.get(f"{V1}/debug/vars").json()["kapacitor"]["write"]["values"]["writes_rejected"] == 1


def test_definitions_are_forwarded_and_still_readable(client: httpx.Client, runtime: FakeRuntime) -> None:
    assert client.post(f"{V1}/tasks", json=TASK).status_code == 200
    assert client.patch(f"{V1}/tasks/cpu_alert", json={"status": "disabled"}).status_code == 200
    r = client.post(f"{V1}/alerts/topics/cpu/handlers", json={"id": "h", "kind": "log", "options": {}})
    assert r.status_code == 200, r.text
    assert client.get(f"{V1}/tasks/cpu_alert").json()["status"] == "disabled"
    assert [h["id"] for h in client.get(f"{V1}/alerts/topics/cpu/handlers").json()["handlers"]] == ["h"]
    assert client.delete(f"{V1}/alerts/topics/cpu/handlers/h").status_code == 204
    assert client.delete(f"{V1}/tasks/cpu_alert").status_code == 204
    assert runtime.calls == [
        ("define", "cpu_alert", TASK["script"], [("telegraf", "autogen")], True),
        ("define", "cpu_alert", TASK["script"], [("telegraf", "autogen")], False),
        ("put_handler", "cpu", "h", "log"),
        ("delete_handler", "cpu", "h"),
        ("delete", "cpu_alert"),
    ]


def test_an_invalid_task_is_not_broadcast(client: httpx.Client, runtime: FakeRuntime) -> None:
    r = client.post(f"{V1}/tasks", json={**TASK, "script": "bogus"})
    assert r.status_code == 400
    assert runtime.calls == []


def test_cluster_shows_the_runtime_status(client: httpx.Client) -> None:
    body = client.get(f"{V1}/cluster").json()
    assert (body["mode"], body["instance"]) == ("kafka", "a")
    assert body["stages"]["engine"]["partitions"] == [0, 1]


def test_close_stops_the_runtime(runtime: FakeRuntime) -> None:
    engine = QueuedEngine(runtime, compiler=FakeCompiler(), handlers=FakeFactory(),  # type: ignore[arg-type]  # duck-typed Runtime
                          repo=MemoryRepository())
    engine.start()
    engine.close()
    assert runtime.stopped and runtime.queue is None


def test_cluster_in_embedded_mode() -> None:
    engine = Engine(compiler=FakeCompiler(), handlers=FakeFactory(), repo=MemoryRepository(), hostname="h1")
    for c in _serve(engine):
        body = c.get(f"{V1}/cluster").json()
    assert (body["mode"], body["instance"], body["instances"], body["tasks"]) == ("embedded", "h1", ["h1"], 0)
