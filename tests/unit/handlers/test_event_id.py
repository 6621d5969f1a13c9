"""Event ids on at-least-once handlers (issue 6): post header, exec environment, tcp/log
``eventId`` field — and nothing added when a handler is called without an id."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from kapacity.alert.event import encode_alert_json
from kapacity.handlers.base import (
    EVENT_ID_ENV,
    EVENT_ID_FIELD,
    EVENT_ID_HTTP_HEADER,
    EventIdHandler,
    Handler,
    with_event_id,
)
from kapacity.handlers.exec import ExecHandler, parse_exec_options
from kapacity.handlers.log import LogHandler, parse_log_options
from kapacity.handlers.post import PostHandler, header_value, parse_post_options
from kapacity.handlers.tcp import TCPHandler, parse_tcp_options
from tests.unit.handlers.test_log import alert

EID = "3:1042:cpu_alert:0"


# --- the JSON field (pure) ------------------------------------------------------------------


def test_event_id_field_is_appended_last_and_leaves_the_kapacitor_body_intact() -> None:
    body = encode_alert_json(alert())
    out = with_event_id(body, EID)
    assert out.startswith(body[:-2]) and out.endswith(b',"eventId":"3:1042:cpu_alert:0"}\n')
    assert json.loads(out) == {**json.loads(body), EVENT_ID_FIELD: EID}


def test_event_id_field_escapes_like_go_and_rejects_non_objects() -> None:
    out = with_event_id(b'{"id":"a"}', 'task<&>"é')
    assert out == '{"id":"a","eventId":"task\\u003c\\u0026\\u003e\\"é"}'.encode()
    assert json.loads(out)["eventId"] == 'task<&>"é'
    with pytest.raises(ValueError, match="JSON object"):
        with_event_id(b"[1]\n", EID)


def test_header_value_is_one_ascii_spelling_per_id() -> None:
    assert header_value(EID) == EID
    assert header_value("0:1:tâche 1:0") == "0:1:t%C3%A2che%201:0"
    assert header_value("0:1:50%:0") == "0:1:50%25:0"  # '%' itself is encoded: no ambiguity


def test_every_background_handler_takes_an_event_id(tmp_path: Path) -> None:
    handlers: list[Handler] = [
        LogHandler(parse_log_options({"path": str(tmp_path / "a.log")})),
        ExecHandler(parse_exec_options({"prog": "/bin/true"})),
        TCPHandler(parse_tcp_options({"address": "127.0.0.1:9"})),
        PostHandler(parse_post_options({"url": "http://127.0.0.1:9/"})),
    ]
    for h in handlers:
        assert isinstance(h, EventIdHandler), h
        h.close(1)


# --- log ------------------------------------------------------------------------------------


def test_log_line_carries_the_event_id_only_when_given(tmp_path: Path) -> None:
    path = tmp_path / "alerts.log"
    h = LogHandler(parse_log_options({"path": str(path)}))
    h.handle(alert(0))
    h.handle_event(alert(1), EID)
    h.close(5)
    plain, labelled = path.read_bytes().splitlines(keepends=True)
    assert plain == encode_alert_json(alert(0))  # Kapacitor's line, byte for byte
    assert labelled == with_event_id(encode_alert_json(alert(1)), EID)
    assert json.loads(labelled)["eventId"] == EID
    assert h.stats() == {"alerts": 2, "delivered": 2, "errors": 0, "dropped": 0}


# --- exec -----------------------------------------------------------------------------------


def test_exec_child_gets_the_event_id_in_its_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EVENT_ID_ENV, raising=False)
    monkeypatch.setenv("KAPACITY_TEST_INHERITED", "yes")
    out = tmp_path / "out"
    code = (
        "import json, os, sys\n"
        f"with open({str(out)!r}, 'a') as f:\n"
        f"    f.write(json.dumps([os.environ.get({EVENT_ID_ENV!r}), os.environ.get('KAPACITY_TEST_INHERITED'),"
        " sys.stdin.read()]) + '\\n')\n"
    )
    h = ExecHandler(parse_exec_options({"prog": sys.executable, "args": ["-c", code]}))
    h.handle_event(alert(0), EID)
    h.handle(alert(1))
    h.close(30)
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert first == [EID, "yes", encode_alert_json(alert(0)).decode()]  # stdin unchanged
    assert second == [None, "yes", encode_alert_json(alert(1)).decode()]
    assert h.stats()["delivered"] == 2


# --- tcp ------------------------------------------------------------------------------------


def _tcp_receiver(n: int) -> tuple[socket.socket, threading.Thread, list[bytes]]:
    srv = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def accept() -> None:
        for _ in range(n):
            conn, _ = srv.accept()
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                received.append(data)

    t = threading.Thread(target=accept)
    t.start()
    return srv, t, received


@pytest.mark.integration
def test_tcp_message_carries_the_event_id_only_when_given() -> None:
    srv, t, received = _tcp_receiver(2)
    h = TCPHandler(parse_tcp_options({"address": f"127.0.0.1:{srv.getsockname()[1]}"}))
    h.handle_event(alert(0), EID)
    assert h.flush(10)  # one connection at a time: the order of `received` is the order sent
    h.handle(alert(1))
    h.close(10)
    t.join(10)
    srv.close()
    assert received[0] == with_event_id(encode_alert_json(alert(0)), EID) + b"\n"
    assert json.loads(received[0])["eventId"] == EID
    assert received[1] == encode_alert_json(alert(1)) + b"\n"  # Kapacitor's bytes


# --- post -----------------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    got: list[tuple[list[tuple[str, str]], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.got.append((list(self.headers.items()), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.got = []
    srv = HTTPServer(("127.0.0.1", 0), _Receiver)
    t = threading.Thread(target=srv.serve_forever)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/alerts"
    srv.shutdown()
    srv.server_close()
    t.join()


def _named(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name.lower()]


@pytest.mark.integration
def test_post_sends_the_event_id_header_next_to_the_users_headers(receiver: str) -> None:
    h = PostHandler(parse_post_options({"url": receiver, "headers": {"Authorization": "Bearer t"}}))
    h.handle_event(alert(0), EID)
    h.handle_event(alert(1), "0:1:tâche:0")
    h.handle(alert(2))
    h.close(10)
    (h0, b0), (h1, _), (h2, b2) = _Receiver.got
    assert _named(h0, EVENT_ID_HTTP_HEADER) == [EID] and _named(h0, "Authorization") == ["Bearer t"]
    assert b0 == encode_alert_json(alert(0))  # the body stays Kapacitor's
    assert _named(h1, EVENT_ID_HTTP_HEADER) == ["0:1:t%C3%A2che:0"]
    assert _named(h2, EVENT_ID_HTTP_HEADER) == [] and b2 == encode_alert_json(alert(2))
    assert h.stats()["delivered"] == 3


@pytest.mark.integration
def test_post_never_overrides_a_users_header_of_the_same_name(receiver: str) -> None:
    h = PostHandler(parse_post_options({"url": receiver, "headers": {"x-kapacity-EVENT-id": "mine"}}))
    h.handle_event(alert(0), EID)
    h.close(10)
    ((headers, _),) = _Receiver.got
    assert _named(headers, EVENT_ID_HTTP_HEADER) == ["mine"]
