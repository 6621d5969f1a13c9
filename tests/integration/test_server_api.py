"""The HTTP API over the real pipeline and store, without Kafka: errors, partial writes,
a real InfluxDB client, persistence, a corrupt store."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from kapacity.state import StoreError
from tests.integration.server_support import V1, define, kafka_config, server, write
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

LOG_TICK = """stream
  |from()
    .measurement('cpu')
  |alert()
    .crit(lambda: "usage_idle" < 10)
    .message('{{{{ .ID }}}} is {{{{ .Level }}}}')
    .log('{path}')
"""


def log_lines(path: Path, count: int) -> list[dict[str, object]]:
    def read() -> list[dict[str, object]] | None:
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(x) for x in lines] if len(lines) >= count else None

    return wait_for(read, timeout=10, what=f"{count} lines in {path}")


def test_bad_tickscript_is_400_with_line_and_column(tmp_path: Path) -> None:
    with server(kafka_config(None), tmp_path) as (_e, _s, client):
        r = client.post(f"{V1}/tasks", json={"id": "t", "dbrps": [{"db": "d", "rp": "r"}],
                                             "script": "stream\n  |from()\n    .measurment('cpu')\n"})
        assert r.status_code == 400
        assert "line 3 char 6" in r.json()["error"]
        r = client.post(f"{V1}/tasks", json={"id": "t", "dbrps": [{"db": "d", "rp": "r"}],
                                             "script": "stream|from()|alert().kafka().kafkaTopic('x')"})
        assert r.status_code == 400
        assert "cluster" in r.json()["error"]  # no [[kafka]] cluster configured: refused at define time


def test_partial_write_processes_the_good_lines(tmp_path: Path) -> None:
    log = tmp_path / "alerts.log"
    with server(kafka_config(None), tmp_path) as (_e, _s, client):
        define(client, "cpu", LOG_TICK.format(path=log))
        body = "cpu,host=a usage_idle=5 1\ncpu,host=b usage_idle=oops 2\ncpu,host=c usage_idle=50 3\n"
        r = client.post("/write", params={"db": "telegraf", "precision": "s"}, content=body.encode())
        assert r.status_code == 400
        assert r.text.startswith("line 2:") and "usage_idle=oops" in r.text
        [crit, ok] = log_lines(log, 2)
    assert (crit["level"], ok["level"]) == ("CRITICAL", "OK")


def test_influxdb_python_client_writes_points(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from influxdb import InfluxDBClient

    log = tmp_path / "alerts.log"
    with server(kafka_config(None), tmp_path) as (_e, srv, client):
        define(client, "cpu", LOG_TICK.format(path=log), db="telegraf", rp="autogen")
        influx = InfluxDBClient(host=srv.host, port=srv.port, database="telegraf")
        assert influx.write_points(
            [{"measurement": "cpu", "tags": {"host": "a"}, "time": "2026-01-01T00:00:10Z",
              "fields": {"usage_idle": 3.5}}], time_precision="s", retention_policy="autogen")
        with pytest.raises(Exception, match="400"):
            influx.write_points(["cpu,host=a usage_idle="], protocol="line")
        influx.close()
        [crit] = log_lines(log, 1)
    assert crit["time"] == "2026-01-01T00:00:10Z" and crit["message"] == "cpu:nil is CRITICAL"


def test_tasks_and_handlers_survive_a_restart(tmp_path: Path) -> None:
    log = tmp_path / "alerts.log"
    with server(kafka_config(None), tmp_path / "data") as (_e, _s, client):
        define(client, "cpu", LOG_TICK.format(path=log))
        r = client.post(f"{V1}/alerts/topics/ops/handlers",
                        json={"id": "file", "kind": "log", "options": {"path": str(tmp_path / "ops.log")}})
        assert r.status_code == 200, r.text
        write(client, "cpu usage_idle=1 1\n")
        log_lines(log, 1)
    with server(kafka_config(None), tmp_path / "data") as (_e, _s, client):
        assert client.get(f"{V1}/tasks/cpu").json()["executing"] is True
        assert client.get(f"{V1}/alerts/topics/ops/handlers/file").json()["options"]["path"].endswith("ops.log")
        events = client.get(f"{V1}/alerts/topics/main:cpu:alert2/events").json()["events"]
        assert [(e["id"], e["state"]["level"]) for e in events] == [("cpu:nil", "CRITICAL")]


def test_corrupt_store_is_a_clear_start_up_error(tmp_path: Path) -> None:
    (tmp_path / "kapacity.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="kapacity.db"), server(kafka_config(None), tmp_path):
        pass


def test_http_out_serves_the_latest_result_of_a_window(tmp_path: Path) -> None:
    script = """stream
  |from()
    .measurement('cpu')
  |window()
    .period(10s)
    .every(10s)
  |mean('usage_idle')
  |httpOut('idle')
"""
    with server(kafka_config(None), tmp_path) as (_e, _s, client):
        define(client, "win", script)
        before = client.get(f"{V1}/tasks/win/idle")
        assert before.status_code == 200 and before.json() == {"series": None}
        write(client, "cpu usage_idle=10 1\ncpu usage_idle=20 2\ncpu usage_idle=90 11\n")

        def served() -> dict[str, object] | None:
            body = client.get(f"{V1}/tasks/win/idle").json()
            return body if body["series"] else None

        body = wait_for(served, timeout=10, what="the window's mean on the httpOut endpoint")
        assert body["series"][0]["columns"] == ["time", "mean"]
        assert body["series"][0]["values"][0][1] == 15
        missing = client.get(f"{V1}/tasks/win/nope")
        assert missing.status_code == 404 and "nope" in missing.json()["error"]
