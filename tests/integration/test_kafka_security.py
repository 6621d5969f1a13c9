"""TLS and SASL with the Kafka handler and the service test, on real brokers.

TLS: a dedicated Tansu behind a TLS-terminating proxy (tests/support/tls.py) that the broker
advertises. SASL: noida-db accepts any PLAIN / OAUTHBEARER credentials; Tansu refuses every
SCRAM login, which is how auth failures are tested. GSSAPI: PyPI's librdkafka has no Kerberos.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kapacity.alert.event import AlertData, Result
from kapacity.config import Config, parse_config
from kapacity.gotypes import Duration, Level, Time
from kapacity.handlers.kafka import KafkaHandler, ProducerPool
from kapacity.handlers.kafka_service_test import run_kafka_service_test
from kapacity.kafka.clientconfig import librdkafka_features
from kapacity.kafka.devbroker import BrokerProcess, free_port, start_tansu
from kapacity.kafka.errors import KafkaSetupError
from tests.support.kafka import Broker, consume, create_topic, unique
from tests.support.tls import TlsFiles, TlsProxy, make_test_pki

pytestmark = pytest.mark.integration

#: The clusters' ``timeout`` in these tests; every failure must surface well within it.
TIMEOUT_S = 3.0
#: Slack for a loaded 2-core machine on top of TIMEOUT_S. It must stay below what a silent
#: retry loop would take: librdkafka's message.timeout.ms is 4 x timeout (12 s here), so a
#: bound of 9 s still tells "failed fast" from "retried until the message expired".
SLACK_S = 6.0


def config_for(bootstrap: str, **keys: str | bool) -> Config:
    lines = [
        "[[kafka]]", "enabled = true", 'id = "main"', f'brokers = ["{bootstrap}"]',
        f'timeout = "{TIMEOUT_S:g}s"', 'batch-timeout = "10ms"',
    ]
    for key, value in keys.items():
        rendered = ("true" if value else "false") if isinstance(value, bool) else f'"{value}"'
        lines.append(f"{key.replace('_', '-')} = {rendered}")
    return parse_config("\n".join(lines) + "\n")


def alert(i: int) -> AlertData:
    return AlertData(
        id=f"sec:{i}", message="m", details="", time=Time(1_767_225_600_000_000_000),
        duration=Duration(0), level=Level.CRITICAL, data=Result([]),
    )


@pytest.fixture
def pool() -> Iterator[ProducerPool]:
    p = ProducerPool()
    yield p
    p.close(2)


# --- TLS ----------------------------------------------------------------------------------


@dataclass
class TlsBroker:
    files: TlsFiles
    proxy: TlsProxy
    process: BrokerProcess

    @property
    def tls_address(self) -> str:
        return self.proxy.address

    @property
    def client(self) -> dict[str, str]:
        """Settings for the test's own admin/consumer: the broker only advertises TLS."""
        return {"security.protocol": "SSL", "ssl.ca.location": str(self.files.ca)}


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    files = make_test_pki(tmp_path_factory.mktemp("pki"))
    upstream = free_port()
    with TlsProxy(files, upstream) as proxy:
        # Clients must be sent back to the TLS port, never to the plaintext one.
        process = start_tansu(port=upstream, advertised_port=proxy.port)
        try:
            yield TlsBroker(files, proxy, process)
        finally:
            process.stop()


def test_tls_with_ca_verification(tls_broker: TlsBroker, pool: ProducerPool) -> None:
    topic = unique("tls")
    create_topic(tls_broker.tls_address, topic, partitions=2, extra=tls_broker.client)
    config = config_for(tls_broker.tls_address, use_ssl=True, ssl_ca=str(tls_broker.files.ca))
    assert run_kafka_service_test(config, {"cluster": "main", "topic": topic}) == (True, "")
    handler = KafkaHandler.create({"topic": topic}, config, pool)
    for i in range(5):
        handler.handle(alert(i))
    assert handler.flush(10)
    assert handler.stats()["write_messages"] == 5
    assert len(consume(tls_broker.tls_address, topic, 6, extra=tls_broker.client)) == 6  # 5 alerts + the test message


