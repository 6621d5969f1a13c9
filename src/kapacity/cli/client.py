"""A small HTTP client for a running kapacity (or Kapacitor) server's API.

Every failure raises :class:`ClientError` carrying the server's ``{"error": ...}``
message (or the transport error), which the CLI prints before exiting non-zero.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from kapacity.errors import KapacityError

DEFAULT_URL = "http://localhost:9092"
BASE = "/kapacitor/v1"
#: CLI calls are interactive: a server that does not answer within this is reported.
TIMEOUT_S = 30.0


class ClientError(KapacityError):
    """The server refused the request (``status``) or could not be reached (``status`` 0)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def default_url() -> str:
    return os.environ.get("KAPACITY_URL") or DEFAULT_URL


def q(part: str) -> str:
    return quote(part, safe="")


class Client:
    def __init__(self, url: str | None = None, timeout: float = TIMEOUT_S) -> None:
        self.url = (url or default_url()).rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}") from None
        if resp.status_code >= 400:
            message = resp.text.strip()
            try:
                body = resp.json()
                if isinstance(body, dict) and "error" in body:
                    message = str(body["error"])
            except ValueError:
                pass
            raise ClientError(message or f"HTTP {resp.status_code}", resp.status_code)
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text

    # ---- tasks
    def ping(self) -> str:
        try:
            resp = self._http.get(f"{BASE}/ping")
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}") from None
        return str(resp.headers.get("X-Kapacitor-Version", ""))

    def task(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"{BASE}/tasks/{q(task_id)}")
        return result

    def task_exists(self, task_id: str) -> bool:
        try:
            self.task(task_id)
        except ClientError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def tasks(self, pattern: str = "") -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            params: dict[str, Any] = {"offset": offset, "limit": 100}
            if pattern:
                params["pattern"] = pattern
            page = self.request("GET", f"{BASE}/tasks", params=params)["tasks"]
            out.extend(page)
            if len(page) < 100:
                return out
            offset += len(page)

    def create_task(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"{BASE}/tasks", json=body)
        return result

    def update_task(self, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PATCH", f"{BASE}/tasks/{q(task_id)}", json=body)
        return result

    def delete_task(self, task_id: str) -> None:
        self.request("DELETE", f"{BASE}/tasks/{q(task_id)}")

    # ---- topics and handlers
    def topics(self, pattern: str = "", min_level: str = "") -> list[dict[str, Any]]:
        params = {k: v for k, v in (("pattern", pattern), ("min-level", min_level)) if v}
        result: list[dict[str, Any]] = self.request("GET", f"{BASE}/alerts/topics", params=params)["topics"]
        return result

    def topic(self, topic: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"{BASE}/alerts/topics/{q(topic)}")
        return result

    def topic_events(self, topic: str, min_level: str = "") -> list[dict[str, Any]]:
        params = {"min-level": min_level} if min_level else {}
        result: list[dict[str, Any]] = self.request(
            "GET", f"{BASE}/alerts/topics/{q(topic)}/events", params=params)["events"]
        return result

    def delete_topic(self, topic: str) -> None:
        self.request("DELETE", f"{BASE}/alerts/topics/{q(topic)}")

    def handlers(self, topic: str, pattern: str = "") -> list[dict[str, Any]]:
        params = {"pattern": pattern} if pattern else {}
        result: list[dict[str, Any]] = self.request(
            "GET", f"{BASE}/alerts/topics/{q(topic)}/handlers", params=params)["handlers"]
        return result

    def handler(self, topic: str, handler_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"{BASE}/alerts/topics/{q(topic)}/handlers/{q(handler_id)}")
        return result

    def define_handler(self, topic: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Create the handler, or replace it when it exists (``define-topic-handler``)."""
        path = f"{BASE}/alerts/topics/{q(topic)}/handlers"
        try:
            self.handler(topic, str(spec.get("id", "")))
        except ClientError as exc:
            if exc.status != 404:
                raise
            result: dict[str, Any] = self.request("POST", path, json=spec)
            return result
        result = self.request("PUT", f"{path}/{q(str(spec['id']))}", json=spec)
        return result

    def delete_handler(self, topic: str, handler_id: str) -> None:
        self.request("DELETE", f"{BASE}/alerts/topics/{q(topic)}/handlers/{q(handler_id)}")

    # ---- misc
    def service_tests(self, pattern: str = "") -> list[dict[str, Any]]:
        params = {"pattern": pattern} if pattern else {}
        result: list[dict[str, Any]] = self.request("GET", f"{BASE}/service-tests", params=params)["services"]
        return result

    def run_service_test(self, name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"{BASE}/service-tests/{q(name)}", json=options or {})
        return result

    def debug_vars(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"{BASE}/debug/vars")
        return result

    def write(self, body: bytes, db: str, rp: str = "", precision: str = "n") -> None:
        params = {"db": db, "precision": precision}
        if rp:
            params["rp"] = rp
        self.request("POST", "/write", params=params, content=body)


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    """Split line protocol into bodies of about ``size`` bytes, on line boundaries."""
    start = 0
    while start < len(data):
        end = min(start + size, len(data))
        if end < len(data):
            nl = data.rfind(b"\n", start, end)
            end = nl + 1 if nl >= start else (data.find(b"\n", end) + 1 or len(data))
        yield data[start:end]
        start = end
