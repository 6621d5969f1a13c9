"""``[[kafka]]`` clusters: the keys of Kapacitor's ``services/kafka`` config, and its rules.

Defaults follow Kapacitor's *documentation* where its code differs (``timeout`` 0 → 10s).
Zero values of ``timeout``, ``batch-size`` and ``batch-timeout`` are replaced by their
defaults when the model is built, so a model always holds the effective values. Durations
are integer nanoseconds. A disabled cluster is not checked (as in Kapacitor).
"""

from __future__ import annotations

from typing import Final

from pydantic import AliasChoices, Field, SecretStr, field_validator

from kapacity.config.base import Issue, Section
from kapacity.config.durations import DurationNs

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_BATCH_TIMEOUT_NS",
    "DEFAULT_OAUTH_EXPIRY_MARGIN_NS",
    "DEFAULT_TIMEOUT_NS",
    "GSSAPI_AUTH_TYPES",
    "OAUTH_SERVICES",
    "SASL_MECHANISMS",
    "KafkaClusterConfig",
]

_SECOND: Final = 1_000_000_000
DEFAULT_TIMEOUT_NS: Final = 10 * _SECOND
DEFAULT_BATCH_SIZE: Final = 100
DEFAULT_BATCH_TIMEOUT_NS: Final = 1 * _SECOND
DEFAULT_OAUTH_EXPIRY_MARGIN_NS: Final = 10 * _SECOND

SASL_MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")
GSSAPI_AUTH_TYPES: Final = ("KRB5_USER_AUTH", "KRB5_KEYTAB_AUTH")
OAUTH_SERVICES: Final = ("custom", "auth0", "azuread")
SASL_VERSIONS: Final = (0, 1)


