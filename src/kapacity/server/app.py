"""The HTTP API: Kapacitor's routes and JSON shapes on FastAPI.

Errors answer ``{"error": "..."}`` with Kapacitor's status codes (400 bad input, 404
unknown resource, 503 shutting down / overloaded), except ``/write`` whose errors are
plain text like InfluxDB's. FastAPI serves the OpenAPI document at ``/openapi.json``.
"""

from __future__ import annotations

import logging
import time
import zlib
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kapacity import __version__
from kapacity.lineprotocol import PrecisionError, parse_lines
from kapacity.alert.handlerspec import HandlerSpec, JSONPatchError, apply_json_patch
from kapacity.alert.topics import EventState, TopicPatternError, TopicState
from kapacity.gotypes import Level
from kapacity.server.engine import Engine
from kapacity.server.errors import APIError, BadRequest, NotFound
from kapacity.server.links import (
    BASE,
    event_href,
    events_href,
    handler_href,
    handlers_href,
    link,
    service_test_href,
    topic_href,
)
from kapacity.server.servicetests import ServiceTests
from kapacity.server.taskdef import DEFAULT_RP, go_time

log = logging.getLogger("kapacity.http")

#: A write body larger than this (after gunzip) is refused: the server must not be made
#: to buffer unbounded input. InfluxDB's default max-body-size is 25 MB.
MAX_WRITE_BYTES = 25 * 1024 * 1024


