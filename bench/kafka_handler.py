"""Kafka handler throughput against raw confluent-kafka, in the same run, same settings.

(a) raw: confluent-kafka produces N pre-rendered ~400-byte JSON messages (keys = alert IDs)
    and waits until every one is acknowledged (a counting delivery callback);
(b) handler: kapacity's KafkaHandler gets N AlertData (JSON rendering, partitioning,
    buffering and stats included) and the run ends when all N are acknowledged.

Both use the librdkafka properties kapacity derives from the same ``[[kafka]]`` section
(batch-size 100, batch-timeout 1s by default: Kapacitor's defaults). Both leave the partition
to librdkafka's ``consistent_random`` key hash (raw: librdkafka's default; the handler: its
default ``crc32`` is the same rule, so the producer lets the client apply it), so the raw side
stays the ceiling for the same placement of messages.

Run: ``.venv/bin/python bench/kafka_handler.py [--n N] [--batch-size B] [--partitions P] [--repeat R]``.
Starts its own Tansu broker unless ``KAPACITY_BENCH_KAFKA=host:port`` names one.
Prints ``{"n": ..., "raw_msgs_per_s": ..., "handler_msgs_per_s": ..., "ratio": ...,
"ratio_min": ..., "ratio_max": ..., "raw_cpu_us_per_msg": ..., "handler_cpu_us_per_msg": ...,
"cpu_ratio": ...}``: rates are the best run of each side, ``ratio`` the median over the
alternating (raw, handler) pairs of handler/raw, ``cpu_ratio`` the median of raw CPU per
message / handler CPU per message (1.0 = the handler costs no more than raw producing); stderr
adds the breakdown: the handler's producer path with pre-rendered values, the CPU cost of
``encode_alert_json`` per alert (the C accelerator when built), and the process CPU time per
message of both sides (this thread and librdkafka's; less disturbed by other load on a shared
machine than wall-clock rates, so compare these too).
Never asserts times (benchmarks inform, tests decide).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from kapacity.alert.event import AlertData, Result, Series, encode_alert_json
from kapacity.config import Config, KafkaClusterConfig
from kapacity.gotypes import Duration, Level, Time
from kapacity.handlers.kafka import KafkaHandler, ProducerPool, checked_producer_config
from kapacity.kafka.devbroker import BrokerProcess, start_tansu

#: Distinct alerts cycled through: enough distinct IDs to spread over partitions, few
#: enough that building them is not what the benchmark measures.
DISTINCT_ALERTS = 1000


def make_alerts(count: int) -> list[AlertData]:
    out = []
    for i in range(count):
        host = f"server-{i:05d}.example.com"
        out.append(AlertData(
            id=f"cpu_usage_idle:cpu=cpu-total,host={host}",
            message=f"CPU idle {host} CRITICAL",
            details="",
            time=Time(1_767_225_600_000_000_000 + i * 1_000_000),
            duration=Duration(90_000_000_000),
            level=Level.CRITICAL,
            data=Result([Series(
                "cpu", {"cpu": "cpu-total", "host": host},
                ["time", "usage_idle", "usage_user"],
                [[Time(1_767_225_600_000_000_000 + i * 1_000_000), 4.2, 91.7]],
            )]),
            previous_level=Level.WARNING,
        ))
    return out


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        fut.result(15)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        t = admin.list_topics(name, timeout=5).topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        time.sleep(0.05)
    raise SystemExit(f"topic {name} did not appear")


def run_raw(
    conf: dict[str, Any], topic: str, keys: list[bytes], values: list[bytes], n: int
) -> tuple[float, float]:
    """(acknowledged msgs/s, process CPU us per message: this thread and librdkafka's)."""
    acked = 0
    failed = 0

    def report(err: Any, msg: Any) -> None:
        nonlocal acked, failed
        if err is None:
            acked += 1
        else:
            failed += 1

    producer = Producer({**conf, "on_delivery": report})
    # Warm-up (connection, metadata) outside the timed run, as for the handler.
    producer.produce(topic, values[0], keys[0])
    producer.flush(10)
    acked = failed = 0
    m = len(keys)
    cpu = time.process_time()
    started = time.perf_counter()
    for i in range(n):
        while True:
            try:
                producer.produce(topic, values[i % m], keys[i % m])
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)
    while acked + failed < n:
        producer.flush(1)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    if failed:
        print(f"raw: {failed} messages failed", file=sys.stderr)
    return n / elapsed, cpu / n * 1e6


def run_handler(
    config: Config, topic: str, alerts: list[AlertData], n: int
) -> tuple[float, float, dict[str, int]]:
    """(acknowledged alerts/s, process CPU us per alert, the handler's stats)."""
    # The buffer holds the whole run: the benchmark measures throughput, not overflow.
    pool = ProducerPool(capacity=max(n, 100_000))
    handler = KafkaHandler.create({"topic": topic}, config, pool)
    handler.handle(alerts[0])  # warm-up: connection and topic metadata
    handler.flush(10)
    m = len(alerts)
    handle = handler.handle
    cpu = time.process_time()
    started = time.perf_counter()
    for i in range(n):
        handle(alerts[i % m])
    while not handler.flush(1):
        pass
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    stats = handler.stats()
    pool.close(10)
    return n / elapsed, cpu / n * 1e6, stats


