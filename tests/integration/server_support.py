"""A kapacity server per test: engine + uvicorn on a loopback port, over a real broker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from kapacity.config import parse_config
from kapacity.config.model import Config
from kapacity.server.engine import Engine
from kapacity.server.runner import BackgroundServer, running
from tests.support.kafka import Broker, consume

V1 = "/kapacitor/v1"


def kafka_config(broker: Broker | None, cluster: str = "infra-monitoring", extra: str = "") -> Config:
    text = extra
    if broker is not None:
        text += f"""
[[kafka]]
  enabled = true
  id = "{cluster}"
  brokers = ["{broker.bootstrap}"]
  batch-timeout = "10ms"
"""
    return parse_config(text)


@contextmanager
def server(config: Config, data_dir: Path) -> Iterator[tuple[Engine, BackgroundServer, httpx.Client]]:
    with running(config, data_dir) as (engine, srv), httpx.Client(base_url=srv.url, timeout=30) as client:
        yield engine, srv, client


def define(client: httpx.Client, task_id: str, script: str, db: str = "telegraf", rp: str = "autogen") -> dict[str, Any]:
    r = client.post(f"{V1}/tasks", json={"id": task_id, "script": script, "status": "enabled",
                                         "dbrps": [{"db": db, "rp": rp}]})
    assert r.status_code == 200, r.text
    task: dict[str, Any] = r.json()
    assert task["executing"] is True, task["error"]
    return task


def write(client: httpx.Client, body: str, db: str = "telegraf", precision: str = "s") -> None:
    r = client.post("/write", params={"db": db, "precision": precision}, content=body.encode())
    assert r.status_code == 204, r.text


def alerts(broker: Broker, topic: str, count: int, timeout: float = 30.0) -> list[tuple[str, dict[str, Any]]]:
    """``count`` messages of ``topic`` as (key, decoded JSON value), waiting up to ``timeout`` s."""
    return [(m.key().decode(), json.loads(m.value())) for m in consume(broker.bootstrap, topic, count, timeout)]
