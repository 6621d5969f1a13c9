"""Java client properties → librdkafka: renames, translations, precise refusals."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from kapacity.queue.kafka_props import JAVA_ONLY, PropertyError, flatten, is_secret_key, to_librdkafka


def test_same_named_keys_pass_through_as_strings() -> None:
    assert to_librdkafka({"acks": "all", "linger.ms": 5, "enable.idempotence": True}) == {
        "acks": "all",
        "linger.ms": "5",
        "enable.idempotence": "true",
    }


def test_java_names_are_renamed_and_converted() -> None:
    assert to_librdkafka({"max.request.size": "10485760", "buffer.memory": 33554432}) == {
        "message.max.bytes": "10485760",
        "queue.buffering.max.kbytes": "32768",
    }


@pytest.mark.parametrize(("given", "expected"), [("", "none"), ("https", "https"), ("HTTPS", "https")])
def test_endpoint_identification(given: str, expected: str) -> None:
    assert to_librdkafka({"ssl.endpoint.identification.algorithm": given}) == {
        "ssl.endpoint.identification.algorithm": expected
    }


def test_pkcs12_keystore_is_what_librdkafka_reads() -> None:
    props = {
        "ssl.keystore.location": "/k.p12",
        "ssl.keystore.password": SecretStr("pw"),
        "ssl.keystore.type": "PKCS12",
        "ssl.key.password": SecretStr("kp"),
    }
    assert to_librdkafka(props) == {
        "ssl.keystore.location": "/k.p12",
        "ssl.keystore.password": "pw",
        "ssl.key.password": "kp",
    }


@pytest.mark.parametrize(
    ("props", "key", "message"),
    [
        ({"ssl.truststore.location": "/t.jks", "ssl.truststore.password": "x"}, "ssl.truststore.location",
         "librdkafka cannot read JKS truststores; convert it to PEM (keytool -exportcert -rfc) and set ssl.ca.location"),
        ({"ssl.truststore.location": "/t", "ssl.truststore.type": "PKCS12"}, "ssl.truststore.location",
         "librdkafka cannot read PKCS12 truststores"),
        ({"ssl.truststore.password": "x"}, "ssl.truststore.password", "set ssl.ca.location"),
        ({"ssl.keystore.type": "JKS"}, "ssl.keystore.type", "librdkafka cannot read JKS keystores"),
        ({"ssl.keystore.type": "PEM"}, "ssl.keystore.type", "ssl.certificate.location and ssl.key.location"),
        ({"value.serializer": "x"}, "value.serializer", "kapacity encodes values as JSON itself"),
        ({"state.dir": "/tmp"}, "state.dir", "a Kafka Streams property"),
        ({"buffer.memory": "lots"}, "buffer.memory", 'expected a number of bytes, got "lots"'),
    ],
)
def test_java_only_keys_are_refused_with_the_remedy(props: dict[str, str], key: str, message: str) -> None:
    with pytest.raises(PropertyError) as info:
        to_librdkafka(props)
    assert info.value.key == key
    assert message in str(info.value)


def test_pem_truststore_becomes_ssl_ca_location() -> None:
    assert to_librdkafka({"ssl.truststore.location": "/ca.pem"}) == {"ssl.ca.location": "/ca.pem"}
    assert to_librdkafka({"ssl.truststore.location": "/ca", "ssl.truststore.type": "PEM"}) == {
        "ssl.ca.location": "/ca"
    }


def test_stream_keys_are_skipped_for_stream_layers() -> None:
    assert to_librdkafka({"state.dir": "/s", "acks": "all"}, allow_stream=True) == {"acks": "all"}


def test_every_java_only_key_says_what_to_do() -> None:
    for key, advice in JAVA_ONLY.items():
        assert advice and ("instead" in advice or "remove" in advice or "set" in advice), key


def test_flatten_and_secret_keys() -> None:
    assert flatten({"bootstrap": {"servers": "a"}, "acks": "all"}) == {"bootstrap.servers": "a", "acks": "all"}
    assert is_secret_key("ssl.key.password") and is_secret_key("sasl.jaas.config")
    assert not is_secret_key("bootstrap.servers")
