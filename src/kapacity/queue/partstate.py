"""The per-partition key → value state of the transactional loop, and where a restore resumes."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["PartitionState", "restore_start"]


class PartitionState:
    """The key → value state of one partition; writes stay pending until the commit."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self._data: dict[str, Any] = {}
        self._pending: dict[str, Any] = {}
        self.restored_records = 0
        self.changelog_offset = 0  # next changelog offset not yet reflected in _data

    _DELETED: Final = object()

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._pending:
            value = self._pending[key]
            return default if value is self._DELETED else value
        return self._data.get(key, default)

    def put(self, key: str, value: Any) -> None:
        self._pending[key] = value

    def delete(self, key: str) -> None:
        self._pending[key] = self._DELETED

    def items(self) -> dict[str, Any]:
        merged = {**self._data}
        for k, v in self._pending.items():
            if v is self._DELETED:
                merged.pop(k, None)
            else:
                merged[k] = v
        return merged

    def _changes(self) -> list[tuple[str, Any]]:
        return [(k, None if v is self._DELETED else v) for k, v in self._pending.items()]

    def _commit(self) -> None:
        for k, v in self._pending.items():
            if v is self._DELETED:
                self._data.pop(k, None)
            else:
                self._data[k] = v
        self._pending.clear()

    def _abort(self) -> None:
        self._pending.clear()

    def _apply(self, key: str, value: Any) -> None:
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value


def restore_start(checkpoint: int | None, low: int, high: int) -> int | None:
    """Where to resume a restore: the checkpoint's changelog offset when the changelog still
    holds everything after it (``low <= checkpoint <= high``), else ``None`` — read from the
    beginning and discard the local state (the changelog was truncated or recreated).

    >>> restore_start(40, 0, 50), restore_start(60, 0, 50), restore_start(5, 10, 50), restore_start(None, 0, 9)
    (40, None, None, None)
    """
    if checkpoint is None or checkpoint < low or checkpoint > high:
        return None
    return checkpoint
