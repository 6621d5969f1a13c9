"""open_queue builds the configured backend with the configured naming and protection."""

from __future__ import annotations

from pathlib import Path

from kapacity.config import parse_config
from kapacity.queue import EmbeddedQueue, Kind, open_queue
from kapacity.queue.errors import MessageTooLargeError


def test_embedded_queue_from_config_uses_prefixes_protection_and_data_dir(tmp_path: Path) -> None:
    cfg = parse_config(
        f'data_dir = "{tmp_path}"\n'
        "[queue.embedded]\ncleaner-interval = \"0s\"\n"
        '[queue.kafka.defaults]\ntopic-prefix = "a_"\n'
        "[queue.kafka.message-protection]\nsoft-limit = 64\nhard-limit = 1024\n"
    )
    q = open_queue(cfg)
    try:
        assert isinstance(q, EmbeddedQueue)
        assert q.path == tmp_path / "queue.db"
        assert q.naming.topic(Kind.EVENTS) == "a_events"
        q.emit(Kind.EVENTS, "big", "x" * 100)
        assert len(list((tmp_path / "_messages" / "a_events").iterdir())) == 1
        try:
            q.emit(Kind.EVENTS, "huge", "x" * 2000)
        except MessageTooLargeError as exc:
            assert (exc.size, exc.limit) == (2002, 1024)
        else:
            raise AssertionError("not refused")
        got = q.consumer(Kind.EVENTS, "g").poll(timeout=0)
        assert [(m.key, m.value) for m in got] == [("big", "x" * 100)]
        assert q.stats.refused == 1
    finally:
        q.close()
