"""The one place a ``[[kafka]]`` cluster becomes librdkafka (confluent-kafka) properties.

========================================  ==============================================
``[[kafka]]`` key                         librdkafka property
========================================  ==============================================
``id``                                    ``client.id`` (as Kapacitor's sarama ClientID)
``brokers``                               ``bootstrap.servers``
``timeout``                               ``socket.timeout.ms``, ``request.timeout.ms``,
                                          ``socket.connection.setup.timeout.ms``;
                                          producer ``message.timeout.ms`` (see below)
``batch-size``                            ``batch.num.messages``
``batch-timeout``                         ``linger.ms``: librdkafka sends a partial batch
                                          once it has waited this long, which is what
                                          Kapacitor's batch-timeout (sarama
                                          Flush.Frequency) does
``use-ssl`` / SASL on                     ``security.protocol`` PLAINTEXT / SSL /
                                          SASL_PLAINTEXT / SASL_SSL
``ssl-ca``, ``ssl-cert``, ``ssl-key``     ``ssl.ca.location``, ``ssl.certificate.location``,
                                          ``ssl.key.location``
``insecure-skip-verify``                  ``enable.ssl.certificate.verification=false``,
                                          ``ssl.endpoint.identification.algorithm=none``
``sasl-mechanism`` (username → PLAIN)     ``sasl.mechanism``
``sasl-username``, ``sasl-password``      ``sasl.username``, ``sasl.password``
OAUTHBEARER                               ``oauth_cb``: :class:`~kapacity.kafka.oauth.StaticToken`
                                          or :class:`~kapacity.kafka.oauth.ClientCredentialsToken`
GSSAPI                                    ``sasl.kerberos.*`` (see :func:`_gssapi`)
``sasl-version``                          nothing: librdkafka negotiates the SaslHandshake
                                          version per broker from ApiVersions, so a v0-only
                                          broker (old Azure Event Hubs) gets v0 and others v1.
                                          Forcing v0 would need ``api.version.request=false``,
                                          which also disables every modern protocol feature.
========================================  ==============================================

The returned :class:`ClientConfig` is a plain ``dict`` whose ``repr`` masks secrets.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable
from typing import Any, Final

from kapacity.config.kafka import KafkaClusterConfig
from kapacity.kafka.oauth import ClientCredentialsToken, StaticToken, azuread_token_url

__all__ = [
    "DELIVERY_ATTEMPTS",
    "ClientConfig",
    "admin_config",
    "check_runtime_support",
    "client_config",
    "consumer_config",
    "kerberos_environment",
    "librdkafka_features",
    "producer_config",
]

ConfigValue = str | int | float | bool | Callable[..., Any]

_NS_PER_MS: Final = 1_000_000

#: Kapacitor's sarama producer makes up to 4 attempts (Retry.Max = 3), each bounded by
#: ``timeout``; librdkafka retries inside ``message.timeout.ms``, so that budget is
#: ``DELIVERY_ATTEMPTS * timeout`` (40 s with the default 10 s).
DELIVERY_ATTEMPTS: Final = 4

#: librdkafka's accepted ranges (values outside fail client creation).
_MAX_BATCH_MESSAGES: Final = 1_000_000
_MAX_LINGER_MS: Final = 900_000

_SECRET_KEYS: Final = frozenset(
    {"sasl.password", "ssl.key.password", "sasl.oauthbearer.client.secret"}
)

#: librdkafka ``builtin.features`` each option needs.
_FEATURE_FOR_MECHANISM: Final = {
    "GSSAPI": "sasl_gssapi",
    "PLAIN": "sasl_plain",
    "SCRAM-SHA-256": "sasl_scram",
    "SCRAM-SHA-512": "sasl_scram",
    "OAUTHBEARER": "sasl_oauthbearer",
}


class ClientConfig(dict[str, ConfigValue]):
    """librdkafka properties; ``repr``/``str`` mask passwords so configs can be logged."""

    def __repr__(self) -> str:
        shown = {k: ("******" if k in _SECRET_KEYS else v) for k, v in self.items()}
        return f"ClientConfig({shown!r})"

    __str__ = __repr__


def _ms(ns: int) -> int | float:
    """Nanoseconds → milliseconds, an ``int`` when whole (librdkafka accepts both)."""
    whole, rest = divmod(ns, _NS_PER_MS)
    return whole if rest == 0 else ns / _NS_PER_MS


def security_protocol(cluster: KafkaClusterConfig) -> str:
    if cluster.sasl_enabled:
        return "SASL_SSL" if cluster.use_ssl else "SASL_PLAINTEXT"
    return "SSL" if cluster.use_ssl else "PLAINTEXT"


def client_config(cluster: KafkaClusterConfig) -> ClientConfig:
    """Connection, security and timeout properties shared by producers, consumers and admins."""
    timeout_ms = max(1, int(_ms(cluster.timeout)))
    conf = ClientConfig(
        {
            "bootstrap.servers": ",".join(b.strip() for b in cluster.brokers),
            "client.id": cluster.id or "kapacity",
            "socket.timeout.ms": max(10, timeout_ms),  # librdkafka's minimum is 10 ms
            "socket.connection.setup.timeout.ms": max(1000, timeout_ms),  # minimum 1 s
            "security.protocol": security_protocol(cluster),
        }
    )
    if cluster.use_ssl:
        conf.update(_ssl(cluster))
    if cluster.sasl_enabled:
        conf.update(_sasl(cluster))
    return conf


def producer_config(cluster: KafkaClusterConfig) -> ClientConfig:
    """Everything a producer for ``cluster`` needs: :func:`client_config` + batching + timeouts."""
    conf = client_config(cluster)
    timeout_ms = max(1, int(_ms(cluster.timeout)))
    linger = min(_ms(cluster.batch_timeout), _MAX_LINGER_MS)
    conf["request.timeout.ms"] = timeout_ms
    conf["batch.num.messages"] = min(max(1, cluster.batch_size), _MAX_BATCH_MESSAGES)
    conf["linger.ms"] = linger
    # message.timeout.ms must exceed linger.ms, or librdkafka refuses the config.
    conf["message.timeout.ms"] = max(DELIVERY_ATTEMPTS * timeout_ms, int(linger) + timeout_ms)
    return conf


def admin_config(cluster: KafkaClusterConfig) -> ClientConfig:
    """Properties for an AdminClient (no producer-only keys)."""
    return client_config(cluster)


def consumer_config(cluster: KafkaClusterConfig, group_id: str) -> ClientConfig:
    """Properties for a Consumer in ``group_id`` (generated names come from their callers)."""
    conf = client_config(cluster)
    conf["group.id"] = group_id
    return conf


def _ssl(cluster: KafkaClusterConfig) -> dict[str, ConfigValue]:
    conf: dict[str, ConfigValue] = {}
    if cluster.ssl_ca:
        conf["ssl.ca.location"] = cluster.ssl_ca
    if cluster.ssl_cert:
        conf["ssl.certificate.location"] = cluster.ssl_cert
    if cluster.ssl_key:
        conf["ssl.key.location"] = cluster.ssl_key
    if cluster.insecure_skip_verify:
        # Go's InsecureSkipVerify skips both the chain and the host name check.
        conf["enable.ssl.certificate.verification"] = False
        conf["ssl.endpoint.identification.algorithm"] = "none"
    return conf


def _sasl(cluster: KafkaClusterConfig) -> dict[str, ConfigValue]:
    mech = cluster.effective_sasl_mechanism
    conf: dict[str, ConfigValue] = {"sasl.mechanism": mech}
    if mech in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        conf["sasl.username"] = cluster.sasl_username
        conf["sasl.password"] = cluster.sasl_password.get_secret_value()
    elif mech == "OAUTHBEARER":
        conf["oauth_cb"] = oauth_token_source(cluster)
    elif mech == "GSSAPI":
        conf.update(_gssapi(cluster))
    return conf


def oauth_token_source(cluster: KafkaClusterConfig) -> StaticToken | ClientCredentialsToken:
    """The ``oauth_cb`` for an OAUTHBEARER cluster (static token, else client credentials)."""
    if cluster.sasl_access_token.get_secret_value():
        return StaticToken(
            cluster.sasl_access_token,
            cluster.sasl_extensions,
            principal=cluster.sasl_username,
        )
    service = cluster.sasl_oauth_service
    url = (
        azuread_token_url(cluster.sasl_oauth_tenant_id)
        if service == "azuread"
        else cluster.sasl_oauth_token_url
    )
    return ClientCredentialsToken(
        url,
        cluster.sasl_oauth_client_id,
        cluster.sasl_oauth_client_secret,
        scopes=cluster.sasl_oauth_scopes,
        params=cluster.sasl_oauth_parameters,
        extensions=cluster.sasl_extensions,
        # Kapacitor: Auth0 → AuthStyleInParams; custom and AzureAD → auto-detect.
        credentials_in_body=True if service == "auth0" else None,
        expiry_margin_s=cluster.sasl_oauth_token_expiry_margin / 1e9,
        timeout_s=cluster.timeout / 1e9,
    )


def kerberos_principal(cluster: KafkaClusterConfig) -> str:
    """``sasl-username@sasl-gssapi-realm`` (the username alone if it has a realm or none is set)."""
    user = cluster.sasl_username
    realm = cluster.sasl_gssapi_realm
    return f"{user}@{realm}" if realm and "@" not in user else user


def _gssapi(cluster: KafkaClusterConfig) -> dict[str, ConfigValue]:
    """Kerberos via librdkafka's Cyrus SASL plugin, which uses a credential cache.

    KRB5_KEYTAB_AUTH: librdkafka runs ``kinit`` with the keytab at start and to refresh.
    KRB5_USER_AUTH: librdkafka cannot log in with a password; it uses the existing
    ticket cache (``kinit`` run beforehand by the operator or the system), and its own
    refresh is disabled. ``sasl-gssapi-kerberos-config-path`` is passed to kinit as
    ``KRB5_CONFIG``; the process also needs it in its environment
    (:func:`kerberos_environment`). ``sasl-gssapi-disable-pafxfast`` has no librdkafka
    equivalent (FAST is configured in krb5.conf).
    """
    principal = kerberos_principal(cluster)
    conf: dict[str, ConfigValue] = {
        "sasl.kerberos.service.name": cluster.sasl_gssapi_service_name or "kafka",
        "sasl.kerberos.principal": principal,
    }
    if cluster.gssapi_auth_type == "KRB5_KEYTAB_AUTH":
        keytab = cluster.sasl_gssapi_key_tab_path
        conf["sasl.kerberos.keytab"] = keytab
        env = ""
        if cluster.sasl_gssapi_kerberos_config_path:
            env = f"KRB5_CONFIG={shlex.quote(cluster.sasl_gssapi_kerberos_config_path)} "
        kt, pr = shlex.quote(keytab), shlex.quote(principal)
        # Renew the ticket if possible, else get a new one (librdkafka's default command).
        conf["sasl.kerberos.kinit.cmd"] = (
            f"{env}kinit -R -t {kt} -k {pr} || {env}kinit -t {kt} -k {pr}"
        )
    else:
        conf["sasl.kerberos.min.time.before.relogin"] = 0
    return conf


def kerberos_environment(cluster: KafkaClusterConfig) -> dict[str, str]:
    """Environment variables the process needs for GSSAPI (``KRB5_CONFIG``), else empty."""
    path = cluster.sasl_gssapi_kerberos_config_path
    if cluster.effective_sasl_mechanism == "GSSAPI" and path:
        return {"KRB5_CONFIG": path}
    return {}


@functools.cache  # the loaded library cannot change while the process runs
def librdkafka_features(feature: str) -> bool:
    """Whether the installed librdkafka was built with ``feature`` (``builtin.features``).

    Setting ``builtin.features`` to a feature the build lacks fails client creation,
    which is librdkafka's documented way to check for one.
    """
    import confluent_kafka

    try:
        # log_level 0: no "no bootstrap.servers" warning; the client never connects.
        confluent_kafka.Producer({"builtin.features": feature, "log_level": 0})
    except confluent_kafka.KafkaException:
        return False
    return True


def check_runtime_support(
    cluster: KafkaClusterConfig, has_feature: Callable[[str], bool] = librdkafka_features
) -> list[str]:
    """Problems the installed librdkafka has with ``cluster`` (empty when it can serve it)."""
    if not cluster.enabled:
        return []
    problems: list[str] = []
    mech = cluster.effective_sasl_mechanism
    feature = _FEATURE_FOR_MECHANISM.get(mech)
    if feature and not has_feature(feature):
        if mech == "GSSAPI":
            problems.append(
                "sasl-mechanism GSSAPI: the installed librdkafka has no SASL/GSSAPI "
                "(Kerberos) support (builtin.features lacks sasl_gssapi; confluent-kafka's "
                "PyPI wheels are built without it). Install a librdkafka built with Cyrus "
                "SASL (libsasl2 and its GSSAPI module, e.g. libsasl2-modules-gssapi-mit) in "
                "the version confluent-kafka needs, then rebuild confluent-kafka against it: "
                "`pip install --no-binary confluent-kafka confluent-kafka`"
            )
        else:
            problems.append(
                f"sasl-mechanism {mech}: the installed librdkafka lacks the {feature} feature"
            )
    if (
        mech == "GSSAPI"
        and cluster.gssapi_auth_type == "KRB5_USER_AUTH"
        and cluster.sasl_password.get_secret_value()
    ):
        # Saying nothing would silently ignore the password.
        problems.append(
            "sasl-mechanism GSSAPI with KRB5_USER_AUTH: librdkafka cannot log in with "
            "sasl-password; get a ticket with kinit before starting kapacity and remove "
            "sasl-password, or use sasl-gssapi-auth-type = KRB5_KEYTAB_AUTH with a keytab"
        )
    if cluster.use_ssl and not has_feature("ssl"):
        problems.append("use-ssl: the installed librdkafka was built without SSL support")
    return problems
