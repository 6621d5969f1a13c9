"""The data that flows between task nodes: points (:class:`Row`) and windows (:class:`Batch`).

A row is created once per matching input point by the ``from`` node and then shared by the
nodes downstream; a node that changes tags or fields makes a copy (:meth:`Row.copy`), so
siblings never see each other's edits.
"""

from __future__ import annotations

from typing import Any

from kapacity.models import FieldValue


class Row:
    """A point inside a task: measurement, tags, fields, time (ns) and its group.

    ``group`` is Kapacitor's group ID (``host=a,region=x``, ``""`` for the nil group);
    ``dims`` the sorted dimension (tag) names it was built from.
    """

    __slots__ = ("name", "tags", "fields", "time", "group", "dims", "by_name")

    def __init__(
        self,
        name: str,
        tags: dict[str, str],
        fields: dict[str, FieldValue],
        time: int,
        group: str = "",
        dims: tuple[str, ...] = (),
        by_name: bool = False,
    ) -> None:
        self.name = name
        self.tags = tags
        self.fields = fields
        self.time = time
        self.group = group
        self.dims = dims
        self.by_name = by_name

    def copy(self) -> Row:
        """A copy whose tags and fields may be changed without touching this row."""
        return Row(
            self.name, dict(self.tags), dict(self.fields), self.time, self.group, self.dims, self.by_name
        )

    def group_tags(self) -> dict[str, str]:
        """The tags that make up the group (Kapacitor's ``GroupInfo.Tags``)."""
        tags = self.tags
        return {d: tags.get(d, "") for d in self.dims}

    def __repr__(self) -> str:
        return f"Row({self.name!r}, {self.tags!r}, {self.fields!r}, {self.time})"


class Batch:
    """A window's worth of rows of one group, stamped with the window's end time ``time``."""

    __slots__ = ("name", "tags", "time", "group", "dims", "by_name", "rows")

    def __init__(
        self,
        name: str,
        tags: dict[str, str],
        time: int,
        group: str,
        dims: tuple[str, ...],
        by_name: bool,
        rows: list[Row],
    ) -> None:
        self.name = name
        self.tags = tags
        self.time = time
        self.group = group
        self.dims = dims
        self.by_name = by_name
        self.rows = rows

    def __repr__(self) -> str:
        return f"Batch({self.name!r}, {self.tags!r}, t={self.time}, rows={len(self.rows)})"


def group_id(name: str, tags: dict[str, str], dims: tuple[str, ...], by_name: bool) -> str:
    """Kapacitor's ``models.ToGroupID``: ``[name\\n]k=v,k2=v2``; ``""`` is the nil group."""
    if not dims:
        return name if by_name else ""
    if len(dims) == 1 and not by_name:  # groupBy('host'): once per new group of a task
        return f"{dims[0]}={tags.get(dims[0], '')}"
    body = ",".join(f"{d}={tags.get(d, '')}" for d in dims)
    return f"{name}\n{body}" if by_name else body


def group_label(group: str) -> str:
    """The group as alert templates print it: ``nil`` for the nil group."""
    return group if group else "nil"


Message = Row | Batch
AnyDict = dict[str, Any]
