"""The tcp handler: one connection per alert carrying the JSON line and a newline."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from kapacity.handlers.errors import HandlerOptionError
from kapacity.handlers.tcp import TCPHandler, parse_tcp_options
from tests.unit.handlers.test_log import alert

pytestmark = pytest.mark.integration


def test_options() -> None:
    assert parse_tcp_options({"address": "localhost:9100"}).port == 9100
    for address in ["", "localhost", "h:0", "h:x"]:
        with pytest.raises(HandlerOptionError, match="address"):
            parse_tcp_options({"address": address})


def test_sends_json_then_blank_line_per_connection() -> None:
    srv = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def accept(n: int) -> None:
        for _ in range(n):
            conn, _ = srv.accept()
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                received.append(data)

    t = threading.Thread(target=accept, args=(2,))
    t.start()
    port = srv.getsockname()[1]
    h = TCPHandler(parse_tcp_options({"address": f"127.0.0.1:{port}"}))
    h.handle(alert(0))
    h.handle(alert(1))
    h.close(10)
    t.join(10)
    srv.close()
    assert len(received) == 2
    assert received[0].endswith(b"}\n\n")
    assert json.loads(received[1])["id"] == "cpu:host=a#1"


def test_unreachable_receiver_is_counted() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    h = TCPHandler(parse_tcp_options({"address": f"127.0.0.1:{port}"}))
    h.handle(alert())
    h.close(10)
    assert h.stats()["errors"] == 1