class VersionHeaders:
    """Adds ``X-Kapacitor-Version`` (and ``X-Influxdb-Version``: InfluxDB clients such as
    influxdb-python's ping read their own header name) to every response of the app.

    Plain ASGI: ``@app.middleware("http")`` runs each request in a task group with memory
    streams, which costs more than a whole /write of a few lines.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Kapacitor-Version"] = __version__
                headers["X-Influxdb-Version"] = __version__
            await send(message)

        await self.app(scope, receive, send_with_version)


def create_app(engine: Engine, tests: ServiceTests | None = None) -> FastAPI:
    """The ASGI app over ``engine`` (which the caller starts and closes)."""
    app = FastAPI(title="kapacity", version=__version__,
                  description="Kapacitor-compatible HTTP API of kapacity.")
    service_tests = tests or ServiceTests({})

    app.add_middleware(VersionHeaders)

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> Response:
        retry = getattr(exc, "retry_after_s", None)
        headers = {"Retry-After": str(retry)} if retry is not None else None
        if request.url.path in ("/write", f"{BASE}/write"):
            return PlainTextResponse(str(exc) + "\n", status_code=exc.status, headers=headers)
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        del request
        parts = ["{}: {}".format(".".join(str(x) for x in e["loc"]), e["msg"]) for e in exc.errors()]
        return JSONResponse({"error": "; ".join(parts)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        del request
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    async def json_body(request: Request) -> Any:
        import json

        raw = await request.body()
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise BadRequest(f"invalid JSON: {exc}") from None

    # ------------------------------------------------------------ write / ping
    async def write(request: Request, db: str = "", rp: str = "", precision: str = "n") -> Response:
        body = await request.body()
        encoding = request.headers.get("content-encoding", "").lower()
        if encoding == "gzip":
            try:
                body = await run_in_threadpool(_gunzip, body)
            except (OSError, EOFError, zlib.error) as exc:
                raise BadRequest(f"invalid gzip body: {exc}") from None
        elif encoding not in ("", "identity"):
            raise BadRequest(f"unsupported Content-Encoding {encoding!r}; valid: gzip, identity")
        if len(body) > MAX_WRITE_BYTES:
            raise APIError_413(f"request body too large: {len(body)} bytes, limit {MAX_WRITE_BYTES}")
        if not db:
            raise BadRequest("database is required")
        rp = rp or DEFAULT_RP
        # Parse and queue in one worker-thread hop (not one each): the event loop thread
        # gets the interpreter lock back once per request instead of twice.
        errors = await run_in_threadpool(_ingest, engine, body, precision or "n", db, rp)
        if errors:
            raise BadRequest(errors)
        return Response(status_code=204)

    app.add_api_route("/write", write, methods=["POST"], status_code=204, tags=["write"],
                      operation_id="write", summary="Write points in InfluxDB line protocol")
    app.add_api_route(f"{BASE}/write", write, methods=["POST"], status_code=204, tags=["write"],
                      operation_id="write_v1", summary="Write points in InfluxDB line protocol")

    async def ping() -> Response:
        return Response(status_code=204)

    app.add_api_route(f"{BASE}/ping", ping, methods=["GET"], status_code=204, tags=["misc"], operation_id="ping")
    for path, method in ((f"{BASE}/ping", "HEAD"), ("/ping", "GET"), ("/ping", "HEAD")):
        app.add_api_route(path, ping, methods=[method], status_code=204, include_in_schema=False)

    # ------------------------------------------------------------ tasks
    @app.get(f"{BASE}/tasks", tags=["tasks"])
    def list_tasks(pattern: str = "", offset: int = 0, limit: int = 100) -> dict[str, Any]:
        return {"tasks": engine.list_tasks(pattern, offset, limit)}

    @app.post(f"{BASE}/tasks", tags=["tasks"])
    async def create_task(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        return await run_in_threadpool(engine.create_task, body)

    @app.get(f"{BASE}/tasks/{{task_id}}", tags=["tasks"])
    def get_task(task_id: str) -> dict[str, Any]:
        return engine.get_task(task_id)

    @app.get(f"{BASE}/tasks/{{task_id}}/{{endpoint}}", tags=["tasks"])
    def task_http_out(task_id: str, endpoint: str) -> Response:
        return Response(engine.http_out(task_id, endpoint), media_type="application/json")

    @app.patch(f"{BASE}/tasks/{{task_id}}", tags=["tasks"])
    async def update_task(task_id: str, request: Request) -> dict[str, Any]:
        body = await json_body(request)
        return await run_in_threadpool(engine.update_task, task_id, body)

    @app.delete(f"{BASE}/tasks/{{task_id}}", status_code=204, tags=["tasks"])
    def delete_task(task_id: str) -> Response:
        engine.delete_task(task_id)
        return Response(status_code=204)

    # ------------------------------------------------------------ topics
    def topic_json(t: TopicState) -> dict[str, Any]:
        return {
            "link": link(topic_href(t.id)), "id": t.id, "level": t.level.name,
            "collected": t.collected, "events-link": link(events_href(t.id), "events"),
            "handlers-link": link(handlers_href(t.id), "handlers"),
        }

    def min_level(request: Request) -> Level:
        text = request.query_params.get("min-level", "")
        try:
            return Level.parse(text) if text else Level.OK
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    def self_link(request: Request) -> dict[str, str]:
        query = f"?{request.url.query}" if request.url.query else ""
        return link(request.url.path + query)

    @app.get(f"{BASE}/alerts/topics", tags=["alerts"])
    def list_topics(request: Request, pattern: str = "") -> dict[str, Any]:
        level = min_level(request)
        with engine.lock:
            try:
                topics = [topic_json(t) for t in engine.topics.topic_states(pattern, level)]
            except TopicPatternError as exc:
                raise BadRequest(f"invalid pattern: {exc}") from None
        return {"link": self_link(request), "topics": topics}

    def topic_state(topic: str) -> TopicState:
        t = engine.topics.topic(topic)
        if t is None:
            raise NotFound(f"unknown topic: {topic!r}")
        return TopicState(t.id, t.level, t.collected)

    @app.get(f"{BASE}/alerts/topics/{{topic}}", tags=["alerts"])
    def get_topic(topic: str) -> dict[str, Any]:
        with engine.lock:
            return topic_json(topic_state(topic))

    @app.delete(f"{BASE}/alerts/topics/{{topic}}", status_code=204, tags=["alerts"])
    def delete_topic(topic: str) -> Response:
        engine.delete_topic(topic)
        return Response(status_code=204)

    def event_json(topic: str, event_id: str, s: EventState) -> dict[str, Any]:
        return {"link": link(event_href(topic, event_id)), "id": event_id, "state": {
            "message": s.message, "details": s.details, "time": go_time(s.time),
            "duration": s.duration, "level": s.level.name}}

    @app.get(f"{BASE}/alerts/topics/{{topic}}/events", tags=["alerts"])
    def list_events(topic: str, request: Request) -> dict[str, Any]:
        level = min_level(request)
        with engine.lock:
            events = [event_json(topic, eid, s) for eid, s in engine.topics.event_states(topic, level).items()]
        return {"link": link(events_href(topic)), "topic": topic, "events": events}

    @app.get(f"{BASE}/alerts/topics/{{topic}}/events/{{event_id}}", tags=["alerts"])
    def get_event(topic: str, event_id: str) -> dict[str, Any]:
        with engine.lock:
            s = engine.topics.event_state(topic, event_id)
        if s is None:
            raise NotFound(f"unknown event {event_id!r} in topic {topic!r}")
        return event_json(topic, event_id, s)

    # ------------------------------------------------------------ handlers
    def handler_json(spec: HandlerSpec) -> dict[str, Any]:
        return {"link": link(handler_href(spec.topic, spec.id)), "id": spec.id, "kind": spec.kind,
                "options": spec.options, "match": spec.match}

    def spec_from(topic: str, body: Any, handler_id: str | None = None) -> HandlerSpec:
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k != "link"}
            if handler_id is not None:
                body.setdefault("id", handler_id)
        return engine.validate_spec(body, topic)

    @app.get(f"{BASE}/alerts/topics/{{topic}}/handlers", tags=["alerts"])
    def list_handlers(topic: str, request: Request, pattern: str = "") -> dict[str, Any]:
        return {"link": self_link(request), "topic": topic,
                "handlers": [handler_json(s) for s in engine.list_handlers(topic, pattern)]}

    @app.post(f"{BASE}/alerts/topics/{{topic}}/handlers", tags=["alerts"])
    async def create_handler(topic: str, request: Request) -> dict[str, Any]:
        spec = spec_from(topic, await json_body(request))
        await run_in_threadpool(engine.put_handler, spec, must_exist=False)
        return handler_json(spec)

    @app.get(f"{BASE}/alerts/topics/{{topic}}/handlers/{{handler_id}}", tags=["alerts"])
    def get_handler(topic: str, handler_id: str) -> dict[str, Any]:
        return handler_json(engine.get_handler(topic, handler_id))

    async def replace_handler(topic: str, handler_id: str, spec: HandlerSpec) -> dict[str, Any]:
        if spec.id != handler_id:
            await run_in_threadpool(engine.put_handler, spec, must_exist=False)
            await run_in_threadpool(engine.delete_handler, topic, handler_id)
        else:
            await run_in_threadpool(engine.put_handler, spec, must_exist=True)
        return handler_json(spec)

    @app.put(f"{BASE}/alerts/topics/{{topic}}/handlers/{{handler_id}}", tags=["alerts"])
    async def put_handler(topic: str, handler_id: str, request: Request) -> dict[str, Any]:
        engine.get_handler(topic, handler_id)
        spec = spec_from(topic, await json_body(request), handler_id)
        return await replace_handler(topic, handler_id, spec)

    @app.patch(f"{BASE}/alerts/topics/{{topic}}/handlers/{{handler_id}}", tags=["alerts"])
    async def patch_handler(topic: str, handler_id: str, request: Request) -> dict[str, Any]:
        current = engine.get_handler(topic, handler_id)
        ops = await json_body(request)
        try:
            patched = apply_json_patch(current.to_dict(), ops)
        except JSONPatchError as exc:
            raise BadRequest(f"failed to apply patch: {exc}") from None
        return await replace_handler(topic, handler_id, spec_from(topic, patched, handler_id))

    @app.delete(f"{BASE}/alerts/topics/{{topic}}/handlers/{{handler_id}}", status_code=204, tags=["alerts"])
    def delete_handler(topic: str, handler_id: str) -> Response:
        engine.delete_handler(topic, handler_id)
        return Response(status_code=204)

    # ------------------------------------------------------------ service tests, debug
    @app.get(f"{BASE}/service-tests", tags=["misc"])
    def list_service_tests(pattern: str = "") -> dict[str, Any]:
        return {"link": link(f"{BASE}/service-tests"), "services": [
            {"link": link(service_test_href(name)), "name": name, "options": opts}
            for name, opts in service_tests.list(pattern)]}

    @app.get(f"{BASE}/service-tests/{{name}}", tags=["misc"])
    def get_service_test(name: str) -> dict[str, Any]:
        return {"link": link(service_test_href(name)), "name": name,
                "options": service_tests.defaults(name)}

    @app.post(f"{BASE}/service-tests/{{name}}", tags=["misc"])
    async def run_service_test(name: str, request: Request) -> dict[str, Any]:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise BadRequest("invalid JSON: expected an object of options")
        success, message = await run_in_threadpool(service_tests.run, name, body)
        return {"success": success, "message": message}

    @app.get(f"{BASE}/cluster", tags=["misc"])
    def cluster() -> dict[str, Any]:
        """This instance's view of the cluster: ``{"mode": "embedded", ...}``, or with
        ``[queue] type = "kafka"`` the queue runtime's status (instance, partitions, lag)."""
        from kapacity.server.queued import cluster_status

        return cluster_status(engine)

    @app.get(f"{BASE}/debug/vars", tags=["misc"])
    def debug_vars() -> dict[str, Any]:
        return debug_vars_json(engine)

    return app


