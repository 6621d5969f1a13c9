"""Kafka handler options: validated when the handler is defined, with clear messages."""

from __future__ import annotations

from typing import Any

import pytest

from kapacity.alert.event import AlertData, Result, encode_alert_json
from kapacity.config import Config, parse_config
from kapacity.gotypes import Duration, Level, Time
from kapacity.handlers.base import Handler
from kapacity.handlers.errors import HandlerError, HandlerOptionError
from kapacity.handlers.kafka import (
    KafkaHandler,
    KafkaHandlerSpec,
    ProducerPool,
    make_chooser,
    parse_kafka_options,
)
from kapacity.kafka.partitioners import get_partitioner
from kapacity.kafka.producer import ClusterProducer, TopicStats
from tests.unit.kafka.test_producer import FakeTransport


def config(*ids: str, disabled: tuple[str, ...] = ()) -> Config:
    sections = [
        f'[[kafka]]\nenabled = true\nid = "{i}"\nbrokers = ["127.0.0.1:9092"]\n' for i in ids
    ] + [f'[[kafka]]\nenabled = false\nid = "{i}"\n' for i in disabled]
    return parse_config("\n".join(sections))


ONE = config("main")
TWO = config("a", "b", disabled=("off",))


def fails(options: dict[str, Any], cfg: Config = ONE) -> HandlerOptionError:
    with pytest.raises(HandlerOptionError) as info:
        parse_kafka_options(options, cfg)
    assert isinstance(info.value, HandlerError)
    return info.value


def test_defaults_and_the_only_cluster() -> None:
    assert parse_kafka_options({"topic": "alerts"}, ONE) == KafkaHandlerSpec(
        cluster="main", topic="alerts", template="", disable_partition_by_id=False, partition_algorithm="crc32"
    )


def test_keys_match_case_insensitively_and_accept_kapacitors_other_spellings() -> None:
    spec = parse_kafka_options(
        {"CLUSTER": "a", "KafkaTopic": "t", "disablepartitionbyid": "TRUE", "partitionHashAlgorithm": "FNV-1a"}, TWO
    )
    assert spec == KafkaHandlerSpec("a", "t", "", True, "fnv-1a")
    assert parse_kafka_options({"cluster": "b", "topic": "t", "PartitionAlgorithm": "Murmur2"}, TWO).partition_algorithm == "murmur2"


def test_clusters_may_be_given_as_a_list() -> None:
    assert parse_kafka_options({"topic": "t"}, ONE.kafka).cluster == "main"


def test_unknown_option_lists_the_valid_ones() -> None:
    err = fails({"topic": "t", "partition": 3})
    assert err.option == "partition"
    assert "unknown option" in str(err)
    assert "cluster, topic, template, disablePartitionById, partitionAlgorithm" in str(err)


def test_same_option_twice_is_refused() -> None:
    assert "given twice" in str(fails({"topic": "t", "kafkaTopic": "u"}))


def test_unknown_or_disabled_or_ambiguous_cluster() -> None:
    err = fails({"cluster": "nope", "topic": "t"}, TWO)
    assert err.option == "cluster" and 'unknown cluster "nope"' in str(err) and "a, b" in str(err)
    assert "disabled" in str(fails({"cluster": "off", "topic": "t"}, TWO))
    err = fails({"topic": "t"}, TWO)  # no cluster, two enabled: say which exist
    assert "several kafka clusters are enabled (a, b)" in str(err)


@pytest.mark.parametrize("topic", ["", "  "])
def test_empty_topic(topic: str) -> None:
    err = fails({"topic": topic})
    assert err.option == "topic" and "topic must not be empty" in str(err)
    assert fails({}).option == "topic"


def test_unknown_algorithm_lists_the_valid_ones() -> None:
    err = fails({"topic": "t", "partitionAlgorithm": "sha1"})
    assert err.option == "partitionAlgorithm"
    assert "'sha1'" in str(err) and "crc32, murmur2, fnv-1a" in str(err)


