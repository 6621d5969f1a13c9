"""Partitioners: public vectors (Kapacitor's own tests, Java), reference implementations."""

from __future__ import annotations

import random
import warnings
import zlib

import confluent_kafka
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapacity.kafka.partitioners import (
    LeastBytesBalancer,
    PartitionerError,
    canonical_partitioner_name,
    crc32_partition,
    fnv1a_32,
    fnv1a_partition,
    get_partitioner,
    murmur2,
    murmur2_partition,
    murmur3_32,
    murmur3_partition,
)
from tests.support.kafka import Broker, create_topic, unique

with warnings.catch_warnings():
    # kafka-python's package import uses the deprecated importlib.resources.read_text;
    # the reference murmur2 itself is fine.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.partitioner.default import murmur2 as kafka_python_murmur2

# Kapacitor's services/kafka/hash_test.go vectors, n = 1000.
CRC32_VECTORS = [("hello", 870), ("hello2", 502), ("hello3", 592), ("hello4", 787), ("hello5", 413)]
MURMUR2_VECTORS = [
    ("hello", 229),
    ("hello2", 907),
    ("hello3", 759),
    ("hello4", 299),
    ("hello5", 841),
    ("", 681),
]


@pytest.mark.parametrize(("key", "want"), CRC32_VECTORS)
def test_crc32_matches_kapacitor_vectors(key: str, want: int) -> None:
    assert crc32_partition(key.encode(), 1000) == want
    assert get_partitioner("crc32")(key.encode(), 1000) == want


@pytest.mark.parametrize(("key", "want"), MURMUR2_VECTORS)
def test_murmur2_matches_kapacitor_vectors(key: str, want: int) -> None:
    assert murmur2_partition(key.encode(), 1000) == want
    assert get_partitioner("murmur2")(key.encode(), 1000) == want


@pytest.mark.parametrize(
    ("key", "want"), [("21", -973932308), ("foobar", -790332482), ("abc", 479470107)]
)
def test_murmur2_returns_java_signed_int32(key: str, want: int) -> None:
    assert murmur2(key.encode()) == want


@given(st.binary(max_size=64))
def test_murmur2_agrees_with_kafka_python(data: bytes) -> None:
    assert murmur2(data) & 0xFFFFFFFF == kafka_python_murmur2(data)


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=5000))
def test_crc32_is_unsigned_crc_modulo(data: bytes, n: int) -> None:
    assert crc32_partition(data, n) == zlib.crc32(data) % n


@pytest.mark.parametrize(
    ("data", "want"), [(b"", 0x811C9DC5), (b"a", 0xE40C292C), (b"foobar", 0xBF9CF968)]
)
def test_fnv1a_32_public_vectors(data: bytes, want: int) -> None:
    assert fnv1a_32(data) == want


def test_fnv1a_partition_uses_go_truncating_modulo_then_negates() -> None:
    # fnv1a_32("foobar") = 0xbf9cf968 = int32 -1080231576; Go: -1080231576 % 1000 = -576 → 576.
    assert fnv1a_partition(b"foobar", 1000) == 576
    # A key whose hash is a positive int32 gives the plain modulo.
    h = fnv1a_32(b"hello")
    assert h < 0x80000000
    assert fnv1a_partition(b"hello", 7) == h % 7
    assert get_partitioner("fnv-1a")(b"foobar", 1000) == 576


@given(st.binary(max_size=32), st.integers(min_value=1, max_value=2**31 - 1))
def test_fnv1a_partition_matches_go_semantics(data: bytes, n: int) -> None:
    h = fnv1a_32(data)
    signed = h - 2**32 if h >= 2**31 else h
    go_mod = _go_rem(signed, n)
    want = -go_mod if go_mod < 0 else go_mod
    assert fnv1a_partition(data, n) == want


def _go_rem(a: int, b: int) -> int:
    """Go's ``%`` on ints: the sign follows the dividend."""
    r = abs(a) % abs(b)
    return -r if a < 0 else r


@pytest.mark.parametrize(
    ("data", "seed", "want"),
    [
        (b"", 0, 0),
        (b"", 1, 0x514E28B7),
        (b"test", 0, 0xBA6BD213),
        (b"Hello, world!", 0x9747B28C, 0x24884CBA),
        (b"The quick brown fox jumps over the lazy dog", 0x9747B28C, 0x2FA826CD),
    ],
)
def test_murmur3_32_public_vectors(data: bytes, seed: int, want: int) -> None:
    assert murmur3_32(data, seed) == want


