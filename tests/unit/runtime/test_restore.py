"""Restore decisions and the per-partition state store (no broker)."""

from __future__ import annotations

from kapacity.queue.transactional import PartitionState, restore_start


def test_checkpoint_inside_the_changelog_is_used() -> None:
    assert restore_start(40, 0, 50) == 40
    assert restore_start(50, 0, 50) == 50  # nothing new since the checkpoint


def test_missing_or_stale_checkpoint_rebuilds_from_the_beginning() -> None:
    assert restore_start(None, 0, 50) is None  # no checkpoint (unclean stop, deleted state dir)
    assert restore_start(60, 0, 50) is None  # changelog recreated / truncated below us
    assert restore_start(5, 10, 50) is None  # compacted/deleted past the checkpoint


def test_partition_state_keeps_writes_pending_until_commit() -> None:
    s = PartitionState(0)
    s._apply("a", 1)
    s.put("b", 2)
    s.delete("a")
    assert s.get("a") is None and s.get("b") == 2
    assert sorted(s._changes()) == [("a", None), ("b", 2)]
    s._abort()
    assert s.get("a") == 1 and s.get("b") is None
    s.put("b", 3)
    s._commit()
    assert s.items() == {"a": 1, "b": 3}