class APIError_413(APIError):  # noqa: N801 - named after its status
    status = 413


def _ingest(engine: Engine, body: bytes, precision: str, db: str, rp: str) -> str:
    """Parse a /write body and queue its points; the text of its bad lines ("" if none).

    Like InfluxDB, the good lines of a partially bad body are still written.
    """
    try:
        result = parse_lines(
            body, precision=precision, now_ns=time.time_ns(), database=db, retention_policy=rp,
        )
    except PrecisionError as exc:
        raise BadRequest(str(exc)) from None
    engine.write(result.points, (db, rp))
    return result.error_text() if result.errors else ""


def _gunzip(body: bytes) -> bytes:
    """Decompress with a size cap: a small gzip bomb must not exhaust memory."""
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = d.decompress(body, MAX_WRITE_BYTES + 1)
    if len(out) > MAX_WRITE_BYTES:
        raise APIError_413(f"request body too large after gunzip: limit {MAX_WRITE_BYTES} bytes")
    if not d.eof:
        raise EOFError("truncated gzip body")
    return out


def debug_vars_json(engine: Engine) -> dict[str, Any]:
    """``/debug/vars``: Kapacitor's shape (``kapacitor`` map of named stat groups)."""
    tasks, enabled = engine.task_count()
    stats: dict[str, Any] = {}
    for task_id, st in engine.task_stats().items():
        for node, values in (st.get("node-stats") or {}).items():
            stats[f"nodes:{task_id}:{node}"] = {
                "name": "nodes", "tags": {"host": engine.hostname, "task": task_id, "node": node},
                "values": values}
        stats[f"tasks:{task_id}"] = {"name": "tasks", "tags": {"host": engine.hostname, "task": task_id},
                                     "values": st.get("task-stats") or {}}
    for kind, per in engine.handler_stats().items():
        for key, values in per.items():
            tags = {"host": engine.hostname, **values.get("tags", {})}
            stats[f"{kind}:{key}"] = {"name": kind, "tags": tags, "values": values.get("values", {})}
    c = engine.counters
    stats["write"] = {"name": "write", "tags": {"host": engine.hostname}, "values": {
        "points_received": c.points_received, "points_processed": c.points_processed,
        "writes_rejected": c.writes_rejected, "alerts": c.alerts,
        "handler_errors": c.handler_errors, "task_errors": c.task_errors}}
    return {
        "cluster_id": "", "server_id": "", "host": engine.hostname, "product": "kapacity",
        "version": __version__, "num_tasks": tasks, "num_enabled_tasks": enabled,
        "num_subscriptions": 0, "kapacitor": stats,
    }
