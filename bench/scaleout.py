"""Scale-out: points/s and the CPU split of 1, 2 and 3 ``kapacity engine run`` instances.

For each instance count: a fresh queue (topic prefix) on one broker, the instances started as
OS processes (``kapacity engine run --instance i<n>``) and settled (every partition owned),
then ``--points`` points emitted to ``points`` as fast as the feeder can, and timed until

* ``engine_s``: the engine group has committed every point (the engine stage is done), and
* ``e2e_s``: every expected alert is on the handler's output topic (read_committed): engine,
  regroup and delivery stages all done. ``points_per_s`` is ``points / e2e_s``.

CPU seconds per instance are read from ``/proc/<pid>/stat`` (utime + stime, all threads)
between "settled" and "done", so start-up is not counted; so are the broker's (when this
script started it) and the feeder's. ``ceiling``: one raw confluent-kafka transactional
consume → produce loop over the same points (no engine work): what one process gets from
the broker and client alone.

The broker is noida-db (``kapacity.kafka.devbroker``; ``--broker tansu`` for Tansu) unless
``KAPACITY_TEST_KAFKA`` or ``--bootstrap`` names one. noida-db 0.2.3 answers an empty fetch at
once instead of waiting ``fetch.wait.max.ms``: every idle consumer then fetches in a loop,
about 0.65 CPU s per second each (measured with one plain confluent-kafka consumer; 0.001
on Tansu), which inflates the instances' and the broker's CPU figures on noida. Tansu
honours the wait, so its CPU figures are the ones to size with (no run here aborts a
transaction, so Tansu's read_committed, which shows aborted records, changes nothing).
Prints one JSON object. Benchmarks inform; they never assert.

Run: ``.venv/bin/python bench/scaleout.py [--points 60000] [--instances 1,2,3] [--partitions 6]
[--aligned] [--broker noida|tansu]`` (``--aligned``: a series-aligned task, which skips the
``repartition`` hop)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Keep bench/ off sys.path (a script there must never shadow a standard-library module).
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from kapacity.config import load_config  # noqa: E402
from kapacity.models import Point  # noqa: E402
from kapacity.queue.factory import open_queue  # noqa: E402
from kapacity.queue.kinds import Kind  # noqa: E402
from kapacity.runtime.records import TaskDefinition, point_value, series_key  # noqa: E402

SCRIPT = (
    "stream|from().measurement('cpu').groupBy('host')"
    "|alert().crit(lambda: \"v\" > 10).stateChangesOnly().topic('cpu')"
)
#: ``--aligned``: the same alert grouped by ``*`` on one measurement: series-aligned, so it
#: runs in the engine stage (no ``repartition`` hop; see docs/queue.md).
ALIGNED_SCRIPT = SCRIPT.replace("groupBy('host')", "groupBy(*)")
#: Rounds between a host's level changes: one point in ``PERIOD`` causes an alert event.
PERIOD = 10
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _value(host: int, rnd: int) -> float:
    return 50.0 if ((rnd + host) // PERIOD) % 2 else 1.0


def _points(n: int, hosts: int) -> tuple[list[Point], int]:
    """``n`` points over ``hosts`` series, and the number of alert events they cause."""
    points, events, levels = [], 0, [False] * hosts
    for i in range(n):
        rnd, h = divmod(i, hosts)
        v = _value(h, rnd)
        points.append(Point("cpu", {"host": f"h{h:05d}"}, {"v": v}, (rnd + 1) * 10**9, "telegraf", "autogen"))
        crit = v > 10
        events += crit != levels[h]
        levels[h] = crit
    return points, events


def _cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its descendants (a launcher may run the broker as a child)."""
    try:
        total = _cpu_s(pid)
        children = {c for task in Path(f"/proc/{pid}/task").iterdir() for c in _children(task)}
    except OSError:  # the process ended meanwhile
        return 0.0
    return total + sum(_tree_cpu_s(int(c)) for c in children)


def _children(task: Path) -> list[str]:
    try:
        return (task / "children").read_text().split()
    except OSError:  # the thread ended meanwhile
        return []


