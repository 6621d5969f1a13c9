"""Message protection: large payloads go to storage, too large ones are refused.

The decision is a pure function of the size and the limits (:func:`decide`). A stored
payload is replaced in the record by a small reference (:data:`REF_MAGIC` + JSON; a JSON
document never starts with a NUL byte, so references and values cannot be confused) that
consumers resolve transparently (:meth:`Protector.resolve`).

Storage lifetime rule: an object may be removed once no record that references it can be
read any more. The embedded backend's cleaner removes objects that no live row references
(after retention/compaction); for Kafka, whose records cannot be listed cheaply, the cleaner
removes objects older than the topic's ``retention.ms`` (the broker deletes the referencing
record at that age); objects of unlimited-retention (compacted) topics are kept.
Both wait :data:`SWEEP_GRACE_MS` so an object written just before its record is never swept.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Final

from kapacity.queue.errors import MessageTooLargeError, PoisonMessageError

__all__ = [
    "REF_MAGIC",
    "SWEEP_GRACE_MS",
    "Decision",
    "FileStorage",
    "Protector",
    "Storage",
    "decide",
    "is_reference",
]

REF_MAGIC: Final = b"\x00kapacity-ref:"
#: Objects younger than this are never swept: their record may still be in flight.
SWEEP_GRACE_MS: Final = 10 * 60 * 1000


class Decision(Enum):
    INLINE = "inline"
    STORE = "store"
    REFUSE = "refuse"


def decide(size: int, soft_limit: int | None, hard_limit: int | None) -> Decision:
    """What to do with a payload of ``size`` bytes.

    >>> decide(10, 100, 1000), decide(500, 100, 1000), decide(5000, 100, 1000)
    (<Decision.INLINE: 'inline'>, <Decision.STORE: 'store'>, <Decision.REFUSE: 'refuse'>)
    """
    if hard_limit is not None and size > hard_limit:
        return Decision.REFUSE
    if soft_limit is not None and size > soft_limit:
        return Decision.STORE
    return Decision.INLINE


def is_reference(raw: bytes) -> bool:
    return raw.startswith(REF_MAGIC)


class Storage(ABC):
    """Where stored payloads live. Names are ``<topic>/<unique id>``."""

    @abstractmethod
    def put(self, topic: str, data: bytes) -> str: ...

    @abstractmethod
    def get(self, name: str) -> bytes: ...

    @abstractmethod
    def delete(self, name: str) -> None: ...

    @abstractmethod
    def list(self, topic: str) -> Iterator[tuple[str, int]]:
        """``(name, created ms)`` of every object of ``topic``."""


class FileStorage(Storage):
    """Objects as files under ``<root>/<topic>/`` (root: ``<data-dir>/_messages``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, name: str) -> Path:
        topic, _, obj = name.partition("/")
        if not topic or not obj or "/" in obj or ".." in name:
            raise PoisonMessageError(f"invalid storage reference {name!r}")
        return self.root / topic / obj

    def put(self, topic: str, data: bytes) -> str:
        name = f"{topic}/{uuid.uuid4().hex}"
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # readers never see a partial object
        return name

    def get(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise PoisonMessageError(f"stored message {name!r} is missing") from None

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def list(self, topic: str) -> Iterator[tuple[str, int]]:
        folder = self.root / topic
        if not folder.is_dir():
            return
        for entry in os.scandir(folder):
            if entry.is_file() and not entry.name.endswith(".tmp"):
                yield f"{topic}/{entry.name}", int(entry.stat().st_mtime * 1000)


@dataclass
class ProtectionStats:
    stored: int = 0
    refused: int = 0
    resolved: int = 0
    swept: int = 0


class Protector:
    """Applies the limits on the way out (:meth:`protect`) and resolves on the way in."""

    def __init__(self, soft_limit: int | None, hard_limit: int | None, storage: Storage | None) -> None:
        if soft_limit is not None and storage is None:
            raise ValueError("a soft limit needs a storage")
        self.soft_limit, self.hard_limit, self.storage = soft_limit, hard_limit, storage
        self.stats = ProtectionStats()
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.soft_limit is not None or self.hard_limit is not None

    def protect(self, kind: str, topic: str, key: str, payload: bytes) -> bytes:
        """The bytes to put in the record; raises :class:`MessageTooLargeError`."""
        decision = decide(len(payload), self.soft_limit, self.hard_limit)
        if decision is Decision.INLINE:
            return payload
        if decision is Decision.REFUSE:
            with self._lock:
                self.stats.refused += 1
            assert self.hard_limit is not None
            raise MessageTooLargeError(kind, key, len(payload), self.hard_limit)
        assert self.storage is not None
        name = self.storage.put(topic, payload)
        with self._lock:
            self.stats.stored += 1
        ref = {"ref": name, "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
        return REF_MAGIC + json.dumps(ref, separators=(",", ":")).encode()

    def resolve(self, raw: bytes) -> bytes:
        """The payload for a record's bytes (a reference is read from storage and checked)."""
        if not raw.startswith(REF_MAGIC):
            return raw
        try:
            ref = json.loads(raw[len(REF_MAGIC) :])
            name, digest = str(ref["ref"]), str(ref["sha256"])
        except (ValueError, KeyError, TypeError):
            raise PoisonMessageError("invalid storage reference") from None
        if self.storage is None:
            raise PoisonMessageError(f"stored message {name!r} but no storage is configured")
        data = self.storage.get(name)
        if hashlib.sha256(data).hexdigest() != digest:
            raise PoisonMessageError(f"stored message {name!r} does not match its checksum")
        with self._lock:
            self.stats.resolved += 1
        return data

    @staticmethod
    def reference_name(raw: bytes) -> str | None:
        if not raw.startswith(REF_MAGIC):
            return None
        try:
            return str(json.loads(raw[len(REF_MAGIC) :])["ref"])
        except (ValueError, KeyError, TypeError):
            return None

    def sweep(self, topic: str, keep: set[str] | None, older_than_ms: int) -> int:
        """Remove ``topic``'s objects created before ``older_than_ms`` and not in ``keep``."""
        if self.storage is None:
            return 0
        removed = 0
        for name, created in list(self.storage.list(topic)):
            if created < older_than_ms and (keep is None or name not in keep):
                self.storage.delete(name)
                removed += 1
        with self._lock:
            self.stats.swept += removed
        return removed
