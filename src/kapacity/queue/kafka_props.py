"""Raw Kafka client properties (Kestra's ``kafka.*.properties``) → librdkafka properties.

Kestra passes Java client properties; kapacity's clients are librdkafka. This module is the
one place that translates them. A Java name with a librdkafka equivalent is renamed
(``max.request.size`` → ``message.max.bytes``); a Java-only key with no equivalent is
**rejected** with a message naming the key and what to use instead — never silently dropped.
Keys librdkafka knows under the same name pass through unchanged.

>>> to_librdkafka({"max.request.size": 10485760, "acks": "all"})
{'message.max.bytes': '10485760', 'acks': 'all'}
>>> to_librdkafka({"ssl.endpoint.identification.algorithm": ""})
{'ssl.endpoint.identification.algorithm': 'none'}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pydantic import SecretStr

from kapacity.errors import KapacityError

__all__ = [
    "JAVA_ONLY",
    "RENAMES",
    "STREAM_ONLY",
    "PropValue",
    "PropertyError",
    "flatten",
    "is_secret_key",
    "plain",
    "to_librdkafka",
]

PropValue = str | int | float | bool | SecretStr
"""A property value as written in the config file (secrets wrapped in ``SecretStr``)."""

RENAMES: Final[Mapping[str, str]] = {
    "max.request.size": "message.max.bytes",
    "max.partition.fetch.bytes": "max.partition.fetch.bytes",
    "buffer.memory": "queue.buffering.max.kbytes",  # value converted from bytes to KiB
    "transaction.timeout.ms": "transaction.timeout.ms",
}

JAVA_ONLY: Final[Mapping[str, str]] = {
    "key.serializer": "kapacity encodes keys itself; remove it",
    "value.serializer": "kapacity encodes values as JSON itself; remove it",
    "key.deserializer": "kapacity decodes keys itself; remove it",
    "value.deserializer": "kapacity decodes values as JSON itself; remove it",
    "max.poll.records": "librdkafka has no such limit; kapacity's receive takes a batch size "
    "argument instead; remove it",
    "sasl.jaas.config": "librdkafka does not read JAAS; set sasl.mechanism with sasl.username "
    "and sasl.password (PLAIN/SCRAM) or sasl.oauthbearer.* instead",
    "sasl.login.callback.handler.class": "Java classes cannot be loaded; use sasl.oauthbearer.* "
    "properties instead",
    "interceptor.classes": "Java classes cannot be loaded; use queue.kafka.client.loggers instead",
    "partitioner.class": "Java classes cannot be loaded; set partitioner (e.g. murmur2_random) "
    "instead",
    "ssl.truststore.password": "librdkafka reads PEM CA files, which have no password; remove it "
    "and set ssl.ca.location",
    "ssl.keymanager.algorithm": "librdkafka has no key manager setting; remove it",
    "ssl.trustmanager.algorithm": "librdkafka has no trust manager setting; remove it",
    "ssl.protocol": "librdkafka negotiates the TLS version; remove it",
    "ssl.enabled.protocols": "librdkafka negotiates the TLS version; remove it",
}

STREAM_ONLY: Final = frozenset(
    {
        "processing.guarantee",
        "state.dir",
        "replication.factor",
        "application.id",
        "num.stream.threads",
        "commit.interval.ms",
        "default.key.serde",
        "default.value.serde",
    }
)
"""Kafka Streams keys: read by kapacity's own loop, never passed to a client."""

_SECRET_HINTS: Final = ("password", "secret", "jaas", "token")


class PropertyError(KapacityError, ValueError):
    """A property cannot be given to librdkafka; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")


def is_secret_key(key: str) -> bool:
    """Keys whose values are never shown (``ssl.key.password``, ``sasl.password``, ...)."""
    low = key.lower()
    return any(h in low for h in _SECRET_HINTS)


def plain(value: PropValue) -> str:
    """The librdkafka string form of a value (``True`` → ``"true"``)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flatten(raw: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """``{"bootstrap": {"servers": "x"}}`` → ``{"bootstrap.servers": "x"}``.

    TOML reads ``bootstrap.servers = "x"`` (unquoted) as nested tables; both spellings mean
    the same property.
    """
    out: dict[str, object] = {}
    for k, v in raw.items():
        name = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, name))
        else:
            out[name] = v
    return out


def _truststore(props: Mapping[str, PropValue], out: dict[str, str]) -> None:
    location = plain(props["ssl.truststore.location"])
    kind = plain(props.get("ssl.truststore.type", "")).upper()
    low = location.lower()
    if kind == "PEM" or (not kind and low.endswith((".pem", ".crt", ".cer"))):
        out["ssl.ca.location"] = location
        return
    if kind == "PKCS12" or (not kind and low.endswith((".p12", ".pfx"))):
        what = "PKCS12 truststores"
    else:
        what = "JKS truststores"
    raise PropertyError(
        "ssl.truststore.location",
        f"librdkafka cannot read {what}; convert it to PEM "
        f"(keytool -exportcert -rfc) and set ssl.ca.location",
    )


def _keystore_type(props: Mapping[str, PropValue]) -> None:
    kind = plain(props["ssl.keystore.type"]).upper()
    if kind == "PKCS12":
        return  # librdkafka's ssl.keystore.location is a PKCS#12 file: nothing to set
    if kind == "PEM":
        raise PropertyError(
            "ssl.keystore.type",
            "PEM keystores map to ssl.certificate.location and ssl.key.location; "
            "set those instead of ssl.keystore.*",
        )
    raise PropertyError(
        "ssl.keystore.type",
        f'librdkafka cannot read {kind or "JKS"} keystores; convert it to PKCS12 '
        "(keytool -importkeystore -deststoretype PKCS12) and keep ssl.keystore.location/"
        "ssl.keystore.password",
    )


def to_librdkafka(props: Mapping[str, PropValue], *, allow_stream: bool = False) -> dict[str, str]:
    """Translate one layer of properties; raises :class:`PropertyError` for the first bad key.

    ``allow_stream`` skips Kafka Streams keys (:data:`STREAM_ONLY`) instead of refusing them.
    """
    out: dict[str, str] = {}
    for key, value in props.items():
        if key in STREAM_ONLY:
            if allow_stream:
                continue
            raise PropertyError(
                key, "a Kafka Streams property; set it under queue.kafka.stream.properties"
            )
        if key in JAVA_ONLY:
            if key == "ssl.truststore.password" and "ssl.truststore.location" in props:
                continue  # reported with the location, the key that needs the change
            raise PropertyError(key, f"Java-only property with no librdkafka equivalent: {JAVA_ONLY[key]}")
        if key == "ssl.truststore.location":
            _truststore(props, out)
        elif key == "ssl.truststore.type":
            continue  # read with the location
        elif key == "ssl.keystore.type":
            _keystore_type(props)
        elif key == "ssl.endpoint.identification.algorithm":
            text = plain(value).strip().lower()
            out[key] = text or "none"
        elif key == "buffer.memory":
            try:
                kib = max(1, int(plain(value)) // 1024)
            except ValueError:
                raise PropertyError(key, f'expected a number of bytes, got "{plain(value)}"') from None
            out[RENAMES[key]] = str(kib)
        else:
            out[RENAMES.get(key, key)] = plain(value)
    return out
