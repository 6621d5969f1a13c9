"""End-to-end ingest of a kapacity server: HTTP /write → task → Kafka topic handler → broker.

Prints one JSON object. What it measures, in one process (the server runs in-process on a
loopback port, with its SQLite store as ``kapacity serve`` has it):

* ceilings measured in the same run on the same bodies (after the server run): ``parse_points_per_s`` (line
  protocol parsing alone) and ``pipeline_points_per_s`` (the task alone, no HTTP, no store,
  no Kafka) — the server cannot beat them;
* throughput: ``--points`` points over ``--series`` series, posted in bodies of ``--batch``
  lines by ``--clients`` threads, through a threshold alert where 1% of the points change
  level (``.stateChangesOnly()``, so ~1% of points become alerts) published to a topic
  whose handler is ``kind: kafka``. ``accepted`` = all 204s received, ``processed`` = the
  engine drained, ``end_to_end`` = every alert consumed back from the broker;
* ``cpu_points_per_s``: points per CPU second of the whole process (server, clients,
  collector) during the throughput run — what the machine's other load does not change much;
  the wall-clock rates above drop when other processes share the cores;
* ``cpu_s_by_thread``: the CPU seconds of the throughput run per thread (pools summed);
* ``rss_mb`` after the throughput run (the bench's own bodies freed first);
* latency at a moderate rate (``--rate`` points/s in bodies of ``--latency-batch`` lines for
  ``--latency-seconds``): each point carries its send time as its timestamp, so the
  alert's ``time`` is when it was written. ``write_to_consumed`` (an upper bound of write
  → broker ack) and ``write_to_produced`` (the record's CreateTime: a lower bound).

Run: ``.venv/bin/python bench/ingest.py [--points 1000000] [--series 100000] [--broker tansu]``
Benchmarks inform; they never assert times.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Keep bench/ itself off sys.path: a script there must never shadow a standard-library
# module (bench/queue.py once shadowed `queue`); import from the package only.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import datetime as dt
import gc
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from typing import Any

import httpx
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from kapacity.config import parse_config
from kapacity.lineprotocol import parse_lines
from kapacity.lineprotocol._parse import _KEYS
from kapacity.pipeline import build_task
from kapacity.server.runner import running, tune_gc

SCRIPT = """stream
  |from()
    .measurement('cpu')
    .groupBy('host')
  |alert()
    .crit(lambda: "usage_idle" < 10)
    .stateChangesOnly()
    .topic('{topic}')
"""
T0 = 1_700_000_000_000_000_000


def bodies(points: int, series: int, batch: int) -> list[bytes]:
    """Line protocol in bodies of ``batch`` lines; every 100th point flips its series' level."""
    critical = bytearray(series)
    out = []
    for start in range(0, points, batch):
        lines = []
        for i in range(start, min(start + batch, points)):
            s = i % series
            if i % 100 == 0:
                critical[s] ^= 1
            idle = "5" if critical[s] else "50"
            lines.append(f"cpu,host=h{s},region=eu usage_idle={idle},usage_user=12.5 {T0 + i}")
        out.append("\n".join(lines).encode())
    return out


def ceilings(data: list[bytes]) -> tuple[float, float]:
    """Parse-only and pipeline-only rates (points/s) on the same bodies."""
    t = time.perf_counter()
    parsed = [parse_lines(b, database="bench", retention_policy="autogen", now_ns=0).points for b in data]
    parse_s = time.perf_counter() - t
    n = sum(len(p) for p in parsed)
    task = build_task(SCRIPT.format(topic="ceiling"), task_name="ceiling")
    t = time.perf_counter()
    for pts in parsed:
        task.process_many(pts)
    pipe_s = time.perf_counter() - t
    return n / parse_s, n / pipe_s


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each live thread of this process, by thread name."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
            comm = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:
            continue  # the thread ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        name = names.get(int(tid), comm).split(" ")[0].split("_")[0]  # one name per pool
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def rfc3339_ns(text: str) -> int:
    base, _, frac = text.rstrip("Z").partition(".")
    secs = dt.datetime.fromisoformat(base).replace(tzinfo=dt.UTC).timestamp()
    return int(secs) * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