def test_tls_with_wrong_ca_fails_clearly_and_fast(
    tls_broker: TlsBroker, pool: ProducerPool, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_for(tls_broker.tls_address, use_ssl=True, ssl_ca=str(tls_broker.files.wrong_ca))
    started = time.monotonic()
    ok, message = run_kafka_service_test(config, {"cluster": "main", "topic": unique("tls")})
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    assert not ok
    assert "certificate verify failed" in message

    handler = KafkaHandler.create({"topic": unique("tls")}, config, pool)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="kapacity.kafka.producer"):
        handler.handle(alert(1))
        handler.flush(TIMEOUT_S + SLACK_S)
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    assert handler.stats() == {"write_messages": 0, "write_errors": 1, "dropped": 0, "in_flight": 0}
    assert "certificate verify failed" in caplog.text


def test_tls_insecure_skip_verify_accepts_an_untrusted_certificate(tls_broker: TlsBroker, pool: ProducerPool) -> None:
    topic = unique("tls")
    create_topic(tls_broker.tls_address, topic, partitions=1, extra=tls_broker.client)
    config = config_for(
        tls_broker.tls_address, use_ssl=True, ssl_ca=str(tls_broker.files.wrong_ca), insecure_skip_verify=True
    )
    assert run_kafka_service_test(config, {"cluster": "main", "topic": topic}) == (True, "")
    handler = KafkaHandler.create({"topic": topic}, config, pool)
    handler.handle(alert(1))
    assert handler.flush(10)
    assert handler.stats()["write_messages"] == 1


# --- SASL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sasl",
    [
        {"sasl_username": "alice", "sasl_password": "secret"},  # no mechanism: PLAIN
        {"sasl_mechanism": "PLAIN", "sasl_username": "alice", "sasl_password": "secret"},
        {"sasl_mechanism": "OAUTHBEARER", "sasl_access_token": "static-token"},
    ],
    ids=["plain-default", "plain", "oauthbearer-static"],
)
def test_sasl_handshakes_with_noida(noida: Broker, pool: ProducerPool, sasl: dict[str, str]) -> None:
    if not noida.accepts_any_sasl:
        pytest.skip("needs a broker that accepts any SASL PLAIN/OAUTHBEARER credentials")
    topic = unique("sasl")
    create_topic(noida.bootstrap, topic, partitions=1)
    config = config_for(noida.bootstrap, **sasl)
    assert run_kafka_service_test(config, {"cluster": "main", "topic": topic, "key": "k", "message": "hi"}) == (True, "")
    handler = KafkaHandler.create({"topic": topic}, config, pool)
    handler.handle(alert(7))
    assert handler.flush(10)
    got = sorted((m.key(), m.value()[:2]) for m in consume(noida.bootstrap, topic, 2))
    assert got == [(b"k", b"hi"), (b"sec:7", b'{"')]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_login_failure_surfaces_within_timeout(
    tansu: Broker, pool: ProducerPool, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_for(tansu.bootstrap, sasl_mechanism=mechanism, sasl_username="alice", sasl_password="wrong")
    started = time.monotonic()
    ok, message = run_kafka_service_test(config, {"cluster": "main", "topic": unique("scram")})
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    assert not ok
    assert "refused" in message and mechanism in message

    handler = KafkaHandler.create({"topic": unique("scram")}, config, pool)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="kapacity.kafka.producer"):
        for i in range(3):
            handler.handle(alert(i))
        flushed = handler.flush(TIMEOUT_S + SLACK_S)
    assert flushed, "an auth failure must settle the alerts, not leave them retrying"
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    assert handler.stats() == {"write_messages": 0, "write_errors": 3, "dropped": 0, "in_flight": 0}
    assert mechanism in caplog.text and "delivery failed" in caplog.text


@pytest.mark.skipif(librdkafka_features("sasl_gssapi"), reason="this librdkafka has Kerberos support")
def test_gssapi_without_kerberos_support_is_a_clear_setup_error(tmp_path: Path, pool: ProducerPool) -> None:
    config = config_for("127.0.0.1:9092", sasl_mechanism="GSSAPI", sasl_username="kapacity")
    with pytest.raises(KafkaSetupError, match="GSSAPI") as info:
        KafkaHandler.create({"topic": "alerts"}, config, pool)
    # The remedy (the wording is clientconfig's): a confluent-kafka with Kerberos support.
    assert "Kerberos" in str(info.value) and "pip install" in str(info.value)
    ok, message = run_kafka_service_test(config, {"cluster": "main"})
    assert not ok and message == str(info.value)
