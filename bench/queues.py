"""Queue throughput: messages/s through emit → receive, for each backend (issue 5).

For each backend, N small JSON points (~60 bytes, 1000 series keys), ``emit_many`` in batches of
``--batch``, received by one consumer group (``receive``, batches of ``--receive-batch``: the
queue's ``DEFAULT_BATCH`` of 500 unless given) whose handler reads every value:

* phased: emit all N, then receive all N — ``emit_msgs_per_s``, ``receive_msgs_per_s`` and
  ``emit_receive_msgs_per_s`` = N / (first emit → last message handled);
* pipelined: a thread emits while the group receives — ``pipelined_msgs_per_s``;
* CPU: ``emit_cpu_us`` / ``receive_cpu_us`` = the calling thread's CPU per message
  (``time.thread_time``: what kapacity's Python code costs, librdkafka's own threads excluded),
  and ``cpu_bound_msgs_per_s`` = 1e6 / (their sum): the phased rate if the thread had a core
  to itself. On a shared machine wall-clock rates swing with the load; CPU figures much less.

For Kafka, ``raw`` is plain confluent-kafka in the same run against the same broker, with the
same record bytes (pre-encoded), the same producer/consumer properties and partitions:
``produce_batch`` of ready dicts + ``flush``, then ``consume`` from every partition (assigned,
no group, no commits, values untouched) — the ceiling librdkafka and the broker set for any
Python client. ``ratio`` = ours / raw, phased.

Producer properties: the documented defaults (``acks=all``, ``compression.type=lz4``) plus
``linger.ms=5``; consumers: the defaults (``read_committed``, ``fetch.queue.backoff.ms=10``)
with ``session.timeout.ms=6000``.

Run: ``.venv/bin/python bench/queues.py [--n N] [--batch B] [--receive-batch R] [--backend embedded|kafka|all]
[--broker tansu|noida] [--repeat R]``. The Kafka run starts its own broker unless
``KAPACITY_BENCH_KAFKA=host:port`` names one. Prints one JSON object: with ``--repeat`` > 1,
every figure as ``{"min", "median", "max"}`` over the runs. Never asserts times.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kapacity.config.queue import QueueConfig
from kapacity.kafka.devbroker import BrokerProcess, start_noida, start_tansu
from kapacity.queue import Kind, codec
from kapacity.queue.base import DEFAULT_BATCH, Message, Queue
from kapacity.queue.embedded import EmbeddedQueue
from kapacity.queue.kafka import KafkaQueue

#: Distinct series keys: enough to spread over partitions.
SERIES = 1000
PARTITIONS = 4
PRODUCER = {"linger.ms": 5}
CONSUMER = {"session.timeout.ms": 6000, "group.protocol": "classic"}


def points(n: int) -> list[tuple[str, Any]]:
    return [
        (f"cpu,host=h{i % SERIES}", {"m": "cpu", "t": {"host": f"h{i % SERIES}"}, "f": {"idle": 4.2}, "ts": i})
        for i in range(n)
    ]


def prepared(n: int) -> list[tuple[str, Any]]:
    items = points(n)
    # The input data is not the queue's: keep the cyclic GC from re-scanning it all the time.
    gc.freeze()
    return items


def receive_all(q: Queue, group: str, n: int, max_messages: int = DEFAULT_BATCH) -> int:
    count = 0
    values: list[Any] = [None]

    def handle(m: Message) -> None:
        nonlocal count
        values[0] = m.value  # every real consumer reads the value: so does the benchmark
        count += 1

    deadline = time.monotonic() + 120
    while count < n and time.monotonic() < deadline:
        q.receive(Kind.POINTS, group, handle, max_messages=max_messages, timeout=1.0)
    return count


def emit_all(q: Queue, items: list[tuple[str, Any]], batch: int) -> None:
    for i in range(0, len(items), batch):
        q.emit_many(Kind.POINTS, items[i : i + batch])


def timed(f: Callable[[], Any]) -> tuple[Any, float, float]:
    """``f()``, its wall time and the calling thread's CPU time (s)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    out = f()
    return out, time.perf_counter() - wall, time.thread_time() - cpu


def run(q: Queue, n: int, batch: int, group: str = "bench", receive_batch: int = DEFAULT_BATCH) -> dict[str, Any]:
    items = prepared(n)
    _, emit_s, emit_cpu = timed(lambda: emit_all(q, items, batch))
    count, recv_s, recv_cpu = timed(lambda: receive_all(q, group, n, receive_batch))
    emit_us, recv_us = emit_cpu / n * 1e6, recv_cpu / max(count, 1) * 1e6
    return {
        "received": count,
        "emit_msgs_per_s": round(n / emit_s),
        "receive_msgs_per_s": round(count / recv_s),
        "emit_receive_msgs_per_s": round(count / (emit_s + recv_s)),
        "emit_cpu_us": round(emit_us, 2),
        "receive_cpu_us": round(recv_us, 2),
        "cpu_bound_msgs_per_s": round(1e6 / (emit_us + recv_us)),
    }


def run_pipelined(q: Queue, n: int, batch: int, group: str, receive_batch: int = DEFAULT_BATCH) -> dict[str, Any]:
    items = prepared(n)
    start = time.perf_counter()
    producer = threading.Thread(target=emit_all, args=(q, items, batch))
    producer.start()
    count = receive_all(q, group, n, receive_batch)
    done = time.perf_counter()
    producer.join()
    return {"pipelined_received": count, "pipelined_msgs_per_s": round(count / (done - start))}