def _wait(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _write_config(tmp: Path, bootstrap: str, prefix: str, partitions: int) -> Path:
    path = tmp / f"{prefix}.toml"
    path.write_text(
        f'data_dir = "{tmp / prefix}"\n'
        '[queue]\ntype = "kafka"\n'
        f'[queue.kafka.client.properties]\n"bootstrap.servers" = "{bootstrap}"\n'
        f'[queue.kafka.defaults]\ntopic-prefix = "{prefix}_"\nconsumer-prefix = "{prefix}_"\n'
        f'[queue.kafka.defaults.topic]\npartitions = {partitions}\n'
        # A long session: on a starved host (other jobs) a 6 s session expired mid-run and the
        # static member was fenced. Fast failover is not what this bench measures.
        # fetch.wait.max.ms 50: Tansu does not answer a waiting fetch when new records are
        # committed, only at the end of the wait: with the default 500 ms each stage's batch
        # waited ~0.5 s (967 instead of 8,747 points/s for 1 instance). Kafka answers at once.
        '[queue.kafka.defaults.consumer.properties]\n"session.timeout.ms" = "45000"\n"heartbeat.interval.ms" = "3000"\n"fetch.wait.max.ms" = "50"\n'
        f'[[kafka]]\nenabled = true\nid = "out"\nbrokers = ["{bootstrap}"]\n'
    )
    return path


class _Engines:
    def __init__(self, config: Path, count: int) -> None:
        self.config = config
        self.data = load_config(config).data_dir
        self.names = [f"i{k}" for k in range(count)]
        exe = Path(sys.executable).parent / "kapacity"
        self.procs = [
            subprocess.Popen([str(exe), "engine", "run", "--config", str(config), "--instance", name],
                             stdout=subprocess.DEVNULL, stderr=(config.parent / f"{config.stem}-{name}.log").open("wb"))
            for name in self.names
        ]

    def statuses(self) -> list[dict[str, Any]]:
        out = []
        for name in self.names:
            try:
                out.append(json.loads((Path(self.data) / "runtime-status" / f"{name}.json").read_text()))
            except (OSError, ValueError):
                out.append({})
        return out

    def settled(self, partitions: int) -> bool:
        """Every stage of every instance owns partitions; together they own all (engine)."""
        for name, p in zip(self.names, self.procs, strict=True):
            if p.poll() is not None:
                log = (self.config.parent / f"{self.config.stem}-{name}.log").read_text(errors="replace")
                raise SystemExit(f"engine {name} exited with {p.returncode}:\n{log[-3000:]}")
        st = self.statuses()
        if not all(s.get("stages") for s in st):
            return False
        owned = sorted(q for s in st for q in s["stages"].get("engine", {}).get("partitions", []))
        every_stage = all(info.get("partitions") for s in st for info in s["stages"].values())
        return owned == list(range(partitions)) and every_stage

    def cpu(self) -> list[float]:
        return [_cpu_s(p.pid) for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(40)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


def _committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return sum(max(0, tp.offset) for tp in tps)
    finally:
        c.close()


class _Output:
    """Counts the committed messages of the one-partition output topic."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                           "isolation.level": "read_committed", "enable.auto.commit": False})
        self.c.assign([TopicPartition(topic, 0, 0)])
        self.n = 0

    def count(self) -> int:
        self.n += sum(1 for m in self.c.consume(10_000, 0.05) if m.error() is None)
        return self.n


def run(bootstrap: str, tmp: Path, instances: int, points: list[Point], events: int, partitions: int,
        broker_pid: int | None, script: str = SCRIPT) -> dict[str, Any]:
    prefix = f"so{instances}_{uuid.uuid4().hex[:6]}"
    config_path = _write_config(tmp, bootstrap, prefix, partitions)
    config = load_config(config_path)
    naming = config.queue.kafka.naming()
    queue = open_queue(config, instance_id="bench")  # creates the topics
    out_topic = f"{prefix}_out"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # held: its futures need it alive
    admin.create_topics([NewTopic(out_topic, 1, 1)])[out_topic].result(15)
    queue.emit(Kind.TASKS, "cpu", TaskDefinition("cpu", script, {}, (), True).value())
    queue.emit(Kind.HANDLERS, "cpu/out", {"id": "out", "topic": "cpu", "kind": "kafka",
                                          "options": {"cluster": "out", "topic": out_topic}})
    engines = _Engines(config_path, instances)
    try:
        try:
            _wait(lambda: engines.settled(partitions), 120, f"{instances} instance(s) to own the partitions", 0.2)
        except SystemExit:
            print(json.dumps([{k: {n: i.get("partitions") for n, i in s.get("stages", {}).items()} if k == "stages"
                               else v for k, v in s.items() if k in ("instance", "stages")}
                              for s in engines.statuses()]), file=sys.stderr)
            raise
        output = _Output(bootstrap, out_topic)
        cpu0, broker0 = engines.cpu(), _tree_cpu_s(broker_pid) if broker_pid else 0.0
        t0, feeder0 = time.monotonic(), time.process_time()
        items = [(series_key(p), point_value(p)) for p in points]
        for i in range(0, len(items), 5000):
            queue.emit_many(Kind.POINTS, items[i:i + 5000])
        emit_s, emit_cpu = time.monotonic() - t0, time.process_time() - feeder0
        group, topic = naming.group(Kind.POINTS, "engine"), naming.topic(Kind.POINTS)
        _wait(lambda: _committed(bootstrap, group, topic, partitions) >= len(points), 600, "the engine", 0.1)
        engine_s = time.monotonic() - t0
        _wait(lambda: output.count() >= events, 600, f"{events} alert events on the output topic", 0.0)
        e2e_s = time.monotonic() - t0
        cpu = [round(b - a, 2) for a, b in zip(cpu0, engines.cpu(), strict=True)]
        broker_cpu = round(_tree_cpu_s(broker_pid) - broker0, 2) if broker_pid else None
        statuses = engines.statuses()
        output.c.close()
    finally:
        engines.stop()
        queue.close()
    return {
        "instances": instances, "partitions": partitions, "points": len(points), "events": events,
        "engine_s": round(engine_s, 2), "e2e_s": round(e2e_s, 2),
        "points_per_s": round(len(points) / e2e_s), "engine_points_per_s": round(len(points) / engine_s),
        "cpu_s": dict(zip(engines.names, cpu, strict=True)), "cpu_s_total": round(sum(cpu), 2),
        "cpu_us_per_point": round(sum(cpu) / len(points) * 1e6, 1),
        "engine_partitions": {n: s.get("stages", {}).get("engine", {}).get("partitions") for n, s in
                              zip(engines.names, statuses, strict=True)},
        "loadavg_1m_at_end": round(os.getloadavg()[0], 1),
        "broker_cpu_s": broker_cpu, "feeder": {"emit_s": round(emit_s, 2), "cpu_s": round(emit_cpu, 2)},
        "_points_topic": topic,
    }


def ceiling(bootstrap: str, topic: str, n: int) -> dict[str, Any]:
    """One raw transactional consume → produce loop (batches of 500) over ``n`` points."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ceil-{uuid.uuid4().hex[:8]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False, "isolation.level": "read_committed"})
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"ceil-{uuid.uuid4().hex[:8]}"})
    p.init_transactions(30)
    c.subscribe([topic])
    sink = f"{topic}_ceiling_sink"
    seen, t0, cpu0 = 0, 0.0, 0.0
    while seen < n:
        batch = [m for m in c.consume(500, 1.0) if m.error() is None]
        if not batch:
            continue
        if not seen:
            t0, cpu0 = time.monotonic(), time.process_time()
        p.begin_transaction()
        for m in batch:
            p.produce(sink, m.value(), m.key())
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
        p.commit_transaction(30)
        seen += len(batch)
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    c.close()
    return {"what": "raw confluent-kafka txn consume→produce, 1 process", "points": seen,
            "points_per_s": round(seen / elapsed), "cpu_s": round(cpu, 2),
            "cpu_us_per_point": round(cpu / seen * 1e6, 1)}


