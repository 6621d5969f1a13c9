"""Kapacitor's ``link`` objects: ``{"rel": "self", "href": "/kapacitor/v1/..."}``."""

from __future__ import annotations

from urllib.parse import quote

BASE = "/kapacitor/v1"


def link(href: str, rel: str = "self") -> dict[str, str]:
    return {"rel": rel, "href": href}


def task_href(task_id: str) -> str:
    return f"{BASE}/tasks/{quote(task_id, safe='')}"


def topic_href(topic: str) -> str:
    return f"{BASE}/alerts/topics/{quote(topic, safe='')}"


def events_href(topic: str) -> str:
    return topic_href(topic) + "/events"


def event_href(topic: str, event_id: str) -> str:
    return events_href(topic) + "/" + quote(event_id, safe="")


def handlers_href(topic: str) -> str:
    return topic_href(topic) + "/handlers"


def handler_href(topic: str, handler_id: str) -> str:
    return handlers_href(topic) + "/" + quote(handler_id, safe="")


def service_test_href(name: str) -> str:
    return f"{BASE}/service-tests/{quote(name, safe='')}"
