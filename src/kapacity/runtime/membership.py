"""Cluster membership: every instance publishes its status; every instance sees them all.

Each :class:`~kapacity.runtime.app.Runtime` publishes a status record to the compacted,
broadcast ``instances`` kind (key = instance name) when it starts, every
:data:`DEFAULT_INTERVAL_S`, and once more with ``state: stopped`` when it stops cleanly. Every
instance reads that kind from the beginning, so ``GET /kapacitor/v1/cluster`` on any of them
lists all instances with their partitions (engine and delivery), lag and restore progress.

An instance whose last record is older than :data:`LOST_AFTER_INTERVALS` of its own
publishing intervals is shown as ``lost`` (killed, partitioned, or stuck); one that stopped
cleanly as ``stopped``; records older than :data:`FORGET_AFTER_MS` are not shown at all.
Staleness compares the publisher's wall clock with the reader's: instances are expected to
run NTP-synchronised clocks (a skew of a few seconds only delays or hastens ``lost``).

Each task-running stage's summary carries ``task_stats`` (per task, per node, the non-zero
counters of the pipelines it runs): readers sum them into the cluster's task stats
(:mod:`.taskstats`), which every instance's task API shows.

The core (:func:`make_record`, :func:`stage_summary`, :class:`MembershipView`) is pure and
takes ``now`` as an argument; :class:`Membership` is the thread doing the I/O.

>>> view = MembershipView()
>>> view.apply("a", make_record({"instance": "a", "stages": {}}, host="h", pid=1,
...                             started_ms=0, now_ms=1_000, interval_ms=2_000))
>>> [(i["instance"], i["state"]) for i in view.instances(now_ms=3_000)]
[('a', 'running')]
>>> [(i["instance"], i["state"]) for i in view.instances(now_ms=8_000)]
[('a', 'lost')]
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from kapacity.queue.base import BroadcastReader, Queue
from kapacity.queue.kinds import Kind
from kapacity.runtime.taskstats import compact

__all__ = [
    "DEFAULT_INTERVAL_S",
    "FORGET_AFTER_MS",
    "LOST_AFTER_INTERVALS",
    "STATES",
    "Membership",
    "MembershipView",
    "make_record",
    "stage_summary",
]

log: Final = logging.getLogger("kapacity.runtime.membership")

#: How often an instance publishes its status: often enough that ``lost`` shows within a
#: few seconds of a crash, rarely enough to cost nothing (one small compacted record).
DEFAULT_INTERVAL_S: Final = 2.0
#: Missed intervals before an instance is shown ``lost``: one late publish (a GC pause, a
#: slow broker ack) must not flap the state.
LOST_AFTER_INTERVALS: Final = 3
#: Records not refreshed for a day are hidden: instance names are stable, so the compacted
#: topic holds one record per name ever used; old names must not clutter the status.
FORGET_AFTER_MS: Final = 86_400_000
#: ``running``/``stopping``/``stopped`` are published by the instance itself, ``adopted`` by
#: the survivor running a lost instance's stages (:mod:`.takeover`); ``lost`` is decided by
#: the reader.
STATES: Final = ("running", "stopping", "stopped", "lost", "adopted")
_PUBLISHED: Final = ("running", "stopping", "stopped", "adopted")
#: Stage-status keys that are lists of names (not counters): published as counts only.
_NAME_LISTS: Final = ("tasks", "task_errors")


def _ms_to_rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _int_map(value: Any) -> dict[str, int]:
    """``{partition: n}`` with string keys: the same before and after a JSON round trip."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int | float)}