@contextmanager
def _broker(bootstrap: str, data_dir: Path, kind: str) -> Iterator[tuple[str, int | None]]:
    """The external broker, or a fresh noida-db / Tansu (a group on a broker that already
    served several runs was seen to stall under heavy load: each run gets its own)."""
    if bootstrap:
        yield bootstrap, None
        return
    from kapacity.kafka.devbroker import start_noida, start_tansu

    broker = start_tansu() if kind == "tansu" else start_noida(data_dir=data_dir)
    try:
        yield broker.bootstrap, broker.process.pid
    finally:
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--points", type=int, default=60_000)
    ap.add_argument("--hosts", type=int, default=3_000, help="series (alert IDs)")
    ap.add_argument("--instances", default="1,2,3")
    ap.add_argument("--partitions", type=int, default=6, help=">= the largest instance count")
    ap.add_argument("--bootstrap", default=os.environ.get("KAPACITY_TEST_KAFKA", ""))
    ap.add_argument("--aligned", action="store_true", help="groupBy(*): no repartition hop")
    ap.add_argument("--broker", choices=["noida", "tansu"], default="noida",
                    help="the broker started when none is named (see the module doc)")
    args = ap.parse_args()
    counts = [int(x) for x in args.instances.split(",")]
    points, events = _points(args.points, args.hosts)
    result: dict[str, Any] = {
        "command": " ".join(["bench/scaleout.py", *sys.argv[1:]]),
        "script": ALIGNED_SCRIPT if args.aligned else SCRIPT, "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()], "runs": [],
    }
    result["broker"] = "external" if args.bootstrap else f"{args.broker}, a fresh one per run"
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for n in counts:
            with _broker(args.bootstrap, tmp / f"broker{n}", args.broker) as (bootstrap, broker_pid):
                r = run(bootstrap, tmp, n, points, events, args.partitions, broker_pid,
                        ALIGNED_SCRIPT if args.aligned else SCRIPT)
                topic = r.pop("_points_topic")
                result["runs"].append(r)
                print(json.dumps(r), file=sys.stderr)
                if n == counts[-1]:
                    result["ceiling"] = ceiling(bootstrap, topic, len(points))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