def test_template_that_does_not_parse() -> None:
    err = fails({"topic": "t", "template": "{{ .ID "})
    assert err.option == "template" and "failed to parse template" in str(err)


@pytest.mark.parametrize(
    ("options", "option"),
    [({"topic": 5}, "topic"), ({"topic": "t", "template": ["x"]}, "template"),
     ({"topic": "t", "disablePartitionById": "yes"}, "disablePartitionById")],
)
def test_wrong_types(options: dict[str, Any], option: str) -> None:
    assert fails(options).option == option


def test_chooser_hashes_the_id_or_balances_least_bytes() -> None:
    by_id = make_chooser(KafkaHandlerSpec("m", "t", partition_algorithm="murmur2"))
    assert by_id(b"hello", 100, 1000) == get_partitioner("murmur2")(b"hello", 1000) == 229
    least = make_chooser(KafkaHandlerSpec("m", "t", disable_partition_by_id=True))
    # Fewest bytes first, lowest index on ties: 17 bytes each, then partition 0 gets 57 more.
    picks = [least(b"same-id", size, 3) for size in (10, 10, 10, 50, 1, 1)]
    assert picks == [0, 1, 2, 0, 1, 2]


@pytest.mark.parametrize("algorithm", ["crc32", "murmur2", "fnv-1a"])
def test_chooser_places_every_id_where_the_partitioner_does(algorithm: str) -> None:
    # The default crc32 chooser is inlined for speed; it must not drift from the partitioner.
    choose = make_chooser(KafkaHandlerSpec("m", "t", partition_algorithm=algorithm))
    partition = get_partitioner(algorithm)
    keys = [f"cpu:host=server-{i}".encode() for i in range(2000)] + ["ünï:☃".encode(), b"\x00"]
    for n in (1, 3, 16, 1000):
        assert [choose(k, 400, n) for k in keys] == [partition(k, n) for k in keys]
    # An empty ID gets a random partition, within range, from every algorithm.
    assert {choose(b"", 400, 4) for _ in range(200)} <= {0, 1, 2, 3}


def sample(i: int) -> AlertData:
    return AlertData(
        id=f"cpu:{i}", message="msg", details="", time=Time(0), duration=Duration(0),
        level=Level.WARNING, data=Result([]),
    )


def fake_pool(transport: FakeTransport) -> ProducerPool:
    def factory(cluster: Any, capacity: int) -> ClusterProducer:
        return ClusterProducer(cluster.id, transport, capacity=capacity, message_timeout=5.0, start_thread=False)

    return ProducerPool(capacity=10, factory=factory)


def test_handler_sends_key_and_body_through_the_shared_producer() -> None:
    t = FakeTransport(partitions={"alerts": 8})
    pool = fake_pool(t)
    first = KafkaHandler.create({"topic": "alerts"}, ONE, pool)
    second = KafkaHandler.create({"topic": "alerts", "template": "{{ .ID }}/{{ .Level }}"}, ONE, pool)
    assert isinstance(first, Handler)
    first.handle(sample(1))
    second.handle(sample(2))
    pool._producers["main"].run_once(0)
    assert [(s.key, s.value) for s in t.produced] == [
        (b"cpu:1", encode_alert_json(sample(1))), (b"cpu:2", b"cpu:2/WARNING"),
    ]
    assert [s.partition for s in t.produced] == [get_partitioner("crc32")(s.key, 8) for s in t.produced]
    t.report(None)
    assert first.stats() == second.stats() == {"write_messages": 2, "write_errors": 0, "dropped": 0, "in_flight": 0}
    assert pool.stats() == {("main", "alerts"): TopicStats(write_messages=2)}
    first.close(0.1)
    assert not t.closed  # the other handler still uses the producer
    second.close(0.1)
    assert t.closed


def test_template_runtime_error_is_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    t = FakeTransport(partitions={"alerts": 1})
    handler = KafkaHandler.create({"topic": "alerts", "template": "{{ .Nope.Deeper }}"}, ONE, fake_pool(t))
    handler.handle(sample(1))
    assert handler.stats()["write_errors"] == 1
    assert "failed to execute alert template" in caplog.text