def run_producer_only(config: Config, topic: str, keys: list[bytes], values: list[bytes], n: int) -> float:
    """Diagnostic: the handler's producer path with pre-rendered values (no JSON rendering)."""
    pool = ProducerPool(capacity=max(n, 100_000))
    handler = KafkaHandler.create({"topic": topic}, config, pool)
    handler.handle(make_alerts(1)[0])  # warm-up
    handler.flush(10)
    producer, choose = handler._producer, handler._choose  # noqa: SLF001 - a diagnostic split
    send = producer.send
    m = len(keys)
    started = time.perf_counter()
    for i in range(n):
        send(topic, keys[i % m], values[i % m], choose)
    while not handler.flush(1):
        pass
    elapsed = time.perf_counter() - started
    pool.close(10)
    return n / elapsed


def _render_cost_us(alerts: list[AlertData], rounds: int = 20) -> float:
    """CPU us per ``encode_alert_json`` call, best of ``rounds`` (the machine is shared)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for a in alerts:
            encode_alert_json(a)
        best = min(best, time.process_time() - started)
    return best / len(alerts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=int(os.environ.get("KAPACITY_BENCH_N", "200000")))
    parser.add_argument("--batch-size", type=int, default=100, help="[[kafka]] batch-size")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="alternating (raw, handler) pairs")
    args = parser.parse_args()

    external = os.environ.get("KAPACITY_BENCH_KAFKA", "").strip()
    broker: BrokerProcess | None = None
    if external:
        bootstrap = external
    else:
        broker = start_tansu()
        bootstrap = broker.bootstrap
    try:
        cluster = KafkaClusterConfig(enabled=True, id="bench", brokers=[bootstrap], batch_size=args.batch_size)
        config = Config(kafka=[cluster])
        conf = checked_producer_config(cluster)
        alerts = make_alerts(DISTINCT_ALERTS)
        keys = [a.id.encode() for a in alerts]
        values = [encode_alert_json(a) for a in alerts]
        run = uuid.uuid4().hex[:8]
        raw_topic, handler_topic = f"bench-raw-{run}", f"bench-handler-{run}"
        send_topic = f"bench-send-{run}"
        for t in (raw_topic, handler_topic, send_topic):
            create_topic(bootstrap, t, args.partitions)

        # --repeat alternating pairs (raw, then handler): the machine is shared, so each pair
        # gives a ratio measured under the same load; min/median/max of those are reported,
        # and the best rate / least CPU of each side.
        raw_rates: list[float] = []
        handler_rates: list[float] = []
        raw_cpus: list[float] = []
        handler_cpus: list[float] = []
        send_rate = 0.0
        stats: dict[str, int] = {}
        for _ in range(args.repeat):
            rate, cpu = run_raw(conf, raw_topic, keys, values, args.n)
            raw_rates.append(rate)
            raw_cpus.append(cpu)
            rate, cpu, stats = run_handler(config, handler_topic, alerts, args.n)
            handler_rates.append(rate)
            handler_cpus.append(cpu)
            send_rate = max(send_rate, run_producer_only(config, send_topic, keys, values, args.n))
        ratios = sorted(h / r for h, r in zip(handler_rates, raw_rates))
        cpu_ratios = sorted(r / h for h, r in zip(handler_cpus, raw_cpus))
        raw_rate, handler_rate = max(raw_rates), max(handler_rates)
        raw_cpu, handler_cpu = min(raw_cpus), min(handler_cpus)
        render_us = _render_cost_us(alerts)
        print(
            f"message size ~{sum(map(len, values)) // len(values)} B, stats {stats}, "
            f"producer path without rendering {send_rate:.0f} msg/s, "
            f"encode_alert_json {render_us:.1f} us/alert, "
            f"process CPU per message: raw {raw_cpu:.1f} us, handler {handler_cpu:.1f} us, "
            f"broker {'external ' + bootstrap if external else 'tansu (started here)'}",
            file=sys.stderr,
        )
        print(json.dumps({
            "n": args.n,
            "raw_msgs_per_s": round(raw_rate),
            "handler_msgs_per_s": round(handler_rate),
            "ratio": round(statistics.median(ratios), 3),
            "ratio_min": round(ratios[0], 3),
            "ratio_max": round(ratios[-1], 3),
            "raw_cpu_us_per_msg": round(raw_cpu, 2),
            "handler_cpu_us_per_msg": round(handler_cpu, 2),
            "cpu_ratio": round(statistics.median(cpu_ratios), 3),
        }))
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
