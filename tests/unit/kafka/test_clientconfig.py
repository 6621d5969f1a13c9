"""[[kafka]] → librdkafka properties, and what the installed librdkafka can do."""

from __future__ import annotations

from typing import Any

import confluent_kafka
import pytest

from kapacity.config import KafkaClusterConfig
from kapacity.kafka.clientconfig import (
    check_runtime_support,
    client_config,
    consumer_config,
    kerberos_environment,
    librdkafka_features,
    producer_config,
)
from kapacity.kafka.oauth import ClientCredentialsToken, StaticToken
from tests.support.kafka import Broker, consume, create_topic, unique


def cluster(**kw: Any) -> KafkaClusterConfig:
    base: dict[str, Any] = {"enabled": True, "id": "infra", "brokers": ["a:9092", " b:9093"]}
    base.update(kw)
    c = KafkaClusterConfig.model_validate(base)
    assert c.problems() == []
    return c


def test_plaintext_defaults() -> None:
    conf = producer_config(cluster())
    assert conf == {
        "bootstrap.servers": "a:9092,b:9093",
        "client.id": "infra",
        "security.protocol": "PLAINTEXT",
        "socket.timeout.ms": 10_000,
        "socket.connection.setup.timeout.ms": 10_000,
        "request.timeout.ms": 10_000,
        "batch.num.messages": 100,
        "linger.ms": 1000,
        "message.timeout.ms": 40_000,
    }


def test_batching_and_timeouts_follow_the_cluster() -> None:
    conf = producer_config(cluster(timeout="2s", **{"batch-size": 7, "batch-timeout": "250ms"}))
    assert conf["batch.num.messages"] == 7
    assert conf["linger.ms"] == 250
    assert conf["socket.timeout.ms"] == conf["request.timeout.ms"] == 2000
    assert conf["message.timeout.ms"] == 8000
    assert producer_config(cluster(**{"batch-timeout": "1500us"}))["linger.ms"] == 1.5


def test_message_timeout_always_exceeds_linger() -> None:
    conf = producer_config(cluster(timeout="1s", **{"batch-timeout": "10s"}))
    assert conf["message.timeout.ms"] > conf["linger.ms"]  # type: ignore[operator]


def test_ssl_mapping_and_insecure_skip_verify() -> None:
    conf = client_config(
        cluster(
            **{
                "use-ssl": True,
                "ssl-ca": "/ca.pem",
                "ssl-cert": "/c.pem",
                "ssl-key": "/k.pem",
                "insecure-skip-verify": True,
            }
        )
    )
    assert conf["security.protocol"] == "SSL"
    assert conf["ssl.ca.location"] == "/ca.pem"
    assert conf["ssl.certificate.location"] == "/c.pem"
    assert conf["ssl.key.location"] == "/k.pem"
    assert conf["enable.ssl.certificate.verification"] is False
    assert conf["ssl.endpoint.identification.algorithm"] == "none"
    verified = client_config(cluster(**{"use-ssl": True}))
    assert "enable.ssl.certificate.verification" not in verified


def test_ssl_files_ignored_without_use_ssl() -> None:
    conf = client_config(cluster(**{"ssl-ca": "/ca.pem"}))
    assert "ssl.ca.location" not in conf and conf["security.protocol"] == "PLAINTEXT"


@pytest.mark.parametrize(
    ("kw", "protocol", "mechanism"),
    [
        ({"sasl-username": "u", "sasl-password": "p"}, "SASL_PLAINTEXT", "PLAIN"),
        (
            {"sasl-username": "u", "sasl-password": "p", "sasl-mechanism": "SCRAM-SHA-512"},
            "SASL_PLAINTEXT",
            "SCRAM-SHA-512",
        ),
        ({"sasl-username": "u", "use-ssl": True}, "SASL_SSL", "PLAIN"),
    ],
)
def test_sasl_username_password(kw: dict[str, Any], protocol: str, mechanism: str) -> None:
    conf = client_config(cluster(**kw))
    assert conf["security.protocol"] == protocol
    assert conf["sasl.mechanism"] == mechanism
    assert conf["sasl.username"] == "u"


