"""HTTP ingest throughput of a running kapacity: /write → pipeline → alerts. Prints JSON.

Starts the server in-process on a loopback port (memory store), defines a task with a
groupBy + threshold alert over ``--hosts`` series, and posts ``--points`` points in bodies
of ``--batch`` lines from ``--clients`` threads. Reports points/s accepted (204s) and
points/s processed (until the engine's queue is drained).

Run: ``.venv/bin/python bench/ingest.py [--points N] [--batch N] [--clients N]``.
Never asserts times (benchmarks inform, tests decide).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import httpx

from kapacity.config.model import Config
from kapacity.server.runner import running

SCRIPT = """stream
  |from()
    .measurement('cpu')
    .groupBy('host')
  |alert()
    .crit(lambda: "usage_idle" < 10)
    .stateChangesOnly()
    .log('{log}')
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--hosts", type=int, default=1_000)
    ap.add_argument("--store", action="store_true", help="persist topic state in SQLite (as serve does)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kapacity-bench-"))
    bodies = []
    t = 1_700_000_000_000_000_000
    for start in range(0, args.points, args.batch):
        lines = []
        for i in range(start, min(start + args.batch, args.points)):
            idle = 5 if i % 97 == 0 else 50  # a few alerts and recoveries
            lines.append(f"cpu,host=h{i % args.hosts},region=eu usage_idle={idle},usage_user=12.5 {t + i}")
        bodies.append("\n".join(lines).encode())
    with running(Config(), tmp, persist=args.store) as (engine, srv):
        httpx.post(f"{srv.url}/kapacitor/v1/tasks", json={
            "id": "bench", "script": SCRIPT.format(log=tmp / "alerts.log"), "status": "enabled",
            "dbrps": [{"db": "bench", "rp": "autogen"}]}).raise_for_status()
        chunks = [bodies[i::args.clients] for i in range(args.clients)]

        def post(mine: list[bytes]) -> None:
            with httpx.Client(base_url=srv.url, timeout=120) as c:
                for body in mine:
                    c.post("/write", params={"db": "bench"}, content=body).raise_for_status()

        threads = [threading.Thread(target=post, args=(c,)) for c in chunks]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        accepted = time.perf_counter() - t0
        engine.wait_idle(600)
        processed = time.perf_counter() - t0
        alerts = engine.counters.alerts
    print(json.dumps({
        "points": args.points, "store": args.store, "batch": args.batch, "clients": args.clients, "hosts": args.hosts,
        "accepted_points_per_s": round(args.points / accepted),
        "processed_points_per_s": round(args.points / processed),
        "alerts": alerts,
    }))


if __name__ == "__main__":
    main()
