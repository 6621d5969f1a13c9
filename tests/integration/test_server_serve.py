"""``kapacity serve`` as users run it: a subprocess, config file, SIGTERM, --dev-kafka."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from kapacity.kafka.devbroker import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

V1 = "/kapacitor/v1"
KAPACITY = [str(Path(sys.executable).parent / "kapacity")]


@contextmanager
def serve(tmp_path: Path, *extra: str, config: str = "") -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    cfg = tmp_path / "kapacity.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n[http]\n  bind-address = "127.0.0.1:{port}"\n'
                   f'[logging]\n  format = "json"\n' + config)
    stderr = tmp_path / "serve.log"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen([*KAPACITY, "serve", "--config", str(cfg), *extra],
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {stderr.read_text()}")
        try:
            return httpx.get(f"{url}{V1}/ping", timeout=1).status_code == 204
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout=30, what="kapacity serve to answer /ping")
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_sigterm_drains_every_accepted_point(tmp_path: Path) -> None:
    log = tmp_path / "alerts.log"
    script = (f"stream\n  |from()\n    .measurement('cpu')\n  |alert()\n    .crit(lambda: \"v\" > 50)\n"
              f"    .log('{log}')\n")
    n_requests, per_request = 20, 100
    with serve(tmp_path) as (proc, url), httpx.Client(base_url=url, timeout=30) as c:
        r = c.post(f"{V1}/tasks", json={"id": "flip", "script": script, "status": "enabled",
                                        "dbrps": [{"db": "db", "rp": "autogen"}]})
        assert r.status_code == 200, r.text
        t = 0
        for _ in range(n_requests):
            lines = []
            for _ in range(per_request):  # 0, 100, 0, 100...: every point changes the level
                t += 1
                lines.append(f"cpu v={100 * (t % 2)} {t}")
            assert c.post("/write", params={"db": "db"}, content="\n".join(lines).encode()).status_code == 204
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0
    stderr = (tmp_path / "serve.log").read_text()
    assert len(log.read_text().splitlines()) == n_requests * per_request
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any("engine stopped" in r["msg"] for r in records), stderr


def test_corrupt_store_stops_start_up_with_the_path(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "kapacity.db").write_bytes(b"garbage" * 1000)
    cfg = tmp_path / "k.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n[http]\n  bind-address = "127.0.0.1:{free_port()}"\n')
    done = subprocess.run([*KAPACITY, "serve", "--config", str(cfg)], capture_output=True, timeout=60, check=False)
    assert done.returncode == 1
    assert b"kapacity.db" in done.stderr and b"error:" in done.stderr


def test_dev_kafka_starts_a_broker_usable_by_handlers(tmp_path: Path) -> None:
    with serve(tmp_path, "--dev-kafka") as (proc, url), httpx.Client(base_url=url, timeout=30) as c:
        r = c.post(f"{V1}/service-tests/kafka", json={"topic": "dev-smoke"})
        assert r.json() == {"success": True, "message": ""}
        r = c.post(f"{V1}/alerts/topics/cpu/handlers",
                   json={"id": "k", "kind": "kafka", "options": {"topic": "cpu-alerts"}})
        assert r.status_code == 200, r.text
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0
