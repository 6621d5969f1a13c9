"""Kafka partitioners, bit-for-bit compatible with Kapacitor's and the common clients'.

Pure functions of ``(key, partition_count)``; only a missing key (and, for
``crc32``, an empty one) draws a random partition, from an injectable
:class:`random.Random` so tests are deterministic.

=============  ================================================  ======================
name           formula (n = partition count)                     same choice as
=============  ================================================  ======================
``crc32``      ``crc32_ieee(key) % n``; empty key → random       librdkafka
                                                                 ``consistent_random``,
                                                                 confluent-kafka-go
``murmur2``    ``(murmur2(key) & 0x7fffffff) % n``; only a       the Java client,
               missing key is random                             kafka-python, aiokafka
``fnv-1a``     ``p = int32(fnv1a_32(key)) % n`` (Go truncating   sarama's hash
               modulo), ``-p`` if negative; missing key random   partitioner
``murmur3``    as ``fnv-1a`` with ``murmur3_32`` (seed 0)        Kapacitor's code
               (undocumented, accepted by Kapacitor)
=============  ================================================  ======================

Example::

    >>> partition = get_partitioner("murmur2")
    >>> partition(b"hello", 1000)
    229
"""

from __future__ import annotations

import functools
import random
import struct
import zlib
from collections.abc import Callable
from typing import Final

from kapacity.errors import KapacityError

__all__ = [
    "DEFAULT_PARTITIONER",
    "PARTITIONER_NAMES",
    "LeastBytesBalancer",
    "Partitioner",
    "PartitionerError",
    "canonical_partitioner_name",
    "crc32_partition",
    "fnv1a_32",
    "fnv1a_partition",
    "get_partitioner",
    "murmur2",
    "murmur2_partition",
    "murmur3_32",
    "murmur3_partition",
]

Partitioner = Callable[[bytes | None, int], int]
"""``partition(key, n) -> index in [0, n)``; ``key=None`` means the record has no key."""

DEFAULT_PARTITIONER: Final = "crc32"

_M32: Final = 0xFFFFFFFF

#: Alert IDs repeat (one per series and alert), so hashes are memoised; the cache is
#: bounded (least recently used keys are evicted) and holds only pure results.
HASH_CACHE_SIZE: Final = 4096
_RANDOM: Final = random.Random()


class PartitionerError(KapacityError, ValueError):
    """An unknown partitioner name or a non-positive partition count."""


def _check(n: int) -> None:
    if n <= 0:
        raise PartitionerError(f"number of partitions must be positive, got {n}")


def _to_int32(h: int) -> int:
    return h - 0x1_0000_0000 if h & 0x8000_0000 else h


def _go_mod_abs(h: int, n: int) -> int:
    """sarama's ``p = int32(h) % n; if p < 0 { p = -p }`` with Go's truncating ``%``."""
    s = _to_int32(h)
    # Go's % truncates toward zero, so |s| % n has the same magnitude and the negation
    # that sarama applies to a negative result makes it exactly |s| % n.
    return (-s if s < 0 else s) % n


# --- crc32 -------------------------------------------------------------------------


def crc32_partition(key: bytes | None, n: int, rng: random.Random | None = None) -> int:
    """``crc32_ieee(key) % n``; a missing *or empty* key picks a random partition.

    librdkafka's ``consistent_random`` treats an empty key as unset; Kapacitor copies it.
    """
    _check(n)
    if not key:
        return (rng or _RANDOM).randrange(n)
    return zlib.crc32(key) % n


# --- murmur2 (Java) -------------------------------------------------------------------

_MURMUR2_SEED: Final = 0x9747B28C
_MURMUR2_M: Final = 0x5BD1E995


@functools.lru_cache(maxsize=HASH_CACHE_SIZE)
def _murmur2_u32(data: bytes) -> int:
    length = len(data)
    m = _MURMUR2_M
    h = (_MURMUR2_SEED ^ length) & _M32
    whole = length >> 2
    if whole:
        for (k,) in struct.iter_unpack("<I", data[: whole << 2]):
            k = (k * m) & _M32
            k ^= k >> 24
            h = ((h * m) & _M32) ^ ((k * m) & _M32)
    extra = length & 3
    if extra:
        tail = whole << 2
        if extra >= 3:
            h ^= data[tail + 2] << 16
        if extra >= 2:
            h ^= data[tail + 1] << 8
        h ^= data[tail]
        h = (h * m) & _M32
    h ^= h >> 13
    h = (h * m) & _M32
    h ^= h >> 15
    return h


def murmur2(data: bytes) -> int:
    """Java's ``Utils.murmur2``: the 32-bit hash as a *signed* int32, as Java returns it."""
    return _to_int32(_murmur2_u32(data))


def murmur2_partition(key: bytes | None, n: int, rng: random.Random | None = None) -> int:
    """``(murmur2(key) & 0x7fffffff) % n``; only a missing key is random (``b""`` is hashed)."""
    _check(n)
    if key is None:
        return (rng or _RANDOM).randrange(n)
    return (_murmur2_u32(key) & 0x7FFFFFFF) % n


# --- fnv-1a (sarama) ------------------------------------------------------------------

_FNV32_OFFSET: Final = 0x811C9DC5
_FNV32_PRIME: Final = 0x01000193