def stage_summary(info: Mapping[str, Any]) -> dict[str, Any]:
    """One stage's status as published: partitions, lag (+ total), restoring, counters,
    ``task_stats`` (per task, per node: its non-zero counters, see :mod:`.taskstats`) and
    ``http_out`` (the latest series of its ``|httpOut`` groups, see :mod:`.httpout`).

    >>> stage_summary({"partitions": [1, 0], "lag": {0: 3, 1: 4}, "restoring": {}, "events": 9,
    ...                "tasks": ["a", "b"], "idle": True})
    {'partitions': [0, 1], 'lag': {'0': 3, '1': 4}, 'lag_total': 7, 'restoring': {}, 'events': 9, 'idle': True, 'tasks': 2}
    """
    if "error" in info:
        return {"error": str(info["error"])}
    lag = _int_map(info.get("lag"))
    out: dict[str, Any] = {
        "partitions": sorted(int(p) for p in info.get("partitions") or ()),
        "lag": lag,
        "lag_total": sum(lag.values()),
        "restoring": _int_map(info.get("restoring")),
    }
    for key, value in info.items():
        if key in out or key in _NAME_LISTS:
            continue
        if isinstance(value, bool | int | float | str):
            out[key] = value
    for key in _NAME_LISTS:
        if isinstance(info.get(key), list | tuple):
            out[key] = len(info[key])
    if isinstance(info.get("task_stats"), Mapping):  # summed over the cluster by the readers
        out["task_stats"] = compact(info["task_stats"])
    if isinstance(info.get("http_out"), Mapping):  # merged by the readers (see .httpout)
        out["http_out"] = info["http_out"]
    return out


def make_record(
    local: Mapping[str, Any],
    *,
    host: str,
    pid: int,
    started_ms: int,
    now_ms: int,
    interval_ms: int,
    state: str = "running",
) -> dict[str, Any]:
    """The ``instances`` record of one instance, from its local ``Runtime`` status (pure)."""
    if state not in _PUBLISHED:
        raise ValueError(f'unknown published state "{state}"; valid choices: {", ".join(_PUBLISHED)}')
    stages = local.get("stages") or {}
    return {
        "instance": str(local.get("instance", "")),
        "host": host,
        "pid": pid,
        "state": state,
        "queue": local.get("queue"),
        "accepting": bool(local.get("accepting", False)),
        "started_ms": started_ms,
        "seen_ms": now_ms,
        "interval_ms": interval_ms,
        "stages": {str(name): stage_summary(info) for name, info in sorted(stages.items()) if isinstance(info, Mapping)},
    }


def _valid(record: Any) -> bool:
    return (
        isinstance(record, Mapping)
        and isinstance(record.get("seen_ms"), int)
        and isinstance(record.get("interval_ms"), int)
        and isinstance(record.get("stages"), Mapping)
    )