def test_secrets_are_masked_in_repr_but_present_for_librdkafka() -> None:
    conf = producer_config(cluster(**{"sasl-username": "u", "sasl-password": "hunter2"}))
    assert conf["sasl.password"] == "hunter2"
    assert "hunter2" not in repr(conf) and "hunter2" not in str(conf)
    assert "'sasl.password': '******'" in repr(conf)


@pytest.mark.parametrize("version", [None, 0, 1])
def test_sasl_version_needs_no_property(version: int | None) -> None:
    # librdkafka negotiates the SaslHandshake version with each broker (see module doc).
    conf = client_config(cluster(**{"sasl-username": "u", "sasl-version": version}))
    assert "api.version.request" not in conf and "broker.version.fallback" not in conf


def test_oauth_static_token() -> None:
    conf = client_config(
        cluster(
            **{
                "sasl-mechanism": "OAUTHBEARER",
                "sasl-access-token": "tok",
                "sasl-extensions": {"k": "v"},
            }
        )
    )
    cb = conf["oauth_cb"]
    assert isinstance(cb, StaticToken)
    token, _, _, ext = cb(None)
    assert (token, ext) == ("tok", {"k": "v"})
    assert "tok'" not in repr(conf)


@pytest.mark.parametrize(
    ("kw", "url", "in_body"),
    [
        ({"sasl-oauth-token-url": "https://idp/t"}, "https://idp/t", None),
        (
            {
                "sasl-oauth-service": "auth0",
                "sasl-oauth-token-url": "https://x.auth0.com/oauth/token",
                "sasl-oauth-parameters": {"audience": "kafka"},
            },
            "https://x.auth0.com/oauth/token",
            True,
        ),
        (
            {"sasl-oauth-service": "AzureAD", "sasl-oauth-tenant-id": "t1"},
            "https://login.microsoftonline.com/t1/oauth2/v2.0/token",
            None,
        ),
    ],
)
def test_oauth_client_credentials(kw: dict[str, Any], url: str, in_body: bool | None) -> None:
    base = {
        "sasl-mechanism": "OAUTHBEARER",
        "sasl-oauth-client-id": "cid",
        "sasl-oauth-client-secret": "csecret",
        "sasl-oauth-token-expiry-margin": "30s",
    }
    cb = client_config(cluster(**base, **kw))["oauth_cb"]
    assert isinstance(cb, ClientCredentialsToken)
    assert cb.token_url == url and cb.client_id == "cid"
    assert cb._in_body is in_body
    assert cb._margin == 30.0
    assert "csecret" not in repr(cb)


def test_gssapi_keytab() -> None:
    c = cluster(
        **{
            "sasl-mechanism": "GSSAPI",
            "sasl-username": "kapacitor",
            "sasl-gssapi-realm": "EXAMPLE.COM",
            "sasl-gssapi-service-name": "kafka-svc",
            "sasl-gssapi-auth-type": "KRB5_KEYTAB_AUTH",
            "sasl-gssapi-key-tab-path": "/etc/my keytab",
            "sasl-gssapi-kerberos-config-path": "/etc/krb5.conf",
        }
    )
    conf = client_config(c)
    assert conf["sasl.mechanism"] == "GSSAPI"
    assert conf["sasl.kerberos.service.name"] == "kafka-svc"
    assert conf["sasl.kerberos.principal"] == "kapacitor@EXAMPLE.COM"
    assert conf["sasl.kerberos.keytab"] == "/etc/my keytab"
    assert conf["sasl.kerberos.kinit.cmd"] == (
        "KRB5_CONFIG=/etc/krb5.conf kinit -R -t '/etc/my keytab' -k kapacitor@EXAMPLE.COM || "
        "KRB5_CONFIG=/etc/krb5.conf kinit -t '/etc/my keytab' -k kapacitor@EXAMPLE.COM"
    )
    assert kerberos_environment(c) == {"KRB5_CONFIG": "/etc/krb5.conf"}


