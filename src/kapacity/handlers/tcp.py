"""The ``tcp`` alert handler: send the alert JSON to ``address`` over a new TCP connection.

Like Kapacitor, each alert opens a connection, writes the JSON line followed by one
more newline, and closes it. In the queued runtime the JSON ends with an ``"eventId"``
field (see :mod:`kapacity.handlers.base`).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kapacity.alert.event import AlertData, encode_alert_json
from kapacity.handlers.base import with_event_id
from kapacity.handlers.errors import HandlerError, HandlerOptionError
from kapacity.handlers.log import BackgroundHandler, option, reject_unknown

#: Connect and write timeout: a receiver that is down must not hold the delivery thread.
TCP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class TCPOptions:
    host: str
    port: int
    timeout: float = TCP_TIMEOUT_S

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_tcp_options(options: Mapping[str, Any]) -> TCPOptions:
    """Validate ``options`` of a ``tcp`` handler.

    >>> parse_tcp_options({"address": "127.0.0.1:7777"}).port
    7777
    """
    reject_unknown(options, ("address",), "tcp")
    address = option(options, "address")
    if not isinstance(address, str) or not address:
        raise HandlerOptionError("tcp", "address", f"must be 'host:port', got {address!r}")
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise HandlerOptionError("tcp", "address", f"must be 'host:port' with a port 1-65535, got {address!r}")
    return TCPOptions(host=host.strip("[]") or "localhost", port=int(port_text))


class TCPHandler(BackgroundHandler):
    kind = "tcp"

    def __init__(self, options: TCPOptions) -> None:
        self.options = options
        super().__init__()

    def deliver(self, alert: AlertData, event_id: str | None = None) -> None:
        body = encode_alert_json(alert)
        payload = (body if event_id is None else with_event_id(body, event_id)) + b"\n"
        try:
            with socket.create_connection((self.options.host, self.options.port),
                                          timeout=self.options.timeout) as conn:
                conn.sendall(payload)
        except OSError as exc:
            raise HandlerError(f"tcp handler: {self.options.address}: {exc}") from exc
