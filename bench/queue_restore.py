"""Time to restore alert states from the changelog into an empty state dir (Kafka queue).

Starts a noida-db broker (``kapacity.kafka.devbroker``), writes ``--states`` alert-state
records (the engine's changelog format: ``task/node/group`` → group state + last levels) to
the ``alert_state`` topic in transactions of ``--txn`` records, then restores every partition
with :class:`~kapacity.queue.transactional.TransactionalLoop` into an empty state dir and
prints one JSON object (target: 100,000 states in ≤ 5 s). Benchmarks inform; they never
assert times.

Run: ``.venv/bin/python bench/queue_restore.py [--states 100000] [--partitions 4]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

# Keep bench/ off sys.path (a script there must never shadow a standard-library module).
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from confluent_kafka import Producer  # noqa: E402

from kapacity.config import parse_config  # noqa: E402
from kapacity.kafka.devbroker import start_noida  # noqa: E402
from kapacity.queue import codec  # noqa: E402
from kapacity.queue.admin import ensure_topics, topic_specs  # noqa: E402
from kapacity.queue.kinds import Kind  # noqa: E402
from kapacity.queue.transactional import TransactionalLoop  # noqa: E402


def _record(i: int) -> dict[str, object]:
    history = [0] * 21
    history[1] = 3
    return {"g": {"history": history, "idx": 1, "flapping": False, "changed": True, "expired": False,
                  "first_triggered": i * 10**9, "last_triggered": i * 10**9},
            "l": {f"cpu:host=h{i}": 3}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=100_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--txn", type=int, default=5_000, help="records per transaction when writing")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_noida(data_dir=Path(tmp) / "noida")
        try:
            config = parse_config(
                f'data_dir = "{tmp}/data"\n[queue]\ntype = "kafka"\n'
                f'[queue.kafka.client.properties]\n"bootstrap.servers" = "{broker.bootstrap}"\n'
                f'[queue.kafka.defaults.topic]\npartitions = {args.partitions}\n'
            )
            settings = config.queue.kafka
            ensure_topics(settings.client_properties(), topic_specs(settings), 30)
            topic = settings.naming().topic(Kind.ALERT_STATE)
            producer = Producer({**settings.producer_properties(), "transactional.id": "bench-writer"})
            producer.init_transactions(30)
            t0 = time.perf_counter()
            for start in range(0, args.states, args.txn):
                producer.begin_transaction()
                for i in range(start, min(start + args.txn, args.states)):
                    key = f"cpu/alert2/host=h{i}".encode()
                    while True:
                        try:
                            producer.produce(topic, codec.encode(_record(i)), key, partition=i % args.partitions)
                            break
                        except BufferError:
                            producer.poll(0.05)
                producer.commit_transaction(60)
            write_s = time.perf_counter() - t0
            loop = TransactionalLoop(settings, name="bench", source=Kind.POINTS, changelog=Kind.ALERT_STATE,
                                     process=lambda m, s: (), state_dir=Path(tmp) / "state", instance="0")
            t1 = time.perf_counter()
            restored = 0
            for p in range(args.partitions):
                restored += len(loop._restore(p).items())
            restore_s = time.perf_counter() - t1
            loop.abandon()
        finally:
            broker.stop()
    print(json.dumps({
        "broker": "noida-db",
        "states": args.states,
        "partitions": args.partitions,
        "restored": restored,
        "write_s": round(write_s, 3),
        "restore_s": round(restore_s, 3),
        "restore_states_per_s": round(restored / restore_s) if restore_s else None,
        "target_restore_s": 5.0,
    }))


if __name__ == "__main__":
    main()
