"""OAUTHBEARER tokens for librdkafka's ``oauth_cb``: a static token, or OAuth2 client credentials.

librdkafka calls ``oauth_cb(sasl_oauthbearer_config)`` when it needs a token (at start
and again at 80% of the previous token's lifetime) and expects
``(token, expiry_epoch_seconds, principal, extensions)``. An exception makes librdkafka
report an authentication failure and call again later.

The client-credentials source mirrors Kapacitor (``golang.org/x/oauth2/clientcredentials``
with ``ReuseTokenSourceWithExpiry``): a ``grant_type=client_credentials`` POST to the token
URL with the scopes and extra parameters; the token is treated as expired
``sasl-oauth-token-expiry-margin`` before its real expiry, so librdkafka refreshes in time.
Credentials go in an HTTP Basic header, and if the server refuses that (400/401) in the
form body, as Go's ``AuthStyleAutoDetect``; Auth0 always gets them in the body.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from pydantic import SecretStr

from kapacity.errors import KapacityError

__all__ = [
    "ClientCredentialsToken",
    "OAuthTokenError",
    "StaticToken",
    "TokenResult",
    "azuread_token_url",
]

TokenResult = tuple[str, float, str, dict[str, str]]
"""What ``oauth_cb`` returns: token, expiry (epoch seconds), principal, SASL extensions."""

HttpPost = Callable[[str, bytes, Mapping[str, str], float], tuple[int, bytes]]
"""``post(url, body, headers, timeout_s) -> (status, body)``; injectable for tests."""

#: A static token has no known expiry; librdkafka needs one and re-asks at 80% of it.
#: A year keeps it from calling back for the same token needlessly.
STATIC_TOKEN_LIFETIME_S: Final = 365 * 24 * 3600.0

#: When the server gives no ``expires_in`` (Go's oauth2 then never refreshes), refresh hourly.
DEFAULT_TOKEN_LIFETIME_S: Final = 3600.0

DEFAULT_PRINCIPAL: Final = "kapacity"


def azuread_token_url(tenant_id: str) -> str:
    """The v2.0 token endpoint of an Azure AD tenant (as Go's ``oauth2/endpoints.AzureAD``)."""
    tenant = urllib.parse.quote(tenant_id, safe="")
    return f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"


class OAuthTokenError(KapacityError):
    """The token endpoint could not be reached or refused to issue a token."""

    retriable = True


class StaticToken:
    """``sasl-access-token``: the same token every time, with a far expiry."""

    def __init__(
        self,
        token: SecretStr,
        extensions: Mapping[str, str] | None = None,
        principal: str = DEFAULT_PRINCIPAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token = token
        self._extensions = dict(extensions or {})
        self._principal = principal or DEFAULT_PRINCIPAL
        self._clock = clock

    def __call__(self, oauth_config: str | None = None) -> TokenResult:
        del oauth_config
        expiry = self._clock() + STATIC_TOKEN_LIFETIME_S
        return self._token.get_secret_value(), expiry, self._principal, dict(self._extensions)

    def __repr__(self) -> str:
        return f"StaticToken(token=******, principal={self._principal!r})"


class ClientCredentialsToken:
    """OAuth2 client-credentials token source for librdkafka's ``oauth_cb``."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        scopes: Sequence[str] = (),
        params: Mapping[str, str] | None = None,
        extensions: Mapping[str, str] | None = None,
        credentials_in_body: bool | None = None,
        expiry_margin_s: float = 10.0,
        timeout_s: float = 10.0,
        post: HttpPost | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``credentials_in_body``: True (Auth0), False (Basic header), None (auto-detect)."""
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self._scopes = tuple(scopes)
        self._params = dict(params or {})
        self._extensions = dict(extensions or {})
        self._in_body = credentials_in_body
        self._margin = expiry_margin_s
        self._timeout = timeout_s
        self._post = post or _urllib_post
        self._clock = clock

    def __repr__(self) -> str:
        return (
            f"ClientCredentialsToken(token_url={self.token_url!r}, "
            f"client_id={self.client_id!r}, client_secret=******)"
        )

    def __call__(self, oauth_config: str | None = None) -> TokenResult:
        del oauth_config
        now = self._clock()
        if self._in_body is None:
            status, body = self._request(in_body=False)
            if status in (400, 401):
                status2, body2 = self._request(in_body=True)
                if 200 <= status2 < 300:
                    self._in_body = True
                status, body = status2, body2
            elif 200 <= status < 300:
                self._in_body = False
        else:
            status, body = self._request(in_body=self._in_body)
        if not 200 <= status < 300:
            raise OAuthTokenError(
                f"token endpoint {self.token_url} answered HTTP {status}: {_error_text(body)}"
            )
        token, lifetime = _parse_token(body, self.token_url)
        if lifetime is None:
            lifetime = DEFAULT_TOKEN_LIFETIME_S
        # Report the token as expiring `margin` early, like ReuseTokenSourceWithExpiry;
        # a lifetime shorter than the margin is halved instead, never made negative.
        usable = lifetime - self._margin if lifetime > self._margin else lifetime / 2
        return token, now + usable, self.client_id or DEFAULT_PRINCIPAL, dict(self._extensions)

    def _request(self, *, in_body: bool) -> tuple[int, bytes]:
        form: list[tuple[str, str]] = [("grant_type", "client_credentials")]
        if self._scopes:
            form.append(("scope", " ".join(self._scopes)))
        form.extend(self._params.items())
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        secret = self._secret.get_secret_value()
        if in_body:
            form.extend([("client_id", self.client_id), ("client_secret", secret)])
        else:
            # RFC 6749 §2.3.1: form-encode both parts before Basic encoding (as Go does).
            pair = f"{urllib.parse.quote_plus(self.client_id)}:{urllib.parse.quote_plus(secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        body = urllib.parse.urlencode(form).encode()
        try:
            return self._post(self.token_url, body, headers, self._timeout)
        except OSError as exc:
            raise OAuthTokenError(f"token endpoint {self.token_url}: {exc}") from exc


def _parse_token(body: bytes, url: str) -> tuple[str, float | None]:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise OAuthTokenError(f"token endpoint {url} returned no access_token")
    expires = data.get("expires_in")
    if isinstance(expires, str) and expires.isdigit():
        expires = int(expires)
    lifetime = float(expires) if isinstance(expires, (int, float)) and expires > 0 else None
    return data["access_token"], lifetime


def _error_text(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace") or "(empty body)"
    if isinstance(data, dict) and "error" in data:
        desc = data.get("error_description")
        return f"{data['error']}" + (f": {desc}" if desc else "")
    return body[:200].decode("utf-8", "replace")


def _urllib_post(
    url: str, body: bytes, headers: Mapping[str, str], timeout: float
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status: int = response.status
            return status, response.read()
    except urllib.error.HTTPError as exc:
        if exc.fp is None:
            return exc.code, b""
        with exc:
            return exc.code, exc.read()