def bench_embedded(n: int, batch: int, receive_batch: int = DEFAULT_BATCH) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        phased_q = EmbeddedQueue(Path(d) / "phased.db", cleaner_interval_s=0)
        pipelined_q = EmbeddedQueue(Path(d) / "pipelined.db", cleaner_interval_s=0)
        try:
            return {
                **run(phased_q, n, batch, receive_batch=receive_batch),
                **run_pipelined(pipelined_q, n, batch, "bench", receive_batch),
            }
        finally:
            phased_q.close()
            pipelined_q.close()


def kafka_queue(bootstrap: str) -> KafkaQueue:
    prefix = f"bench{uuid.uuid4().hex[:6]}_"
    cfg = QueueConfig.model_validate(
        {
            "type": "kafka",
            "kafka": {
                "client": {"properties": {"bootstrap.servers": bootstrap}},
                "defaults": {
                    "topic": {"partitions": PARTITIONS},
                    "topic-prefix": prefix,
                    "consumer-prefix": prefix,
                    "consumer": {"properties": CONSUMER},
                    "producer": {"properties": PRODUCER},
                },
            },
        },
        by_alias=True,
        by_name=False,
    )
    q = KafkaQueue(cfg.kafka)
    # Join the group before timing: Tansu's join takes half the session timeout.
    q.receive(Kind.POINTS, "bench", lambda m: None, timeout=10)
    return q


def raw_kafka(q: KafkaQueue, items: list[tuple[str, Any]]) -> dict[str, Any]:
    """Plain confluent-kafka, same broker, properties and record bytes, on a fresh topic."""
    topic = q.naming.topic(Kind.POINTS) + "_raw"
    admin = AdminClient(q.settings.client_properties())
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    records = [{"key": k, "value": codec.encode(v)} for k, v in items]
    producer = Producer({**q.settings.producer_properties(), "delivery.report.only.error": True})
    n = len(records)

    def produce() -> None:
        for i in range(0, n, 1000):
            todo = records[i : i + 1000]
            while True:
                try:
                    queued = producer.produce_batch(topic, todo, on_delivery=lambda err, msg: None)
                except BufferError:
                    queued = 0
                if queued == len(todo):
                    break
                if queued:  # local buffer full: retry what it refused, once there is room
                    todo = [m for m in todo if m.pop("_error", None) is not None]
                producer.poll(0.05)
        if producer.flush(60):
            raise RuntimeError("raw producer: records without an ack after 60 s")

    consumer = Consumer(q.consumer_config(f"raw-{uuid.uuid4().hex}"))  # the queue's own consumer properties
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])

    def consume() -> int:
        got = 0
        deadline = time.monotonic() + 120
        while got < n and time.monotonic() < deadline:
            got += len(consumer.consume(5000, 1.0))
        return got

    try:
        _, emit_s, _ = timed(produce)
        got, recv_s, _ = timed(consume)
    finally:
        consumer.close()
    return {
        "received": got,
        "emit_msgs_per_s": round(n / emit_s),
        "receive_msgs_per_s": round(got / recv_s),
        "emit_receive_msgs_per_s": round(got / (emit_s + recv_s)),
    }


def start_broker(kind: str) -> BrokerProcess:
    return start_noida() if kind == "noida" else start_tansu()


def bench_kafka(n: int, batch: int, broker_kind: str, receive_batch: int = DEFAULT_BATCH) -> dict[str, Any]:
    external = os.environ.get("KAPACITY_BENCH_KAFKA", "").strip()
    broker = None if external else start_broker(broker_kind)
    bootstrap = external or (broker.bootstrap if broker else "")
    phased_q, pipelined_q = kafka_queue(bootstrap), kafka_queue(bootstrap)
    try:
        phased = run(phased_q, n, batch, receive_batch=receive_batch)
        pipelined = run_pipelined(pipelined_q, n, batch, "bench", receive_batch)
        raw = raw_kafka(phased_q, points(n))
        return {
            **phased,
            **pipelined,
            "raw": raw,
            "ratio": round(phased["emit_receive_msgs_per_s"] / raw["emit_receive_msgs_per_s"], 3),
            "broker": "external" if external else broker_kind,
        }
    finally:
        phased_q.close()
        pipelined_q.close()
        if broker is not None:
            broker.stop()


def summarise(runs: list[Any]) -> Any:
    """Numbers → {min, median, max}; dicts recursively; anything else as in the first run."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: summarise([r[k] for r in runs]) for k in first}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return {"min": min(runs), "median": statistics.median(runs), "max": max(runs)}
    return first


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--receive-batch", type=int, default=DEFAULT_BATCH)
    ap.add_argument("--backend", choices=["embedded", "kafka", "all"], default="all")
    ap.add_argument("--broker", choices=["tansu", "noida"], default="tansu")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    runs: list[dict[str, Any]] = []
    for _ in range(args.repeat):
        out: dict[str, Any] = {"loadavg_1m_before": round(os.getloadavg()[0], 2)}
        if args.backend in ("embedded", "all"):
            out["embedded"] = bench_embedded(args.n, args.batch, args.receive_batch)
        if args.backend in ("kafka", "all"):
            out["kafka"] = bench_kafka(args.n, args.batch, args.broker, args.receive_batch)
        runs.append(out)
    result = runs[0] if len(runs) == 1 else {"runs": len(runs), **summarise(runs)}
    print(json.dumps({"n": args.n, "batch": args.batch, "receive_batch": args.receive_batch, "cpus": os.cpu_count(), **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