class KafkaClusterConfig(Section):
    """One ``[[kafka]]`` section: a Kafka cluster alerts can be sent to, named by ``id``."""

    enabled: bool = False
    id: str = ""
    brokers: list[str] = Field(default_factory=list)
    timeout: DurationNs = DEFAULT_TIMEOUT_NS
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_timeout: DurationNs = DEFAULT_BATCH_TIMEOUT_NS

    use_ssl: bool = False
    ssl_ca: str = ""
    ssl_cert: str = ""
    ssl_key: str = ""
    insecure_skip_verify: bool = False

    sasl_username: str = ""
    sasl_password: SecretStr = SecretStr("")
    sasl_mechanism: str = ""
    sasl_version: int | None = None
    """SASL handshake version: ``None`` = automatic (v1), 0 or 1."""
    sasl_extensions: dict[str, str] = Field(
        default_factory=dict,
        # The docs spell it with a hyphen, Kapacitor's code reads an underscore: accept both.
        validation_alias=AliasChoices("sasl-extensions", "sasl_extensions"),
        serialization_alias="sasl-extensions",
    )

    sasl_gssapi_service_name: str = ""
    sasl_gssapi_auth_type: str = ""
    """``KRB5_USER_AUTH`` (also when empty) or ``KRB5_KEYTAB_AUTH``."""
    sasl_gssapi_disable_pafxfast: bool = False
    sasl_gssapi_kerberos_config_path: str = ""
    sasl_gssapi_key_tab_path: str = ""
    sasl_gssapi_realm: str = ""

    sasl_access_token: SecretStr = SecretStr("")
    sasl_oauth_service: str = ""
    sasl_oauth_client_id: str = ""
    sasl_oauth_client_secret: SecretStr = SecretStr("")
    sasl_oauth_token_url: str = ""
    sasl_oauth_tenant_id: str = ""
    sasl_oauth_scopes: list[str] = Field(default_factory=list)
    sasl_oauth_parameters: dict[str, str] = Field(default_factory=dict)
    sasl_oauth_token_expiry_margin: DurationNs = DEFAULT_OAUTH_EXPIRY_MARGIN_NS

    # --- normalisation (never fails: rules live in problems(), skipped when disabled) ---

    @field_validator("timeout")
    @classmethod
    def _default_timeout(cls, v: int) -> int:
        return v or DEFAULT_TIMEOUT_NS

    @field_validator("batch_size")
    @classmethod
    def _default_batch_size(cls, v: int) -> int:
        return v or DEFAULT_BATCH_SIZE

    @field_validator("batch_timeout")
    @classmethod
    def _default_batch_timeout(cls, v: int) -> int:
        return v or DEFAULT_BATCH_TIMEOUT_NS

    @field_validator("sasl_mechanism", "sasl_gssapi_auth_type", mode="after")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.strip().upper()

    @field_validator("sasl_oauth_service", mode="after")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.strip().lower()

    @field_validator("sasl_version", mode="before")
    @classmethod
    def _sasl_version(cls, v: object) -> object:
        # The documented example writes sasl-version = "" (automatic); "0"/"1" are kind.
        if isinstance(v, str):
            s = v.strip()
            if s == "":
                return None
            if s.lstrip("-").isdigit():
                return int(s)
            raise ValueError(f'invalid SASL version "{v}"; valid choices: "" (automatic), 0, 1')
        return v

    # --- derived values -------------------------------------------------------------

    @property
    def sasl_enabled(self) -> bool:
        """SASL is on iff a username or a mechanism is set (as in Kapacitor)."""
        return bool(self.sasl_username or self.sasl_mechanism)

    @property
    def effective_sasl_mechanism(self) -> str:
        """The mechanism in use: a username without a mechanism means ``PLAIN``; "" if none."""
        if self.sasl_mechanism:
            return self.sasl_mechanism
        return "PLAIN" if self.sasl_username else ""

    @property
    def gssapi_auth_type(self) -> str:
        return self.sasl_gssapi_auth_type or "KRB5_USER_AUTH"

    # --- rules ----------------------------------------------------------------------

    def problems(self) -> list[Issue]:
        """Kapacitor's validation rules (and a few more), none when the cluster is disabled."""
        if not self.enabled:
            return []
        out: list[Issue] = []
        if not self.id:
            out.append((("id",), "id must not be empty"))
        if not self.brokers:
            out.append(
                (("brokers",), "no brokers specified, must provide at least one broker URL")
            )
        for i, broker in enumerate(self.brokers):
            msg = _broker_problem(broker)
            if msg:
                out.append((("brokers", i), msg))
        if self.timeout < 0:
            out.append((("timeout",), "timeout must not be negative"))
        if self.batch_size < 0:
            out.append((("batch-size",), "batch-size must not be negative"))
        if self.batch_timeout < 0:
            out.append((("batch-timeout",), "batch-timeout must not be negative"))
        if self.use_ssl:
            if self.ssl_cert and not self.ssl_key:
                out.append((("ssl-key",), "ssl-cert is set without ssl-key; set both or neither"))
            if self.ssl_key and not self.ssl_cert:
                out.append((("ssl-cert",), "ssl-key is set without ssl-cert; set both or neither"))
        out.extend(self._sasl_problems())
        return out

    def _sasl_problems(self) -> list[Issue]:
        out: list[Issue] = []
        mech = self.sasl_mechanism
        if mech and mech not in SASL_MECHANISMS:
            valid = ", ".join(SASL_MECHANISMS)
            out.append(
                (("sasl-mechanism",), f'invalid sasl-mechanism "{mech}"; valid choices: {valid}')
            )
        if self.sasl_version is not None and self.sasl_version not in SASL_VERSIONS:
            out.append(
                (
                    ("sasl-version",),
                    f"invalid SASL version {self.sasl_version}; "
                    'valid choices: "" (automatic), 0, 1',
                )
            )
        if mech == "OAUTHBEARER":
            out.extend(self._oauth_problems())
        elif mech == "GSSAPI":
            out.extend(self._gssapi_problems())
        return out

    def _oauth_problems(self) -> list[Issue]:
        service = self.sasl_oauth_service
        token = self.sasl_access_token.get_secret_value()
        if token:
            # A static token needs nothing else (the docs' promise; Kapacitor's code
            # wrongly also demands client credentials) but must not be mixed with a source.
            if service or self.sasl_oauth_token_url:
                return [
                    (
                        ("sasl-access-token",),
                        "cannot set 'sasl-access-token' with 'sasl-oauth-service' "
                        "and 'sasl-oauth-token-url'",
                    )
                ]
            return []
        out: list[Issue] = []
        if not self.sasl_oauth_client_id:
            out.append(
                (
                    ("sasl-oauth-client-id",),
                    "'sasl-oauth-client-id' and 'sasl-oauth-client-secret' are required "
                    "(or set a static 'sasl-access-token')",
                )
            )
        if not self.sasl_oauth_client_secret.get_secret_value():
            out.append(
                (
                    ("sasl-oauth-client-secret",),
                    "'sasl-oauth-client-id' and 'sasl-oauth-client-secret' are required "
                    "(or set a static 'sasl-access-token')",
                )
            )
        if service in ("", "custom"):
            if not self.sasl_oauth_token_url:
                out.append(
                    (
                        ("sasl-oauth-token-url",),
                        "'sasl-oauth-token-url' required for custom service",
                    )
                )
        elif service == "auth0":
            if not self.sasl_oauth_token_url:
                out.append((("sasl-oauth-token-url",), "'sasl-oauth-token-url' required for Auth0"))
            if not self.sasl_oauth_parameters.get("audience"):
                out.append(
                    (("sasl-oauth-parameters",), "'audience' parameter is required for Auth0")
                )
        elif service == "azuread":
            if not self.sasl_oauth_tenant_id:
                out.append(
                    (("sasl-oauth-tenant-id",), "'sasl-oauth-tenant-id' required for AzureAD")
                )
            if self.sasl_oauth_token_url:
                out.append(
                    (
                        ("sasl-oauth-token-url",),
                        "'sasl-oauth-token-url' cannot be set for service azuread "
                        "(the token URL comes from the tenant id)",
                    )
                )
        else:
            valid = ", ".join(OAUTH_SERVICES)
            out.append(
                (
                    ("sasl-oauth-service",),
                    f'service "{service}" not supported; valid choices: {valid}',
                )
            )
        return out

    def _gssapi_problems(self) -> list[Issue]:
        out: list[Issue] = []
        auth = self.sasl_gssapi_auth_type
        if auth and auth not in GSSAPI_AUTH_TYPES:
            valid = ", ".join(GSSAPI_AUTH_TYPES)
            out.append(
                (
                    ("sasl-gssapi-auth-type",),
                    f'invalid sasl-gssapi-auth-type "{auth}"; valid choices: {valid}',
                )
            )
        if auth == "KRB5_KEYTAB_AUTH" and not self.sasl_gssapi_key_tab_path:
            out.append(
                (
                    ("sasl-gssapi-key-tab-path",),
                    "sasl-gssapi-key-tab-path is required with KRB5_KEYTAB_AUTH",
                )
            )
        if not self.sasl_username:
            out.append(
                (
                    ("sasl-username",),
                    "sasl-username (the Kerberos principal) is required for GSSAPI",
                )
            )
        return out


def _broker_problem(broker: str) -> str:
    text = broker.strip()
    if not text:
        return "broker address must not be empty"
    host, sep, port = text.rpartition(":")
    if sep and (not port.isdigit() or not 0 < int(port) < 65536):
        return f'invalid broker address "{broker}": expected host:port with a port 1-65535'
    if sep and not host:
        return f'invalid broker address "{broker}": missing host'
    return ""
