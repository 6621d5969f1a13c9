"""The post handler: JSON body, headers, non-2xx answers are errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from kapacity.handlers.errors import HandlerOptionError
from kapacity.handlers.post import PostHandler, parse_go_duration_seconds, parse_post_options
from tests.unit.handlers.test_log import alert

pytestmark = pytest.mark.integration


class Receiver(BaseHTTPRequestHandler):
    got: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.got.append((self.path, dict(self.headers), body))
        self.send_response(500 if self.path == "/fail" else 200)
        self.end_headers()
        self.wfile.write(b"nope")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.got = []
    srv = HTTPServer(("127.0.0.1", 0), Receiver)
    t = threading.Thread(target=srv.serve_forever)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    t.join()


def test_options() -> None:
    o = parse_post_options({"url": "http://h/x", "headers": {"A": "b"}, "timeout": "1m30s", "capture-response": True})
    assert (o.timeout, o.headers, o.capture_response) == (90.0, {"A": "b"}, True)
    assert parse_go_duration_seconds("500ms") == 0.5
    for opts, option in [({}, "url"), ({"url": "ftp://x"}, "url"), ({"url": "http://h", "timeout": "soon"}, "timeout"),
                         ({"url": "http://h", "headers": {"a": 1}}, "headers"), ({"endpoint": "e"}, "endpoint")]:
        with pytest.raises(HandlerOptionError) as err:
            parse_post_options(opts)
        assert err.value.option == option


def test_posts_alert_json_with_headers(receiver: str) -> None:
    h = PostHandler(parse_post_options({"url": receiver + "/alerts", "headers": {"X-Team": "ops"}}))
    h.handle(alert())
    h.close(10)
    [(path, headers, body)] = Receiver.got
    assert path == "/alerts" and headers["X-Team"] == "ops" and headers["Content-Type"] == "application/json"
    assert json.loads(body)["level"] == "CRITICAL"
    assert h.stats()["delivered"] == 1


def test_non_2xx_is_an_error(receiver: str) -> None:
    h = PostHandler(parse_post_options({"url": receiver + "/fail", "capture-response": True}))
    h.handle(alert())
    h.close(10)
    assert h.stats()["errors"] == 1
