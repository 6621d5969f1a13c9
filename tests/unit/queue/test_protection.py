"""Message protection: the pure decision, references, storage and its sweeping rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapacity.queue.errors import MessageTooLargeError, PoisonMessageError
from kapacity.queue.protection import REF_MAGIC, Decision, FileStorage, Protector, decide


@given(st.integers(0, 10**8), st.one_of(st.none(), st.integers(1, 10**7)), st.one_of(st.none(), st.integers(1, 10**7)))
def test_decide_is_monotonic_in_size(size: int, soft: int | None, hard: int | None) -> None:
    d = decide(size, soft, hard)
    if hard is not None and size > hard:
        assert d is Decision.REFUSE
    elif soft is not None and size > soft:
        assert d is Decision.STORE
    else:
        assert d is Decision.INLINE


def test_limits_are_inclusive_and_no_hard_limit_accepts_any_size() -> None:
    assert decide(100, 100, 200) is Decision.INLINE
    assert decide(200, 100, 200) is Decision.STORE
    assert decide(10**10, 100, None) is Decision.STORE
    assert decide(10**10, None, None) is Decision.INLINE


def test_store_and_resolve_round_trip(tmp_path: Path) -> None:
    p = Protector(10, 100, FileStorage(tmp_path))
    assert p.protect("events", "t", "k", b"small") == b"small"
    record = p.protect("events", "t", "k", b"x" * 50)
    assert record.startswith(REF_MAGIC) and len(record) < 200
    assert p.resolve(record) == b"x" * 50
    assert p.stats.stored == 1 and p.stats.resolved == 1
    assert len(list((tmp_path / "t").iterdir())) == 1


def test_refusal_names_size_and_limit_and_counts(tmp_path: Path) -> None:
    p = Protector(10, 100, FileStorage(tmp_path))
    with pytest.raises(MessageTooLargeError, match="is 101 bytes, above the hard limit of 100 bytes"):
        p.protect("events", "t", "k", b"x" * 101)
    assert p.stats.refused == 1
    assert not (tmp_path / "t").exists()  # nothing stored for a refused message


def test_tampered_or_missing_objects_are_poison(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    p = Protector(1, None, storage)
    record = p.protect("events", "t", "k", b"payload")
    name = Protector.reference_name(record)
    assert name is not None
    (tmp_path / name).write_bytes(b"changed")
    with pytest.raises(PoisonMessageError, match="does not match its checksum"):
        p.resolve(record)
    storage.delete(name)
    with pytest.raises(PoisonMessageError, match="is missing"):
        p.resolve(record)
    with pytest.raises(PoisonMessageError, match="invalid storage reference"):
        p.resolve(REF_MAGIC + b"{")
    with pytest.raises(PoisonMessageError):
        storage.get("../etc/passwd")


def test_sweep_keeps_referenced_and_young_objects(tmp_path: Path) -> None:
    p = Protector(1, None, FileStorage(tmp_path))
    a = Protector.reference_name(p.protect("e", "t", "a", b"aa"))
    b = Protector.reference_name(p.protect("e", "t", "b", b"bb"))
    assert a and b
    assert p.sweep("t", {a}, older_than_ms=0) == 0  # too young
    assert p.sweep("t", {a}, older_than_ms=2**62) == 1
    assert [n for n, _ in p.storage.list("t")] == [a]  # type: ignore[union-attr]
