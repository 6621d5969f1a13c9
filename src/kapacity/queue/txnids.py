"""Transactional ids: one producer id per incarnation, numbered by the base id's epoch.

Why (noida-db lists aborted transactions in later fetches): see
:mod:`kapacity.queue.transactional`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Final

__all__ = ["PREVIOUS_INCARNATIONS", "LineCollector", "incarnation_ids", "parse_epoch"]


#: librdkafka's ``eos`` debug line once the coordinator answered InitProducerId.
_ACQUIRED_PID: Final = re.compile(r"Acquired PID\{Id:(\d+),Epoch:(\d+)\}")
#: Working ids of earlier incarnations initialised (fenced, leftovers aborted) at start: the
#: previous one, and the one before in case the previous died between its two steps.
PREVIOUS_INCARNATIONS: Final = 2


def parse_epoch(lines: Iterable[str]) -> int | None:
    """The producer epoch in librdkafka's ``eos`` debug lines (last one wins), else ``None``.

    >>> parse_epoch(["Acquiring ProducerId", "Acquired PID{Id:1000,Epoch:7}"])
    7
    """
    epoch = None
    for line in lines:
        if (m := _ACQUIRED_PID.search(line)) is not None:
            epoch = int(m.group(2))
    return epoch


def incarnation_ids(base: str, epoch: int, previous: int = PREVIOUS_INCARNATIONS) -> tuple[str, list[str]]:
    """The working transactional id of the incarnation that got ``epoch`` on ``base``, and
    the working ids of the ``previous`` incarnations before it (oldest first).

    ``base`` is only ever initialised, never used for a transaction: its epoch, bumped by the
    coordinator at each initialisation, numbers the incarnations durably (on the broker, so
    a lost state dir does not matter) and gives each one a producer id of its own.

    >>> incarnation_ids("kapacity_engine_a", 5)
    ('kapacity_engine_a.5', ['kapacity_engine_a.3', 'kapacity_engine_a.4'])
    >>> incarnation_ids("kapacity_engine_a", 0)
    ('kapacity_engine_a.0', [])
    """
    return f"{base}.{epoch}", [f"{base}.{e}" for e in range(max(0, epoch - previous), epoch)]


class LineCollector(logging.Handler):
    """Collects the messages of a client's ``logger`` (librdkafka debug output)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
