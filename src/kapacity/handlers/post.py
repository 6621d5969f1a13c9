"""The ``post`` alert handler: HTTP POST the alert JSON to ``url``.

Options (Kapacitor's ``httppost`` handler): ``url`` (required), ``headers`` (map),
``capture-response`` (bool: put the response body in the error of a non-2xx answer),
``timeout`` (Go duration string such as ``"10s"``, or nanoseconds; 0 = default) and
``skip-ssl-verification`` (bool). Named ``endpoint`` s from a ``[[httppost]]`` config
section are not supported: the option is rejected with that explanation. In the queued
runtime the request has an ``X-Kapacity-Event-Id`` header (unless ``headers`` sets one).
"""

from __future__ import annotations

import re
from urllib.parse import quote
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from kapacity.alert.event import AlertData, encode_alert_json
from kapacity.handlers.base import EVENT_ID_HTTP_HEADER
from kapacity.handlers.errors import HandlerError, HandlerOptionError
from kapacity.handlers.log import BackgroundHandler, option, reject_unknown

#: Used when no timeout is set: a receiver that never answers must not stall alerts.
DEFAULT_TIMEOUT_S = 30.0

_KNOWN = ("url", "endpoint", "headers", "capture-response", "timeout", "skip-ssl-verification")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class PostOptions:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    capture_response: bool = False
    timeout: float = DEFAULT_TIMEOUT_S
    skip_ssl_verification: bool = False


def parse_go_duration_seconds(text: str) -> float:
    """``"1m30s"`` → ``90.0``; raises ValueError on anything else."""
    pos, total = 0, 0.0
    if not text:
        raise ValueError("empty duration")
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    return total


def _bool(options: Mapping[str, Any], name: str) -> bool:
    value = option(options, name, False)
    if not isinstance(value, bool):
        raise HandlerOptionError("post", name, f"must be true or false, got {value!r}")
    return value


def parse_post_options(options: Mapping[str, Any]) -> PostOptions:
    """Validate ``options`` of a ``post`` handler.

    >>> parse_post_options({"url": "http://h/alerts", "timeout": "5s"}).timeout
    5.0
    """
    reject_unknown(options, _KNOWN, "post")
    if option(options, "endpoint"):
        raise HandlerOptionError(
            "post", "endpoint", "needs [[httppost]] endpoints, which kapacity does not support; set 'url' instead"
        )
    url = option(options, "url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise HandlerOptionError("post", "url", f"must be an http:// or https:// URL, got {url!r}")
    headers = option(options, "headers", {}) or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise HandlerOptionError("post", "headers", f"must map strings to strings, got {headers!r}")
    raw_timeout = option(options, "timeout", 0)
    try:
        if isinstance(raw_timeout, bool):
            raise ValueError(raw_timeout)
        if isinstance(raw_timeout, int | float):
            timeout = float(raw_timeout) / 1e9
        elif isinstance(raw_timeout, str):
            timeout = parse_go_duration_seconds(raw_timeout)
        else:
            raise ValueError(raw_timeout)
    except ValueError:
        raise HandlerOptionError("post", "timeout", f"must be a duration like '10s', got {raw_timeout!r}") from None
    return PostOptions(
        url=url, headers=dict(headers), capture_response=_bool(options, "capture-response"),
        timeout=timeout if timeout > 0 else DEFAULT_TIMEOUT_S,
        skip_ssl_verification=_bool(options, "skip-ssl-verification"),
    )


#: Printable ASCII except space and ``%``: kept as is in the event id header.
_HEADER_SAFE = "!\"#$&'()*+,/:;<=>?@[\\]^`{|}"


def header_value(event_id: str) -> str:
    """``event_id`` as an HTTP header value: unchanged when it is printable ASCII without
    space or ``%`` (ids of ASCII task names), else percent-encoded UTF-8 — one spelling per id.

    >>> header_value("0:7:cpu:0"), header_value("0:7:tâche 1:0")
    ('0:7:cpu:0', '0:7:t%C3%A2che%201:0')
    """
    return quote(event_id, safe=_HEADER_SAFE)


class PostHandler(BackgroundHandler):
    kind = "post"

    def __init__(self, options: PostOptions) -> None:
        self.options = options
        self._client = httpx.Client(timeout=options.timeout, verify=not options.skip_ssl_verification)
        super().__init__()

    def deliver(self, alert: AlertData, event_id: str | None = None) -> None:
        headers = {**self.options.headers, "Content-Type": "application/json"}
        if event_id is not None and EVENT_ID_HTTP_HEADER.lower() not in {k.lower() for k in headers}:
            headers[EVENT_ID_HTTP_HEADER] = header_value(event_id)  # a user's header of that name wins
        try:
            resp = self._client.post(self.options.url, content=encode_alert_json(alert), headers=headers)
        except httpx.HTTPError as exc:
            raise HandlerError(f"post handler: {self.options.url}: {exc}") from exc
        if resp.status_code // 100 != 2:
            detail = (resp.text if self.options.capture_response
                      else "unknown error, set capture-response to see the HTTP response")
            raise HandlerError(f"post handler: {self.options.url} answered {resp.status_code}: {detail}")

    def close(self, timeout: float) -> None:
        super().close(timeout)
        self._client.close()