class Collector(threading.Thread):
    """Consumes the alert topic; keeps (received ns, value, CreateTime ms) per alert.

    The value is decoded (its ``time``) only when latencies are computed, after the
    measured runs: the collector shares the process (and its CPU figure) with the server.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True, name="bench-collector")
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "fetch.wait.max.ms": 10, "fetch.min.bytes": 1,
        })
        # Assigned, not subscribed: no group join delay before the first fetch.
        self.consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self.got: list[tuple[int, bytes, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            # poll, not consume(n, timeout): a batch call waits for n messages or the full
            # timeout, which would add up to the timeout to every measured latency.
            m = self.consumer.poll(0.1)
            if m is not None and m.error() is None:
                self.got.append((time.time_ns(), m.value() or b"{}", m.timestamp()[1]))
        self.consumer.close()

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.got) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.got) >= count


def create_topic(bootstrap: str, topic: str) -> None:
    """One partition: the collector reads it without joining a group."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=10).values():
        fut.result(15)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        t = admin.list_topics(topic, timeout=5).topics.get(topic)
        if t is not None and t.error is None and t.partitions:
            return
        time.sleep(0.05)


def start_broker(kind: str) -> tuple[str, Any]:
    from kapacity.kafka import devbroker

    if kind == "tansu":
        b = devbroker.start_tansu()
    elif kind == "noida":
        b = devbroker.start_noida()
    else:
        return kind, None
    return b.bootstrap, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--broker", default="tansu", help="tansu, noida or a bootstrap HOST:PORT")
    ap.add_argument("--rate", type=int, default=20_000, help="points/s of the latency run")
    ap.add_argument("--latency-batch", type=int, default=1_000)
    ap.add_argument("--latency-seconds", type=float, default=5.0)
    ap.add_argument("--no-store", action="store_true", help="memory store instead of SQLite")
    ap.add_argument("--default-gc", action="store_true", help="keep Python's GC thresholds")
    args = ap.parse_args()

    if not args.default_gc:
        tune_gc()  # as `kapacity serve` does (ceilings measured under the same settings)
    data = bodies(args.points, args.series, args.batch)

    bootstrap, broker = start_broker(args.broker)
    topic = f"bench-alerts-{uuid.uuid4().hex[:8]}"
    config = parse_config(f"""
[[kafka]]
  enabled = true
  id = "bench"
  brokers = ["{bootstrap}"]
  batch-timeout = "5ms"
""")
    create_topic(bootstrap, topic)
    tmp = Path(tempfile.mkdtemp(prefix="kapacity-bench-"))
    out: dict[str, Any] = {
        "points": args.points, "series": args.series, "batch": args.batch, "clients": args.clients,
        "broker": args.broker, "store": not args.no_store, "gc_tuned": not args.default_gc,
    }
    try:
        with running(config, tmp, persist=not args.no_store) as (engine, srv), \
                httpx.Client(base_url=srv.url, timeout=120) as admin:
            admin.post("/kapacitor/v1/tasks", json={
                "id": "bench", "script": SCRIPT.format(topic="bench"), "status": "enabled",
                "dbrps": [{"db": "bench", "rp": "autogen"}]}).raise_for_status()
            admin.post("/kapacitor/v1/alerts/topics/bench/handlers", json={
                "id": "to-kafka", "kind": "kafka", "options": {"cluster": "bench", "topic": topic}},
            ).raise_for_status()
            collector = Collector(bootstrap, topic)
            collector.start()

            # -- throughput
            chunks = [data[i::args.clients] for i in range(args.clients)]

            client_cpu: list[float] = []

            def post(mine: list[bytes]) -> None:
                with httpx.Client(base_url=srv.url, timeout=120) as c:
                    for body in mine:
                        c.post("/write", params={"db": "bench"}, content=body).raise_for_status()
                client_cpu.append(time.thread_time())

            threads = [threading.Thread(target=post, args=(c,)) for c in chunks]
            t0 = time.perf_counter()
            cpu0 = time.process_time()
            threads0 = thread_cpu()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            accepted = time.perf_counter() - t0
            engine.wait_idle(600)
            processed = time.perf_counter() - t0
            alerts = engine.counters.alerts
            complete = collector.wait_for(alerts, 120)
            end_to_end = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            by_thread = {k: v - threads0.get(k, 0.0) for k, v in thread_cpu().items()}
            by_thread["bench clients"] = sum(client_cpu)
            del data, chunks, threads
            gc.collect()
            out.update({
                "accepted_points_per_s": round(args.points / accepted),
                "processed_points_per_s": round(args.points / processed),
                "end_to_end_points_per_s": round(args.points / end_to_end),
                "cpu_points_per_s": round(args.points / cpu),
                "alerts": alerts, "alerts_consumed": len(collector.got), "complete": complete,
                "rss_mb": round(rss_mb(), 1),
                # Where the CPU of the run went (clock ticks: ±0.01 s each); the engine
                # thread runs the tasks, the AnyIO workers parse the bodies.
                "cpu_s_by_thread": {k: round(v, 2) for k, v in sorted(by_thread.items(), key=lambda kv: -kv[1])
                                    if v >= 0.01},
            })

            # -- latency at a moderate rate: each body is stamped with its send time
            first = len(collector.got)
            sent = 0
            period = args.latency_batch / args.rate
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                start = time.perf_counter()
                n = 0
                while time.perf_counter() - start < args.latency_seconds:
                    now = time.time_ns()
                    lines = []
                    for j in range(args.latency_batch):
                        k = sent + j
                        # 1% of lines alternate one series between CRITICAL and OK
                        idle = (5 if (k // 100) % 2 else 50) if k % 100 == 0 else 50
                        host = "lat" if k % 100 == 0 else f"h{k % args.series}"
                        lines.append(f"cpu,host={host},region=eu usage_idle={idle} {now}")
                    c.post("/write", params={"db": "bench"}, content="\n".join(lines).encode()).raise_for_status()
                    sent += args.latency_batch
                    n += 1
                    pause = start + n * period - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
            engine.wait_idle(60)
            collector.wait_for(engine.counters.alerts, 30)
            collector.stop.set()
            collector.join(10)
            lat = [(r, rfc3339_ns(json.loads(v)["time"]), ts) for r, v, ts in collector.got[first:]]
            consumed_ms = sorted((r - w) / 1e6 for r, w, _ in lat)
            produced_ms = sorted(max(0.0, ts - w / 1e6) for _, w, ts in lat)

            def pct(xs: list[float], q: float) -> float | None:
                return round(xs[min(len(xs) - 1, int(q * len(xs)))], 2) if xs else None

            out.update({
                "latency_rate_points_per_s": args.rate, "latency_batch": args.latency_batch,
                "latency_alerts": len(lat),
                "write_to_consumed_ms": {"p50": pct(consumed_ms, 0.5), "p99": pct(consumed_ms, 0.99),
                                         "mean": round(statistics.fmean(consumed_ms), 2) if lat else None},
                "write_to_produced_ms": {"p50": pct(produced_ms, 0.5), "p99": pct(produced_ms, 0.99)},
            })
    finally:
        if broker is not None:
            broker.stop()
    # Ceilings last, so that their garbage does not weigh on the server's RSS; the parser's
    # series cache is emptied first, so they start as cold as the server did.
    _KEYS.clear()
    parse_rate, pipeline_rate = ceilings(bodies(args.points, args.series, args.batch))
    out["parse_points_per_s"] = round(parse_rate)
    out["pipeline_points_per_s"] = round(pipeline_rate)
    # Parsing and the pipeline share one interpreter lock: the server's bound is both in series.
    both = 1 / (1 / parse_rate + 1 / pipeline_rate)
    out["parse_plus_pipeline_points_per_s"] = round(both)
    out["end_to_end_vs_parse_plus_pipeline"] = round(out.get("end_to_end_points_per_s", 0) / both, 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
