"""Data shared by every stage: a point of a series, as parsed from line protocol."""

from __future__ import annotations

from dataclasses import dataclass, field

#: A field value: float, int (signed ``i`` or unsigned ``u``), string or bool.
FieldValue = float | int | str | bool


@dataclass(slots=True)
class Point:
    """One point: measurement ``name``, sorted-insensitive ``tags``, ``fields``, ``time`` in ns (UTC).

    ``database`` and ``retention_policy`` say where it was written (``/write?db=&rp=``);
    tasks are routed by (database, retention_policy, name).
    """

    name: str
    tags: dict[str, str] = field(default_factory=dict)
    fields: dict[str, FieldValue] = field(default_factory=dict)
    time: int = 0
    database: str = ""
    retention_policy: str = ""
