"""The HTTP API over a fake-backed engine: routes, shapes, status codes."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import pytest

from kapacity.server.app import create_app
from kapacity.server.engine import Engine
from kapacity.server.memrepo import MemoryRepository
from kapacity.server.runner import BackgroundServer
from kapacity.server.servicetests import ServiceTest, ServiceTests
from tests.unit.server.fakes import FakeCompiler, FakeFactory, fake_match

V1 = "/kapacitor/v1"
TASK = {"id": "cpu_alert", "script": "crit usage > 90 topic cpu", "dbrps": [{"db": "telegraf", "rp": "autogen"}]}


@pytest.fixture
def engine() -> Iterator[Engine]:
    e = Engine(compiler=FakeCompiler(), handlers=FakeFactory(), repo=MemoryRepository(),
               match_compiler=fake_match)
    e.start()
    yield e
    e.close()


@pytest.fixture
def client(engine: Engine) -> Iterator[httpx.Client]:
    """The app served by uvicorn on a loopback port (httpx.Client needs a package we lack)."""
    tests = ServiceTests({"kafka": ServiceTest({"topic": "test"}, lambda o: (o["topic"] == "ok", o["topic"]))})
    server = BackgroundServer(create_app(engine, tests)).start()
    try:
        with httpx.Client(base_url=server.url) as c:
            yield c
    finally:
        server.stop()


def test_ping_answers_204_with_version_header(client: httpx.Client) -> None:
    for method in ("GET", "HEAD"):
        r = client.request(method, f"{V1}/ping")
        assert r.status_code == 204
        assert r.headers["X-Kapacitor-Version"]


def test_every_answer_carries_the_version_headers_once(client: httpx.Client) -> None:
    answers = [
        client.post("/write", params={"db": "telegraf"}, content=b"cpu usage=1 1"),  # 204
        client.post("/write", params={"db": "telegraf"}, content=b"cpu usage="),  # 400, plain text
        client.get(f"{V1}/tasks/nope"),  # 404, JSON
        client.get(f"{V1}/tasks"),  # 200
    ]
    assert [r.status_code for r in answers] == [204, 400, 404, 200]
    for r in answers:
        assert r.headers.get_list("X-Kapacitor-Version") == [r.headers["X-Influxdb-Version"]]
        assert r.headers["X-Kapacitor-Version"]


def test_task_lifecycle_and_shape(client: httpx.Client) -> None:
    r = client.post(f"{V1}/tasks", json=TASK)
    assert r.status_code == 200
    task = r.json()
    assert list(task) == ["link", "id", "template-id", "type", "dbrps", "script", "vars", "dot", "status",
                          "executing", "error", "stats", "created", "modified", "last-enabled"]
    assert task["link"] == {"rel": "self", "href": f"{V1}/tasks/cpu_alert"}
    assert (task["status"], task["executing"], task["type"]) == ("disabled", False, "stream")
    r = client.patch(f"{V1}/tasks/cpu_alert", json={"status": "enabled"})
    assert r.json()["executing"] is True and r.json()["stats"]["node-stats"]["alert2"]["points_in"] == 0
    assert [t["id"] for t in client.get(f"{V1}/tasks").json()["tasks"]] == ["cpu_alert"]
    assert client.get(f"{V1}/tasks", params={"pattern": "mem*"}).json()["tasks"] == []
    assert client.delete(f"{V1}/tasks/cpu_alert").status_code == 204
    r = client.get(f"{V1}/tasks/cpu_alert")
    assert r.status_code == 404 and "cpu_alert" in r.json()["error"]


def test_bad_task_inputs_are_400_with_json_error(client: httpx.Client) -> None:
    r = client.post(f"{V1}/tasks", json={**TASK, "script": "oops"})
    assert r.status_code == 400 and r.json()["error"].startswith("invalid TICKscript: line 1 char 1")
    r = client.post(f"{V1}/tasks", content=b"{not json")
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]
    r = client.post(f"{V1}/tasks", json={**TASK, "id": "bad id!"})
    assert r.status_code == 400 and "task ID must contain only" in r.json()["error"]
    r = client.post(f"{V1}/tasks", json={**TASK, "status": "on"})
    assert r.status_code == 400 and "valid: enabled, disabled" in r.json()["error"]
    r = client.patch(f"{V1}/tasks/nope", json={"status": "enabled"})
    assert r.status_code == 404


def test_write_partial_body_processes_good_lines_and_names_the_bad_one(client: httpx.Client, engine: Engine) -> None:
    client.post(f"{V1}/tasks", json={**TASK, "status": "enabled"})
    body = b"cpu,host=a usage=95 1\ncpu,host=b usage=\ncpu,host=c usage=99 2\n"
    r = client.post("/write", params={"db": "telegraf"}, content=body)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith("line 2:")
    engine.wait_idle()
    assert sorted(engine.topics.event_states("cpu")) == ["cpu_alert:a", "cpu_alert:c"]


def test_write_gzip_precision_and_errors(client: httpx.Client, engine: Engine) -> None:
    client.post(f"{V1}/tasks", json={**TASK, "status": "enabled"})
    r = client.post(f"{V1}/write", params={"db": "telegraf", "rp": "autogen", "precision": "s"},
                    content=gzip.compress(b"cpu,host=a usage=95 1700000000\n"),
                    headers={"Content-Encoding": "gzip"})
    assert r.status_code == 204
    engine.wait_idle()
    state = engine.topics.event_state("cpu", "cpu_alert:a")
    assert state is not None and state.time == 1_700_000_000 * 10**9
    assert client.post("/write", content=b"cpu usage=1").text.strip() == "database is required"
    r = client.post("/write", params={"db": "x", "precision": "d"}, content=b"cpu usage=1")
    assert r.status_code == 400 and "valid precisions" in r.text
    r = client.post("/write", params={"db": "x"}, content=b"garbage", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.text


def test_topics_events_and_handlers(client: httpx.Client, engine: Engine) -> None:
    client.post(f"{V1}/tasks", json={**TASK, "status": "enabled"})
    client.post("/write", params={"db": "telegraf"}, content=b"cpu,host=a usage=95 1\n")
    engine.wait_idle()
    topics = client.get(f"{V1}/alerts/topics").json()
    assert topics["topics"][0] == {
        "link": {"rel": "self", "href": f"{V1}/alerts/topics/cpu"}, "id": "cpu", "level": "CRITICAL",
        "collected": 1, "events-link": {"rel": "events", "href": f"{V1}/alerts/topics/cpu/events"},
        "handlers-link": {"rel": "handlers", "href": f"{V1}/alerts/topics/cpu/handlers"}}
    assert client.get(f"{V1}/alerts/topics", params={"min-level": "CRITICAL", "pattern": "c*"}).json()["topics"]
    assert client.get(f"{V1}/alerts/topics", params={"pattern": "mem*"}).json()["topics"] == []
    assert client.get(f"{V1}/alerts/topics", params={"min-level": "HIGH"}).status_code == 400
    ev = client.get(f"{V1}/alerts/topics/cpu/events/cpu_alert:a").json()
    assert ev["state"]["level"] == "CRITICAL" and ev["state"]["time"] == "1970-01-01T00:00:00.000000001Z"
    assert client.get(f"{V1}/alerts/topics/cpu/events/x").status_code == 404
    assert client.get(f"{V1}/alerts/topics/nope").status_code == 404

    spec = {"id": "k", "kind": "kafka", "options": {"topic": "cpu-alerts"}, "match": "level() >= WARNING"}
    r = client.post(f"{V1}/alerts/topics/cpu/handlers", json=spec)
    assert r.status_code == 200, r.text
    assert r.json() == {"link": {"rel": "self", "href": f"{V1}/alerts/topics/cpu/handlers/k"}, **spec}
    patch = [{"op": "replace", "path": "/options/topic", "value": "other"}]
    assert client.patch(f"{V1}/alerts/topics/cpu/handlers/k", json=patch).json()["options"] == {"topic": "other"}
    r = client.put(f"{V1}/alerts/topics/cpu/handlers/k", json={**spec, "kind": "log"})
    assert r.json()["kind"] == "log"
    assert [h["id"] for h in client.get(f"{V1}/alerts/topics/cpu/handlers").json()["handlers"]] == ["k"]
    assert client.put(f"{V1}/alerts/topics/cpu/handlers/zz", json=spec).status_code == 404
    assert client.delete(f"{V1}/alerts/topics/cpu/handlers/k").status_code == 204
    assert client.get(f"{V1}/alerts/topics/cpu/handlers/k").status_code == 404
    assert client.delete(f"{V1}/alerts/topics/cpu").status_code == 204
    assert client.get(f"{V1}/alerts/topics/cpu").status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"id": "k", "kind": "kafka", "options": {"bad": 1}}, "option 'bad'"),
    ({"id": "k", "kind": "smtp"}, "unknown handler kind 'smtp'"),
    ({"id": "bad id", "kind": "log"}, "invalid handler id 'bad id'"),
    ({"id": "k", "kind": "log", "optoins": {}}, "unknown key 'optoins'"),
    ({"id": "k", "kind": "log", "match": "level() >="}, "match:"),
])
def test_bad_handler_is_400_naming_the_field(client: httpx.Client, body: dict[str, object], field: str) -> None:
    r = client.post(f"{V1}/alerts/topics/cpu/handlers", json=body)
    assert r.status_code == 400
    assert field in r.json()["error"]


def test_service_tests_and_debug_vars(client: httpx.Client) -> None:
    services = client.get(f"{V1}/service-tests").json()["services"]
    assert services == [{"link": {"rel": "self", "href": f"{V1}/service-tests/kafka"}, "name": "kafka",
                         "options": {"topic": "test"}}]
    assert client.post(f"{V1}/service-tests/kafka", json={"topic": "ok"}).json() == {"success": True, "message": "ok"}
    assert client.post(f"{V1}/service-tests/kafka", json={}).json()["success"] is False
    r = client.get(f"{V1}/service-tests/smtp")
    assert r.status_code == 404 and "kafka" in r.json()["error"]
    client.post(f"{V1}/tasks", json={**TASK, "status": "enabled"})
    v = client.get(f"{V1}/debug/vars").json()
    assert (v["num_tasks"], v["num_enabled_tasks"]) == (1, 1)
    assert v["kapacitor"]["kafka:c:t"]["tags"]["topic"] == "t"
    assert v["kapacitor"]["nodes:cpu_alert:alert2"]["values"] == {"points_in": 0}


def test_openapi_document_lists_the_routes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/write", f"{V1}/tasks", f"{V1}/tasks/{{task_id}}", f"{V1}/alerts/topics"} <= set(paths)


def test_refused_write_is_503_with_retry_after(client: httpx.Client, engine: Engine) -> None:
    engine.close()  # stops accepting writes, as on SIGTERM
    r = client.post("/write", params={"db": "telegraf"}, content=b"cpu usage=1 1\n")
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    assert "shutting down" in r.text
