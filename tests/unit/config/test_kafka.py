"""[[kafka]] cluster rules (Kapacitor's services/kafka Validate, plus the documented fixes)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kapacity.config import KafkaClusterConfig


def cluster(**kw: Any) -> KafkaClusterConfig:
    base: dict[str, Any] = {"enabled": True, "id": "c", "brokers": ["k:9092"]}
    base.update(kw)
    return KafkaClusterConfig.model_validate(base)


def messages(**kw: Any) -> dict[str, str]:
    return {".".join(map(str, path)): msg for path, msg in cluster(**kw).problems()}


def test_minimal_enabled_cluster_is_valid() -> None:
    assert cluster().problems() == []


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "scram-sha-512"])
def test_valid_mechanisms_normalised_to_upper_case(mech: str) -> None:
    c = cluster(**{"sasl-mechanism": mech, "sasl-username": "u"})
    assert c.problems() == []
    assert c.effective_sasl_mechanism == mech.upper()


def test_sasl_enabled_iff_username_or_mechanism() -> None:
    assert not cluster().sasl_enabled
    assert cluster(**{"sasl-username": "u"}).effective_sasl_mechanism == "PLAIN"
    assert cluster(**{"sasl-mechanism": "SCRAM-SHA-256"}).sasl_enabled


@pytest.mark.parametrize(("raw", "value"), [("", None), ("0", 0), ("1", 1), (0, 0), (1, 1)])
def test_sasl_version_spellings(raw: object, value: int | None) -> None:
    c = cluster(**{"sasl-version": raw})
    assert c.sasl_version == value
    assert c.problems() == []


def test_sasl_version_other_values_are_rejected() -> None:
    assert messages(**{"sasl-version": 3}) == {
        "sasl-version": 'invalid SASL version 3; valid choices: "" (automatic), 0, 1'
    }
    with pytest.raises(ValidationError, match="invalid SASL version"):
        cluster(**{"sasl-version": "v1"})


def test_cert_without_key_and_key_without_cert() -> None:
    assert messages(**{"use-ssl": True, "ssl-cert": "c.pem"}) == {
        "ssl-key": "ssl-cert is set without ssl-key; set both or neither"
    }
    assert messages(**{"use-ssl": True, "ssl-key": "k.pem"}) == {
        "ssl-cert": "ssl-key is set without ssl-cert; set both or neither"
    }
    # SSL options only take effect with use-ssl (as documented), so they are not checked.
    assert messages(**{"ssl-cert": "c.pem"}) == {}


def test_negative_sizes_and_durations() -> None:
    got = messages(timeout="-1s", **{"batch-size": -1, "batch-timeout": "-5ms"})
    assert set(got) == {"timeout", "batch-size", "batch-timeout"}


def test_static_oauth_token_needs_nothing_else() -> None:
    assert messages(**{"sasl-mechanism": "OAUTHBEARER", "sasl-access-token": "t"}) == {}


def test_static_token_cannot_be_mixed_with_a_token_source() -> None:
    got = messages(
        **{
            "sasl-mechanism": "OAUTHBEARER",
            "sasl-access-token": "t",
            "sasl-oauth-token-url": "https://idp/token",
        }
    )
    assert got == {
        "sasl-access-token": "cannot set 'sasl-access-token' with 'sasl-oauth-service' "
        "and 'sasl-oauth-token-url'"
    }


def oauth(**kw: Any) -> dict[str, str]:
    base = {
        "sasl-mechanism": "OAUTHBEARER",
        "sasl-oauth-client-id": "id",
        "sasl-oauth-client-secret": "secret",
    }
    base.update(kw)
    return messages(**base)


def test_oauth_client_credentials_rules() -> None:
    assert oauth(**{"sasl-oauth-token-url": "https://idp/token"}) == {}
    assert oauth() == {"sasl-oauth-token-url": "'sasl-oauth-token-url' required for custom service"}
    assert set(oauth(**{"sasl-oauth-client-id": "", "sasl-oauth-token-url": "u"})) == {
        "sasl-oauth-client-id"
    }
    assert oauth(**{"sasl-oauth-service": "Auth0", "sasl-oauth-token-url": "u"}) == {
        "sasl-oauth-parameters": "'audience' parameter is required for Auth0"
    }
    assert (
        oauth(
            **{
                "sasl-oauth-service": "auth0",
                "sasl-oauth-token-url": "u",
                "sasl-oauth-parameters": {"audience": "kafka"},
            }
        )
        == {}
    )
    assert oauth(**{"sasl-oauth-service": "azuread"}) == {
        "sasl-oauth-tenant-id": "'sasl-oauth-tenant-id' required for AzureAD"
    }
    assert set(
        oauth(
            **{
                "sasl-oauth-service": "azuread",
                "sasl-oauth-tenant-id": "t",
                "sasl-oauth-token-url": "u",
            }
        )
    ) == {"sasl-oauth-token-url"}
    assert oauth(**{"sasl-oauth-service": "okta"}) == {
        "sasl-oauth-service": 'service "okta" not supported; valid choices: custom, auth0, azuread'
    }


def test_gssapi_rules() -> None:
    ok = {"sasl-mechanism": "GSSAPI", "sasl-username": "svc", "sasl-gssapi-realm": "EX.COM"}
    assert messages(**ok) == {}
    assert messages(**ok, **{"sasl-gssapi-auth-type": "KRB5_KEYTAB_AUTH"}) == {
        "sasl-gssapi-key-tab-path": "sasl-gssapi-key-tab-path is required with KRB5_KEYTAB_AUTH"
    }
    assert messages(**ok, **{"sasl-gssapi-auth-type": "PASSWORD"}) == {
        "sasl-gssapi-auth-type": 'invalid sasl-gssapi-auth-type "PASSWORD"; '
        "valid choices: KRB5_USER_AUTH, KRB5_KEYTAB_AUTH"
    }
    assert set(messages(**{"sasl-mechanism": "GSSAPI"})) == {"sasl-username"}


@pytest.mark.parametrize("broker", ["host:0", "host:99999", ":9092", "host:abc", " "])
def test_bad_broker_addresses(broker: str) -> None:
    assert set(messages(brokers=["ok:1", broker])) == {"brokers.1"}


def test_secrets_are_masked_in_repr() -> None:
    c = cluster(
        **{
            "sasl-password": "pw-1",
            "sasl-access-token": "tok-2",
            "sasl-oauth-client-secret": "sec-3",
        }
    )
    text = repr(c) + str(c) + str(c.model_dump())
    for secret in ("pw-1", "tok-2", "sec-3"):
        assert secret not in text