class MembershipView:
    """The latest record per instance, merged from the ``instances`` kind (pure, not locked)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.invalid = 0
        """Records that were not status records (counted, ignored)."""

    def apply(self, key: str, value: Any) -> None:
        """One message: a record replaces the key's previous one; ``None`` (tombstone) removes it.

        A record older than the one held (a reordered or replayed message) is ignored. An
        ``adopted`` record (it has ``adopted_by``) only replaces a record of the same
        incarnation (same ``started_ms``): once the instance itself is back (a new
        incarnation), a late record of its former adopter does not hide it.
        """
        if value is None:
            self.records.pop(key, None)
            return
        if not _valid(value):
            self.invalid += 1
            return
        held = self.records.get(key)
        if held is not None and "adopted_by" in value and held.get("started_ms") != value.get("started_ms"):
            return
        if held is not None and held["seen_ms"] > value["seen_ms"] and held.get("started_ms") == value.get("started_ms"):
            return
        self.records[key] = dict(value)

    def instances(self, now_ms: int, own: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every instance seen within :data:`FORGET_AFTER_MS`, by name, with its state decided.

        ``own`` (this instance's fresh record) replaces whatever the topic last said of it.
        """
        records = dict(self.records)
        if own is not None:
            records[str(own["instance"])] = dict(own)
        out = []
        for name in sorted(records):
            rec = records[name]
            age = max(0, now_ms - int(rec["seen_ms"]))
            if age > FORGET_AFTER_MS:
                continue
            state = str(rec.get("state", "running"))
            if state != "stopped" and age > LOST_AFTER_INTERVALS * max(1, int(rec["interval_ms"])):
                state = "lost"
            entry = {k: v for k, v in rec.items() if k not in ("started_ms", "seen_ms", "interval_ms")}
            entry.update(
                instance=name,
                state=state,
                started=_ms_to_rfc3339(int(rec.get("started_ms", 0))),
                last_seen=_ms_to_rfc3339(int(rec["seen_ms"])),
                last_seen_ago_s=round(age / 1000, 1),
                interval_s=int(rec["interval_ms"]) / 1000,
            )
            out.append(entry)
        return out


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Membership:
    """Publishes this instance's record and reads everyone's, on one daemon thread.

    ``local_status`` returns the instance's own status (``Runtime``'s, without
    ``instances``); it is called on this thread every interval.
    """

    def __init__(
        self,
        queue: Queue,
        instance: str,
        local_status: Callable[[], Mapping[str, Any]],
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.queue, self.instance, self.local_status = queue, instance, local_status
        self.interval_ms = max(1, int(interval_s * 1000))
        self.clock_ms = clock_ms
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started_ms = clock_ms()
        self.view = MembershipView()
        self.published = 0
        self.errors = 0
        """Failed publishes or reads (logged; the next interval tries again)."""
        self.state = "running"
        """What the thread publishes: ``running``, then ``stopping`` while the stages drain."""
        self._publish_now = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, state: str | None = None, local: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """This instance's record now (``local``: its status, if the caller has it already)."""
        return make_record(
            self.local_status() if local is None else local, host=self.host, pid=self.pid,
            started_ms=self.started_ms, now_ms=self.clock_ms(), interval_ms=self.interval_ms,
            state=state or self.state,
        )

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """The latest record per instance, as read (a copy)."""
        with self._lock:
            return {k: dict(v) for k, v in self.view.records.items()}

    def instances(self, own: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """All instances, this one from ``own`` (fresh) when given."""
        with self._lock:
            return self.view.instances(self.clock_ms(), own)

    def publish(self, state: str | None = None) -> None:
        self.queue.emit(Kind.INSTANCES, self.instance, self.record(state))
        self.published += 1

    def set_state(self, state: str) -> None:
        """Publish ``state`` from now on, starting within the thread's next poll (≤ 0.5 s)."""
        if state not in _PUBLISHED[:3]:
            raise ValueError(f'unknown published state "{state}"; valid choices: {", ".join(_PUBLISHED[:3])}')
        self.state = state
        self._publish_now = True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kapacity-membership", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        reader: BroadcastReader | None = None
        next_publish = 0.0
        try:
            while not self._stop.is_set():
                try:
                    if time.monotonic() >= next_publish or self._publish_now:
                        self._publish_now = False
                        next_publish = time.monotonic() + self.interval_ms / 1000
                        self.publish()
                    if reader is None:
                        reader = self.queue.broadcast(Kind.INSTANCES)
                    wait = max(0.0, min(0.5, next_publish - time.monotonic()))
                    batch = reader.poll(1000, wait)
                    if batch:
                        with self._lock:
                            for m in batch:
                                self.view.apply(m.key, m.value)
                    elif wait == 0.0:
                        self._stop.wait(0.01)
                except Exception as exc:  # noqa: BLE001 - status must not stop the instance
                    self.errors += 1
                    log.warning("membership: %s (retrying in %.1fs)", exc, self.interval_ms / 1000)
                    self._stop.wait(self.interval_ms / 1000)
        finally:
            if reader is not None:
                try:
                    reader.close()
                except Exception as exc:  # noqa: BLE001 - closing must not hide the stop
                    log.warning("membership: closing the reader: %s", exc)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (no final record: see :meth:`publish_stopped`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def publish_stopped(self) -> bool:
        """The last record, ``state: stopped``; False (logged) when the queue refused it."""
        try:
            self.publish("stopped")
            return True
        except Exception as exc:  # noqa: BLE001 - a stop must finish even with the queue down
            self.errors += 1
            log.warning("membership: could not publish the stopped state: %s", exc)
            return False
