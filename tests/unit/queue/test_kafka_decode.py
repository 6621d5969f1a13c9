"""The Kafka backend's hot paths (issue 5) give exactly what the record-by-record paths give.

No broker: records are built with confluent-kafka's ``Message`` constructor, and the queue
is created with ``ensure=False`` against a closed port (nothing is sent).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError
from confluent_kafka import Message as KafkaMessage

from kapacity.config.queue import KafkaQueueConfig
from kapacity.queue import Kind, codec
from kapacity.queue.base import Message
from kapacity.queue.errors import QueueUnavailableError
from kapacity.queue.kafka import _CHUNK, KafkaQueue, _Delivery, _plain_messages
from kapacity.queue.protection import REF_MAGIC


def record(offset: int, key: bytes | None, value: bytes | None, partition: int = 0) -> KafkaMessage:
    return KafkaMessage(
        topic="t", partition=partition, offset=offset, key=key, value=value, timestamp=(1, 1_700_000_000_000 + offset)
    )


@pytest.fixture
def queue() -> Iterator[KafkaQueue]:
    props = {"bootstrap.servers": "127.0.0.1:1", "log_level": 0}  # log_level 0: no connection noise
    cfg = KafkaQueueConfig.model_validate({"client": {"properties": props}})
    q = KafkaQueue(cfg, ensure=False)
    try:
        yield q
    finally:
        q.close()


PLAIN = [
    record(7, b"cpu,host=a", b'{"m":"cpu","f":{"idle":4.2},"ts":1}', partition=2),
    record(8, "h\u00e9\u20ac".encode(), b'"text"', partition=1),
    record(9, b"n", b"null"),
]


def test_plain_batch_becomes_messages_with_every_field() -> None:
    got = _plain_messages(Kind.POINTS, PLAIN)
    assert got == [
        Message(Kind.POINTS, "cpu,host=a", {"m": "cpu", "f": {"idle": 4.2}, "ts": 1}, 7, 2, 1_700_000_000_007),
        Message(Kind.POINTS, "h\u00e9\u20ac", "text", 8, 1, 1_700_000_000_008),
        Message(Kind.POINTS, "n", None, 9, 0, 1_700_000_000_009),
    ]
    assert all(type(m) is Message for m in got)
    assert got[0].key == "cpu,host=a" and got[0].offset == 7 and got[0].partition == 2


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        (b"k", None, ValueError),  # tombstone
        (b"k", REF_MAGIC + b'{"ref":"x","sha256":"y"}', ValueError),  # storage reference
        (b"k", b"{not json", ValueError),  # poison
        (b"k", b"", ValueError),
        (b"\xff\xfe", b"1", ValueError),  # key not UTF-8
        (None, b"1", AttributeError),  # no key
    ],
)
def test_plain_path_refuses_anything_not_plain(key: bytes | None, value: bytes | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        _plain_messages(Kind.POINTS, [*PLAIN, record(10, key, value)])


def test_a_plain_batch_decodes_as_record_by_record(queue: KafkaQueue) -> None:
    assert queue._decode_batch(Kind.EVENTS, PLAIN) == [queue._decode(Kind.EVENTS, r) for r in PLAIN]


def test_a_mixed_batch_falls_back_and_keeps_order_and_fields(queue: KafkaQueue) -> None:
    batch = [
        PLAIN[0],
        record(20, b"gone", None, partition=3),  # tombstone → value None
        record(21, b"\xffbad", b"[1,2]"),  # key decoded with replacement characters
        record(22, None, b"{}"),  # no key → ""
        PLAIN[1],
    ]
    got = queue._decode_batch(Kind.TASKS, batch)
    assert got == [queue._decode(Kind.TASKS, r) for r in batch]
    assert [(m.key, m.value, m.offset, m.partition) for m in got] == [
        ("cpu,host=a", {"m": "cpu", "f": {"idle": 4.2}, "ts": 1}, 7, 2),
        ("gone", None, 20, 3),
        ("\ufffdbad", [1, 2], 21, 0),
        ("", {}, 22, 0),
        ("h\u00e9\u20ac", "text", 8, 1),
    ]


def chunks_sent(q: KafkaQueue, monkeypatch: pytest.MonkeyPatch) -> list[list[dict[str, Any]]]:
    sent: list[list[dict[str, Any]]] = []

    def send(topic: str, chunk: list[dict[str, Any]], delivery: _Delivery) -> int:
        assert topic == q.naming.topic(Kind.POINTS)
        sent.append(chunk)
        return len(chunk)

    monkeypatch.setattr(q, "_send", send)
    return sent


def test_emit_hot_path_sends_json_bytes_and_tombstones_in_bounded_chunks(
    queue: KafkaQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = chunks_sent(queue, monkeypatch)
    items: list[tuple[str, Any]] = [(f"k{i}", {"i": i}) for i in range(_CHUNK + 5)]
    items[3] = ("gone", None)
    n = queue._produce(Kind.POINTS, iter(items), _Delivery(None))
    assert n == _CHUNK + 5
    assert [len(c) for c in sent] == [_CHUNK, 5]
    flat = [m for c in sent for m in c]
    assert flat[3] == {"key": "gone", "value": None}
    assert flat[0] == {"key": "k0", "value": b'{"i":0}'}
    assert [m["key"] for m in flat] == [k for k, _ in items]
    assert all(orjson.loads(m["value"]) == v for m, (_, v) in zip(flat, items) if v is not None)


def test_emit_hot_path_sends_what_the_general_path_sends(queue: KafkaQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = chunks_sent(queue, monkeypatch)
    items: list[tuple[str, Any]] = [("a", {"x": [1.5, None]}), ("b", None), ("\u00e9", "s")]
    queue._produce(Kind.POINTS, items, _Delivery(None))
    fast = sent.pop()
    # Any logger rule sends every record through the general loop.
    monkeypatch.setattr(queue, "loggers", _NoLoggers())
    queue._produce(Kind.POINTS, items, _Delivery(None))
    assert sent.pop() == fast


class _NoLoggers:
    """Stands in for KafkaLoggers whose rules match nothing."""

    def produced(self, topic: str, key: str, data: bytes | None) -> None:
        pass


def test_records_written_by_earlier_versions_still_decode() -> None:
    # Changelogs persist across upgrades: JSON as earlier versions (and the standard library)
    # wrote it must keep decoding, whitespace and all.
    assert codec.decode(b'{"g": {"a": [1, 2.5, null]}, "l": {"id": "CRITICAL"}}') == {
        "g": {"a": [1, 2.5, None]},
        "l": {"id": "CRITICAL"},
    }
    assert codec.decode(codec.encode({"x": 1})) == {"x": 1}
    with pytest.raises(ValueError):
        codec.loads(None)  # type: ignore[arg-type]  # what a tombstone hands the decoder


def fake(records: list[KafkaMessage]) -> Consumer:
    return cast(Consumer, _FakeConsumer(records))


class _FakeConsumer:
    def __init__(self, records: list[KafkaMessage]) -> None:
        self.records = records

    def poll(self, timeout: float) -> KafkaMessage | None:
        return self.records.pop(0) if self.records else None

    def consume(self, n: int, timeout: float) -> list[KafkaMessage]:
        out, self.records = self.records[:n], self.records[n:]
        return out


def test_a_batch_without_errors_is_returned_whole_and_eof_markers_are_dropped(queue: KafkaQueue) -> None:
    batch = queue._batch(fake(list(PLAIN)), 10, 0)
    assert batch == PLAIN
    eof = KafkaMessage(topic="t", partition=0, offset=3, error=KafkaError(KafkaError._PARTITION_EOF))
    batch = queue._batch(fake([PLAIN[0], eof, PLAIN[1]]), 10, 0)
    assert batch == PLAIN[:2]
    assert queue._batch(fake([]), 10, 0) == []


def test_a_fatal_consumer_error_stops_the_batch(queue: KafkaQueue) -> None:
    fatal = KafkaMessage(topic="t", error=KafkaError(KafkaError._FATAL, "gone", fatal=True))
    with pytest.raises(QueueUnavailableError, match="gone"):
        queue._batch(fake([PLAIN[0], fatal]), 10, 0)
