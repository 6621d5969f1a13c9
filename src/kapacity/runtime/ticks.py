"""Where a clock-driven task reports a stream that delivered nothing (pure: no I/O).

In Kafka mode a task with timed nodes (``|deadman``) runs in the regroup stage, on every
partition of ``repartition`` that holds one of its groups, and each partition ticks it
(:meth:`kapacity.runtime.processor.PartitionProcessor.tick`). A group with points is on one
partition, so its deadman fires once. A stream that delivered nothing at all is reported
by Kapacitor for the nil group: here only by the partition every point of the task goes to
(:meth:`~kapacity.runtime.regroup.Router.quiet_key`: a task without ``groupBy``), found
with the producer's partitioner (librdkafka's ``partitioner`` property,
``consistent_random`` by default) and the partition count. A grouped task's groups spread
over partitions and no partition alone can tell that none saw a point: in Kafka mode a
grouped deadman reports each group that went quiet, not a stream that never delivered.

>>> owner = QuietOwners(lambda tid: f"{tid}/cpu", "consistent_random", 6)
>>> owner("t"), owner("t") == owner("t")
(2, True)
>>> QuietOwners(lambda tid: "t/cpu", "random", 6)("t") is None
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from kapacity.kafka.partitioners import Partitioner, get_partitioner

__all__ = ["LIBRDKAFKA_PARTITIONERS", "QuietOwners"]

#: librdkafka's ``partitioner`` values → the algorithm it applies to a non-empty key.
#: ``random`` has none: a stream that delivers nothing is then reported nowhere.
LIBRDKAFKA_PARTITIONERS: Final = {
    "consistent_random": "crc32", "consistent": "crc32",
    "murmur2_random": "murmur2", "murmur2": "murmur2",
    "fnv1a_random": "fnv-1a", "fnv1a": "fnv-1a",
}


class QuietOwners:
    """Task id → the partition that reports its silent stream (None: none can)."""

    def __init__(self, quiet_key: Callable[[str], str | None], partitioner: str, partitions: int) -> None:
        self._key = quiet_key
        algorithm = LIBRDKAFKA_PARTITIONERS.get(partitioner.strip().lower())
        self._partition: Partitioner | None = None if algorithm is None else get_partitioner(algorithm)
        self._n = partitions

    def __call__(self, task_id: str) -> int | None:
        key = self._key(task_id)
        if key is None or self._partition is None or self._n <= 0:
            return None
        return self._partition(key.encode("utf-8"), self._n)
