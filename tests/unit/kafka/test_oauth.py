"""OAUTHBEARER token sources for librdkafka's oauth_cb."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer

import confluent_kafka
import pytest
from pydantic import SecretStr

from kapacity.config import KafkaClusterConfig
from kapacity.kafka.clientconfig import producer_config

from kapacity.kafka.oauth import (
    ClientCredentialsToken,
    OAuthTokenError,
    StaticToken,
    azuread_token_url,
)
from tests.support.kafka import Broker, create_topic, unique


class FakeEndpoint:
    """Records requests; answers with queued (status, json) replies."""

    def __init__(self, *replies: tuple[int, object]) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []

    def __call__(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> tuple[int, bytes]:
        assert timeout > 0
        self.requests.append((url, urllib.parse.parse_qs(body.decode()), dict(headers)))
        status, payload = self.replies.pop(0)
        return status, json.dumps(payload).encode()


def source(post: FakeEndpoint, **kw: object) -> ClientCredentialsToken:
    return ClientCredentialsToken(
        "https://idp.example/token",
        "my id",
        SecretStr("s3cr=t"),
        post=post,
        clock=lambda: 1000.0,
        **kw,  # type: ignore[arg-type]
    )


def test_static_token_with_far_expiry_and_extensions() -> None:
    tok = StaticToken(SecretStr("abc"), {"logicalCluster": "lkc-1"}, clock=lambda: 100.0)
    token, expiry, principal, ext = tok("ignored")
    assert token == "abc"
    assert expiry > 100.0 + 300 * 24 * 3600
    assert principal == "kapacity"
    assert ext == {"logicalCluster": "lkc-1"}
    assert "abc" not in repr(tok)


def test_client_credentials_request_and_expiry_minus_margin() -> None:
    post = FakeEndpoint((200, {"access_token": "T1", "expires_in": 3600, "token_type": "bearer"}))
    got = source(
        post,
        scopes=["a", "b"],
        params={"audience": "kafka"},
        extensions={"x": "y"},
        expiry_margin_s=10.0,
    )(None)
    assert got == ("T1", 1000.0 + 3600 - 10, "my id", {"x": "y"})
    url, form, headers = post.requests[0]
    assert url == "https://idp.example/token"
    assert form == {
        "grant_type": ["client_credentials"],
        "scope": ["a b"],
        "audience": ["kafka"],
    }
    # RFC 6749: form-encoded id and secret inside the Basic header.
    basic = base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode()
    assert basic == "my+id:s3cr%3Dt"


def test_auto_detect_falls_back_to_credentials_in_body_and_remembers() -> None:
    post = FakeEndpoint(
        (401, {"error": "invalid_client"}),
        (200, {"access_token": "T1", "expires_in": 60}),
        (200, {"access_token": "T2", "expires_in": 60}),
    )
    src = source(post)
    assert src(None)[0] == "T1"
    assert src(None)[0] == "T2"
    assert "Authorization" in post.requests[0][2]
    for _, form, headers in post.requests[1:]:
        assert "Authorization" not in headers
        assert form["client_id"] == ["my id"] and form["client_secret"] == ["s3cr=t"]


def test_auth0_style_sends_credentials_in_body_only() -> None:
    post = FakeEndpoint((200, {"access_token": "T", "expires_in": 60}))
    source(post, credentials_in_body=True)(None)
    assert len(post.requests) == 1
    assert "Authorization" not in post.requests[0][2]


def test_short_lifetime_is_halved_and_missing_lifetime_defaults_to_an_hour() -> None:
    post = FakeEndpoint(
        (200, {"access_token": "T", "expires_in": 8}), (200, {"access_token": "T"})
    )
    src = source(post, expiry_margin_s=10.0)
    assert src(None)[1] == 1004.0
    assert src(None)[1] == 1000.0 + 3600 - 10


def test_refusal_raises_retriable_error_with_server_reason_not_secret() -> None:
    post = FakeEndpoint((403, {"error": "unauthorized_client", "error_description": "nope"}))
    with pytest.raises(OAuthTokenError) as info:
        source(post, credentials_in_body=False)(None)
    assert "HTTP 403: unauthorized_client: nope" in str(info.value)
    assert info.value.retriable
    assert "s3cr" not in str(info.value) and "s3cr" not in repr(source(post))


def test_answer_without_token_is_an_error() -> None:
    with pytest.raises(OAuthTokenError, match="no access_token"):
        source(FakeEndpoint((200, {"token": "x"})), credentials_in_body=True)(None)


def test_azuread_url_from_tenant() -> None:
    assert (
        azuread_token_url("contoso.onmicrosoft.com")
        == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )


class _TokenHandler(BaseHTTPRequestHandler):
    served = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        type(self).served += 1
        length = int(self.headers["Content-Length"])
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        ok = self.headers.get("Authorization", "").startswith("Basic ")
        body = (
            {"access_token": f"tok-{form['grant_type'][0]}", "expires_in": 120}
            if ok
            else {"error": "invalid_client"}
        )
        data = json.dumps(body).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        del format, args


@pytest.fixture
def token_server() -> Iterator[str]:
    _TokenHandler.served = 0
    server = HTTPServer(("127.0.0.1", 0), _TokenHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.integration
def test_real_http_round_trip(token_server: str) -> None:
    src = ClientCredentialsToken(token_server, "id", SecretStr("secret"), clock=lambda: 0.0)
    assert src(None)[:2] == ("tok-client_credentials", 110.0)


@pytest.mark.integration
def test_unreachable_endpoint_is_a_retriable_error() -> None:
    src = ClientCredentialsToken("http://127.0.0.1:9/token", "id", SecretStr("s"), timeout_s=2)
    with pytest.raises(OAuthTokenError, match="127.0.0.1:9") as info:
        src(None)
    assert info.value.retriable


@pytest.mark.integration
def test_librdkafka_calls_the_client_credentials_source(noida: Broker, token_server: str) -> None:
    # noida accepts any OAUTHBEARER token: this checks that librdkafka drives our source.
    cluster = KafkaClusterConfig.model_validate(
        {
            "enabled": True,
            "id": "oauth",
            "brokers": [noida.bootstrap],
            "sasl-mechanism": "OAUTHBEARER",
            "sasl-oauth-client-id": "cid",
            "sasl-oauth-client-secret": "csecret",
            "sasl-oauth-token-url": token_server,
        }
    )
    topic = unique("oauth")
    create_topic(noida.bootstrap, topic)
    producer = confluent_kafka.Producer(producer_config(cluster))
    producer.produce(topic, b"v", b"k")
    assert producer.flush(15) == 0
    assert _TokenHandler.served >= 1