@functools.lru_cache(maxsize=HASH_CACHE_SIZE)
def fnv1a_32(data: bytes) -> int:
    """The 32-bit FNV-1a hash (unsigned), as Go's ``hash/fnv.New32a``."""
    h = _FNV32_OFFSET
    p = _FNV32_PRIME
    for byte in data:
        h = ((h ^ byte) * p) & _M32
    return h


def fnv1a_partition(key: bytes | None, n: int, rng: random.Random | None = None) -> int:
    """sarama's default hash partitioner: ``abs(int32(fnv1a_32(key)) % n)``; missing key random."""
    _check(n)
    if key is None:
        return (rng or _RANDOM).randrange(n)
    return _go_mod_abs(fnv1a_32(key), n)


# --- murmur3 (sarama custom hash) -----------------------------------------------------

_C1: Final = 0xCC9E2D51
_C2: Final = 0x1B873593


@functools.lru_cache(maxsize=HASH_CACHE_SIZE)
def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit (unsigned), as ``github.com/spaolacci/murmur3.New32``."""
    length = len(data)
    h = seed & _M32
    whole = length >> 2
    if whole:
        for (k,) in struct.iter_unpack("<I", data[: whole << 2]):
            k = (k * _C1) & _M32
            k = ((k << 15) | (k >> 17)) & _M32
            k = (k * _C2) & _M32
            h ^= k
            h = ((h << 13) | (h >> 19)) & _M32
            h = (h * 5 + 0xE6546B64) & _M32
    extra = length & 3
    if extra:
        tail = whole << 2
        k = 0
        if extra >= 3:
            k ^= data[tail + 2] << 16
        if extra >= 2:
            k ^= data[tail + 1] << 8
        k ^= data[tail]
        k = (k * _C1) & _M32
        k = ((k << 15) | (k >> 17)) & _M32
        k = (k * _C2) & _M32
        h ^= k
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    h ^= h >> 16
    return h


def murmur3_partition(key: bytes | None, n: int, rng: random.Random | None = None) -> int:
    """sarama's custom hash partitioner over ``murmur3_32``; missing key random."""
    _check(n)
    if key is None:
        return (rng or _RANDOM).randrange(n)
    return _go_mod_abs(murmur3_32(key), n)


# --- lookup ---------------------------------------------------------------------------

_BY_NAME: Final[dict[str, Callable[[bytes | None, int, random.Random | None], int]]] = {
    "crc32": crc32_partition,
    "murmur2": murmur2_partition,
    "fnv-1a": fnv1a_partition,
    "murmur3": murmur3_partition,
}
_ALIASES: Final = {"": "crc32", "fnv1a": "fnv-1a"}

PARTITIONER_NAMES: Final = ("crc32", "murmur2", "fnv-1a")
"""The documented algorithm names (``murmur3`` and ``fnv1a`` are accepted too)."""


def canonical_partitioner_name(name: str) -> str:
    """The canonical spelling of ``name`` (case-insensitive; ``""`` → ``crc32``).

    Raises :class:`PartitionerError` listing the valid choices for an unknown name.
    """
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _BY_NAME:
        valid = ", ".join(PARTITIONER_NAMES)
        raise PartitionerError(f"invalid partition algorithm {name!r}; valid choices: {valid}")
    return key


def get_partitioner(name: str, rng: random.Random | None = None) -> Partitioner:
    """The partition function for an algorithm name (see :func:`canonical_partitioner_name`).

    ``rng`` is used for keys that get a random partition (defaults to a module-wide one).
    """
    func = _BY_NAME[canonical_partitioner_name(name)]

    def partition(key: bytes | None, n: int) -> int:
        return func(key, n, rng)

    partition.__name__ = func.__name__
    partition.__doc__ = func.__doc__
    return partition


# --- least bytes ----------------------------------------------------------------------


class LeastBytesBalancer:
    """The pre-1.6 Kapacitor balancer (kafka-go ``LeastBytes``), kept for ``disablePartitionById``.

    Picks the partition to which *this writer* has sent the fewest bytes, lowest index on
    ties. The caller records what it actually sent with :meth:`record`. Not thread-safe:
    one balancer per writer, used from one thread (as Kapacitor's writer did).

    >>> b = LeastBytesBalancer()
    >>> p = b.choose(3); b.record(p, 10); p
    0
    >>> b.choose(3)
    1
    """

    __slots__ = ("_sent",)

    def __init__(self) -> None:
        self._sent: list[int] = []

    def choose(self, n: int) -> int:
        """The partition in ``[0, n)`` with the fewest recorded bytes (lowest index on ties)."""
        _check(n)
        sent = self._sent
        if len(sent) < n:
            # New partitions start at zero bytes, so they are preferred until they catch up.
            sent.extend([0] * (n - len(sent)))
        best = 0
        least = sent[0]
        for i in range(1, n):
            if sent[i] < least:
                best, least = i, sent[i]
        return best

    def record(self, partition: int, nbytes: int) -> None:
        """Count ``nbytes`` (key + value size) as sent to ``partition``."""
        if partition < 0:
            raise PartitionerError(f"partition must not be negative, got {partition}")
        if nbytes < 0:
            raise PartitionerError(f"byte count must not be negative, got {nbytes}")
        sent = self._sent
        if partition >= len(sent):
            sent.extend([0] * (partition + 1 - len(sent)))
        sent[partition] += nbytes

    def sent_bytes(self) -> tuple[int, ...]:
        """Bytes recorded per partition so far (for metrics and tests)."""
        return tuple(self._sent)