def test_gssapi_user_auth_uses_the_ticket_cache() -> None:
    c = cluster(**{"sasl-mechanism": "GSSAPI", "sasl-username": "svc@OTHER.ORG"})
    conf = client_config(c)
    assert conf["sasl.kerberos.principal"] == "svc@OTHER.ORG"
    assert conf["sasl.kerberos.service.name"] == "kafka"
    assert conf["sasl.kerberos.min.time.before.relogin"] == 0
    assert "sasl.kerberos.kinit.cmd" not in conf
    assert kerberos_environment(c) == {}


def test_consumer_config_adds_group() -> None:
    assert consumer_config(cluster(), "kapacity-g")["group.id"] == "kapacity-g"


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"use-ssl": True, "insecure-skip-verify": True, "batch-timeout": "1500us"},
        {"sasl-username": "u", "sasl-password": "p", "sasl-mechanism": "SCRAM-SHA-256"},
        {"sasl-mechanism": "OAUTHBEARER", "sasl-access-token": "t"},
        {"batch-size": 5_000_000, "batch-timeout": "1h", "timeout": "1ms"},
    ],
)
def test_librdkafka_accepts_every_generated_config(kw: dict[str, Any]) -> None:
    conf = producer_config(cluster(brokers=["127.0.0.1:9"], **kw))
    # librdkafka validates names, types and ranges when the client is created.
    producer = confluent_kafka.Producer({**conf, "log_level": 0})
    assert isinstance(producer, confluent_kafka.Producer)


def test_runtime_support_reports_missing_gssapi_with_remedy() -> None:
    c = cluster(**{"sasl-mechanism": "GSSAPI", "sasl-username": "svc"})
    (msg,) = check_runtime_support(c, has_feature=lambda f: f != "sasl_gssapi")
    assert "no SASL/GSSAPI" in msg and "--no-binary confluent-kafka" in msg
    assert check_runtime_support(c, has_feature=lambda f: True) == []
    assert check_runtime_support(cluster(enabled=False, **{"sasl-mechanism": "GSSAPI"})) == []


def test_runtime_support_checks_ssl_feature() -> None:
    c = cluster(**{"use-ssl": True})
    assert check_runtime_support(c, has_feature=lambda f: f != "ssl") == [
        "use-ssl: the installed librdkafka was built without SSL support"
    ]


def test_installed_librdkafka_features_are_probed() -> None:
    assert librdkafka_features("ssl")
    assert librdkafka_features("sasl_scram")
    gssapi = librdkafka_features("sasl_gssapi")
    c = cluster(**{"sasl-mechanism": "GSSAPI", "sasl-username": "svc"})
    assert bool(check_runtime_support(c)) is not gssapi


@pytest.mark.integration
@pytest.mark.parametrize(
    "kw",
    [
        {"sasl-username": "alice", "sasl-password": "any"},
        {"sasl-mechanism": "OAUTHBEARER", "sasl-access-token": "any-token"},
    ],
    ids=["plain", "oauthbearer-static"],
)
def test_generated_sasl_config_produces_through_noida(noida: Broker, kw: dict[str, Any]) -> None:
    # noida accepts any PLAIN / OAUTHBEARER credentials: this checks our plumbing end to end.
    topic = unique("cc")
    create_topic(noida.bootstrap, topic)
    conf = producer_config(cluster(brokers=[noida.bootstrap], **kw))
    producer = confluent_kafka.Producer(conf)
    producer.produce(topic, b"v", b"k")
    assert producer.flush(15) == 0
    (msg,) = consume(noida.bootstrap, topic, 1)
    assert (msg.key(), msg.value()) == (b"k", b"v")


def test_runtime_support_refuses_a_kerberos_password_it_would_ignore() -> None:
    c = cluster(
        **{"sasl-mechanism": "GSSAPI", "sasl-username": "svc", "sasl-password": "hunter2"}
    )
    (msg,) = check_runtime_support(c, has_feature=lambda f: True)
    assert "cannot log in with sasl-password" in msg and "hunter2" not in msg
    keytab = cluster(
        **{
            "sasl-mechanism": "GSSAPI",
            "sasl-username": "svc",
            "sasl-password": "pw",
            "sasl-gssapi-auth-type": "KRB5_KEYTAB_AUTH",
            "sasl-gssapi-key-tab-path": "/k",
        }
    )
    assert check_runtime_support(keytab, has_feature=lambda f: True) == []
