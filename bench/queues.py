"""Queue throughput: messages/s through emit → receive, for each backend.

For each backend, N small JSON points (~70 bytes, 1000 series keys), ``emit_many`` in batches:

* phased: emit all N, then one consumer group receives all N (handler: count) —
  ``emit_msgs_per_s``, ``receive_msgs_per_s``, and ``phased_msgs_per_s`` = N / (both times);
* pipelined: a thread emits while the group receives — ``pipelined_msgs_per_s`` =
  N / (first emit → last message handled): the queue's steady-state throughput.

For Kafka, ``raw_consume_msgs_per_s`` is plain confluent-kafka reading the same records from
the same broker: the ceiling the broker and librdkafka set for any Python consumer.

Run: ``.venv/bin/python bench/queues.py [--n N] [--batch B] [--backend embedded|kafka|all]``.
The Kafka run starts its own Tansu broker unless ``KAPACITY_BENCH_KAFKA=host:port`` names one.
Prints one JSON object. Never asserts times (benchmarks inform, tests decide).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from kapacity.config.queue import QueueConfig
from kapacity.kafka.devbroker import BrokerProcess, start_tansu
from kapacity.queue import Kind
from kapacity.queue.base import Message, Queue
from kapacity.queue.embedded import EmbeddedQueue
from kapacity.queue.kafka import KafkaQueue

#: Distinct series keys: enough to spread over partitions.
SERIES = 1000


def points(n: int) -> list[tuple[str, Any]]:
    return [
        (f"cpu,host=h{i % SERIES}", {"m": "cpu", "t": {"host": f"h{i % SERIES}"}, "f": {"idle": 4.2}, "ts": i})
        for i in range(n)
    ]


def receive_all(q: Queue, group: str, n: int) -> int:
    count = 0

    def handle(m: Message) -> None:
        nonlocal count
        count += 1

    deadline = time.monotonic() + 120
    while count < n and time.monotonic() < deadline:
        q.receive(Kind.POINTS, group, handle, max_messages=5000, timeout=1.0)
    return count


def emit_all(q: Queue, items: list[tuple[str, Any]], batch: int) -> None:
    for i in range(0, len(items), batch):
        q.emit_many(Kind.POINTS, items[i : i + batch])


def prepared(n: int) -> list[tuple[str, Any]]:
    items = points(n)
    # The input data is not the queue's: keep the cyclic GC from re-scanning it all the time.
    gc.freeze()
    return items


def run(q: Queue, n: int, batch: int, group: str = "bench") -> dict[str, Any]:
    items = prepared(n)
    start = time.perf_counter()
    emit_all(q, items, batch)
    emitted = time.perf_counter()
    count = receive_all(q, group, n)
    done = time.perf_counter()
    return {
        "n": n,
        "received": count,
        "emit_msgs_per_s": round(n / (emitted - start)),
        "receive_msgs_per_s": round(count / (done - emitted)),
        "phased_msgs_per_s": round(count / (done - start)),
    }


def run_pipelined(q: Queue, n: int, batch: int, group: str) -> dict[str, Any]:
    items = prepared(n)
    start = time.perf_counter()
    producer = threading.Thread(target=emit_all, args=(q, items, batch))
    producer.start()
    count = receive_all(q, group, n)
    done = time.perf_counter()
    producer.join()
    return {"pipelined_received": count, "pipelined_msgs_per_s": round(count / (done - start))}


def raw_consume(bootstrap: str, topic: str, n: int) -> int:
    """Plain confluent-kafka: assign every partition (no group join), time until n read."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex}"})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    start = time.perf_counter()
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    got = 0
    deadline = time.monotonic() + 120
    while got < n and time.monotonic() < deadline:
        got += len(c.consume(5000, 0.1))
    rate = round(got / (time.perf_counter() - start))
    c.close()
    return rate


def bench_embedded(n: int, batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        phased_q = EmbeddedQueue(Path(d) / "phased.db", cleaner_interval_s=0)
        pipelined_q = EmbeddedQueue(Path(d) / "pipelined.db", cleaner_interval_s=0)
        try:
            return {**run(phased_q, n, batch), **run_pipelined(pipelined_q, n, batch, "bench")}
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
                    "topic": {"partitions": 4},
                    "topic-prefix": prefix,
                    "consumer-prefix": prefix,
                    "consumer": {"properties": {"session.timeout.ms": 6000, "group.protocol": "classic"}},
                    "producer": {"properties": {"linger.ms": 5}},
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


def bench_kafka(n: int, batch: int) -> dict[str, Any]:
    external = os.environ.get("KAPACITY_BENCH_KAFKA", "").strip()
    broker: BrokerProcess | None = None
    if not external:
        broker = start_tansu()
    bootstrap = external or (broker.bootstrap if broker else "")
    phased_q, pipelined_q = kafka_queue(bootstrap), kafka_queue(bootstrap)
    try:
        phased = run(phased_q, n, batch)
        pipelined = run_pipelined(pipelined_q, n, batch, "bench")
        raw = raw_consume(bootstrap, phased_q.naming.topic(Kind.POINTS), n)
        return {**phased, **pipelined, "raw_consume_msgs_per_s": raw, "broker": "external" if external else "tansu"}
    finally:
        phased_q.close()
        pipelined_q.close()
        if broker is not None:
            broker.stop()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--backend", choices=["embedded", "kafka", "all"], default="all")
    args = ap.parse_args(argv)
    out: dict[str, Any] = {}
    if args.backend in ("embedded", "all"):
        out["embedded"] = bench_embedded(args.n, args.batch)
    if args.backend in ("kafka", "all"):
        out["kafka"] = bench_kafka(args.n, args.batch)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