def test_missing_key_is_random_but_reproducible_with_injected_rng() -> None:
    picks = [murmur2_partition(None, 10, random.Random(7)) for _ in range(3)]
    assert len(set(picks)) == 1
    spread = {crc32_partition(None, 10, rng) for rng in [random.Random(1)] for _ in range(200)}
    assert spread == set(range(10))


def test_empty_key_random_for_crc32_but_hashed_for_murmur2_and_fnv1a() -> None:
    rng = random.Random(3)
    assert {crc32_partition(b"", 10, rng) for _ in range(200)} == set(range(10))
    assert {murmur2_partition(b"", 1000, rng) for _ in range(20)} == {681}
    assert len({fnv1a_partition(b"", 1000, rng) for _ in range(20)}) == 1
    assert len({murmur3_partition(b"", 1000, rng) for _ in range(20)}) == 1


@pytest.mark.parametrize("func", [crc32_partition, murmur2_partition, fnv1a_partition])
def test_non_positive_partition_count_is_an_error(func: object) -> None:
    with pytest.raises(PartitionerError, match="must be positive"):
        func(b"k", 0)  # type: ignore[operator]


def test_single_partition_always_zero() -> None:
    for name in ("crc32", "murmur2", "fnv-1a", "murmur3"):
        assert get_partitioner(name)(b"hello5", 1) == 0


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("crc32", "crc32"),
        ("CRC32", "crc32"),
        ("", "crc32"),
        ("Murmur2", "murmur2"),
        ("fnv-1a", "fnv-1a"),
        ("FNV1A", "fnv-1a"),
        ("murmur3", "murmur3"),
    ],
)
def test_names_are_case_insensitive_with_aliases(name: str, canonical: str) -> None:
    assert canonical_partitioner_name(name) == canonical


def test_unknown_name_lists_valid_choices() -> None:
    with pytest.raises(PartitionerError) as info:
        get_partitioner("sha1")
    assert "'sha1'" in str(info.value)
    assert "crc32, murmur2, fnv-1a" in str(info.value)


def test_least_bytes_prefers_fewest_bytes_then_lowest_index() -> None:
    b = LeastBytesBalancer()
    assert b.choose(3) == 0
    b.record(0, 100)
    assert b.choose(3) == 1
    b.record(1, 50)
    assert b.choose(3) == 2
    b.record(2, 50)
    assert b.choose(3) == 1  # 1 and 2 tie at 50 → lowest index
    b.record(1, 60)
    assert b.choose(3) == 2
    assert b.sent_bytes() == (100, 110, 50)


def test_least_bytes_new_partitions_start_empty_and_fewer_partitions_are_respected() -> None:
    b = LeastBytesBalancer()
    for p in range(2):
        b.record(p, 10)
    assert b.choose(4) == 2  # grown from 2 to 4 partitions
    assert b.choose(1) == 0  # shrunk view: only partition 0 is a candidate
    with pytest.raises(PartitionerError):
        b.record(0, -1)


def test_least_bytes_spreads_equal_messages_round_robin() -> None:
    b = LeastBytesBalancer()
    order = []
    for _ in range(6):
        p = b.choose(3)
        b.record(p, 10)
        order.append(p)
    assert order == [0, 1, 2, 0, 1, 2]


# --- against librdkafka's own partitioners, on a real broker ---------------------------

_LIBRDKAFKA = [
    ("consistent_random", crc32_partition),
    ("murmur2_random", murmur2_partition),
    ("fnv1a_random", fnv1a_partition),
]


@pytest.mark.integration
@pytest.mark.parametrize(("rd_name", "ours"), _LIBRDKAFKA, ids=[n for n, _ in _LIBRDKAFKA])
def test_same_partition_as_librdkafka(noida: Broker, rd_name: str, ours: object) -> None:
    n = 37
    topic = unique("part")
    create_topic(noida.bootstrap, topic, partitions=n)
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": noida.bootstrap, "partitioner": rd_name, "linger.ms": 5}
    )
    rng = random.Random(42)
    keys = [rng.randbytes(rng.randint(1, 40)) for _ in range(200)] + [b"hello", b"alert-id"]
    placed: dict[bytes, int] = {}

    def report(err: object, msg: confluent_kafka.Message) -> None:
        assert err is None
        placed[msg.key()] = msg.partition()

    for key in keys:
        producer.produce(topic, b"v", key, on_delivery=report)
    assert producer.flush(20) == 0
    assert placed == {k: ours(k, n) for k in keys}  # type: ignore[operator]
