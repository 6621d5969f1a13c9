"""Task and handler definitions as a stage sees them: read-your-writes across the API.

Every stage follows the broadcast ``tasks`` / ``handlers`` kinds with its own reader and
applies what it read between batches. A reader returns what its client has *fetched*, and on
Kafka that lags the log: a task defined, then a point written at once (``kapacitor define``
then a write), could reach the engine stage before the stage's reader had fetched the task —
the point ran through no task and no alert was ever raised; an event could likewise reach
the delivery stage before its reader had fetched the topic handler defined before it. That
was the flaky Kafka-mode end-to-end test (issue 6): on an idle machine the reader won by a
few milliseconds, on two busy cores it sometimes lost.

The rule kept here: **after a stage has polled a batch, before it processes the batch's first
record, it reads its definition readers up to the end the definition kinds have now**
(:meth:`Definitions.refresh_once`; the end comes from one ListOffsets request per kind,
see :func:`kapacity.queue.heads.log_end`). A definition acknowledged before a point was
written is below that end — the definition's ack, then the point's produce, then the batch's
poll, then the question — so the batch runs with it, on whichever instance processes it.
The cost is one request per batch and kind (not per point), and a wait only when the reader
really lags.

The wait is bounded (:data:`END_WAIT_S`): a record that can never be read (a poison record
at the end of a partition, a tombstone compacted away) must not hold a stage for ever.
Past the bound the batch runs with what was read, a warning is logged, ``late`` counts it,
and that end is not waited for again. The embedded backend needs no wait (its poll reads the
table synchronously): :func:`log_end` answers ``None`` there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from kapacity.queue.base import BroadcastReader, Message, Queue
from kapacity.queue.errors import QueueUnavailableError
from kapacity.queue.heads import log_end
from kapacity.queue.kinds import Kind
from kapacity.runtime.delivery import Deliverer
from kapacity.runtime.processor import TaskSet

__all__ = ["END_WAIT_S", "Definitions", "ReadPositions"]

log: Final = logging.getLogger("kapacity.runtime")

#: The longest a batch waits for its stage's readers to reach the definitions' end. It runs
#: inside the batch's open transaction (15 s transaction timeout by default, see
#: ``queue/transactional.py``): well below that, and far above a fetch round trip under
#: load (librdkafka answers a fetch within ``fetch.wait.max.ms``, 500 ms by default).
END_WAIT_S: Final = 5.0
#: Records per reader poll: a whole backlog of definitions in a few polls.
_POLL_MAX: Final = 1000


class ReadPositions:
    """Per partition, the offset after the last record a reader returned (pure).

    >>> pos = ReadPositions()
    >>> pos.saw([(0, 4), (1, 0)])
    >>> pos.behind({0: 5, 1: 3, 2: 0})
    {1: 3}
    """

    def __init__(self) -> None:
        self.next: dict[int, int] = {}

    def saw(self, records: Iterable[tuple[int, int]]) -> None:
        """``(partition, offset)`` of records returned (any order)."""
        nxt = self.next
        for p, o in records:
            if o >= nxt.get(p, 0):
                nxt[p] = o + 1

    def behind(self, end: Mapping[int, int]) -> dict[int, int]:
        """The partitions not read up to ``end`` (partition → end offset)."""
        nxt = self.next
        return {p: e for p, e in end.items() if nxt.get(p, 0) < e}

    def skip_to(self, end: Mapping[int, int]) -> None:
        """Consider ``end`` reached (given up on: see the module doc); later records still count."""
        for p, e in end.items():
            if self.next.get(p, 0) < e:
                self.next[p] = e


@dataclass
class _Follower:
    reader: BroadcastReader
    kind: Kind
    positions: ReadPositions = field(default_factory=ReadPositions)


class Definitions:
    """Broadcast readers of ``tasks`` (into ``tasks``) and ``handlers`` (into ``deliverer``)."""

    def __init__(self, queue: Queue, tasks: TaskSet | None, deliverer: Deliverer | None,
                 *, end_wait_s: float = END_WAIT_S) -> None:
        self.tasks, self.deliverer = tasks, deliverer
        self.end_wait_s = end_wait_s
        self._followers: list[_Follower] = []
        #: Set by :meth:`refresh_once` for the current batch; the stage clears it per batch.
        self.fresh = False
        #: Batches that waited for a definition their reader had not fetched yet.
        self.waited = 0
        #: Waits that ended at :data:`END_WAIT_S` (the batch ran without part of the end).
        self.late = 0
        #: End queries that failed (the batch ran with what was read, as before issue 6).
        self.unavailable = 0
        if tasks is not None:
            self._followers.append(_Follower(self.open_reader(queue, Kind.TASKS), Kind.TASKS))
        if deliverer is not None:
            self._followers.append(_Follower(self.open_reader(queue, Kind.HANDLERS), Kind.HANDLERS))

    def open_reader(self, queue: Queue, kind: Kind) -> BroadcastReader:
        """The reader of ``kind`` (a seam: tests wrap it to make it lag)."""
        return queue.broadcast(kind)

    def catch_up(self, timeout: float) -> None:
        """Read until a poll of ``timeout`` s finds nothing, then up to the end (at start)."""
        while self.refresh(timeout):
            pass
        self.read_to_end()

    def refresh_once(self) -> None:
        """Once per batch, after its poll: what is already fetched, then up to the end (see
        the module doc), so that definitions written before the batch's records apply."""
        if not self.fresh:
            self.fresh = True
            self.refresh()
            self.read_to_end()

    def refresh(self, timeout: float = 0.0) -> int:
        """Apply what the readers return within ``timeout`` s; how many records."""
        return sum(self._poll(f, timeout) for f in self._followers)

    def _poll(self, f: _Follower, timeout: float) -> int:
        n = 0
        while True:
            batch = f.reader.poll(_POLL_MAX, timeout)
            self._apply(f, batch)
            n += len(batch)
            if len(batch) < _POLL_MAX:
                return n
            timeout = 0.0

    def _apply(self, f: _Follower, messages: list[Message]) -> None:
        if not messages:
            return
        if f.kind is Kind.TASKS and self.tasks is not None:
            for m in messages:
                self.tasks.apply(m.key, m.value)
        elif self.deliverer is not None:
            for m in messages:
                self.deliverer.apply_handler(m.key, m.value)
        f.positions.saw((m.partition, m.offset) for m in messages)

    def read_to_end(self) -> None:
        """Read every reader up to the end its kind has now, waiting at most
        :attr:`end_wait_s` in all (see the module doc)."""
        deadline = time.monotonic() + self.end_wait_s
        for f in self._followers:
            try:
                end = log_end(f.reader, max(0.1, deadline - time.monotonic()))
            except QueueUnavailableError as exc:
                self.unavailable += 1
                log.warning("%s definitions: end unknown, the batch runs with what was read: %s", f.kind, exc)
                continue
            if end is None:
                continue
            behind = f.positions.behind(end)
            if not behind:
                continue
            self.waited += 1
            while behind and (left := deadline - time.monotonic()) > 0:
                self._apply(f, f.reader.poll(_POLL_MAX, left))
                behind = f.positions.behind(end)
            if behind:
                self.late += 1
                log.warning("%s definitions: not read up to %s within %gs; the batch runs without them",
                            f.kind, behind, self.end_wait_s)
                f.positions.skip_to(behind)

    def counters(self) -> dict[str, int]:
        return {"definitions_waited": self.waited, "definitions_late": self.late,
                "definitions_end_unknown": self.unavailable}

    def close(self) -> None:
        for f in self._followers:
            f.reader.close()
