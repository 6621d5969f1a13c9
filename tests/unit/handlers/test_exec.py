"""The exec handler: the program gets the alert JSON on stdin; failures are counted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kapacity.handlers.errors import HandlerOptionError
from kapacity.handlers.exec import ExecHandler, parse_exec_options
from tests.unit.handlers.test_log import alert


def test_options() -> None:
    assert parse_exec_options({"prog": "/bin/sh", "args": ["-c", "cat"]}).args == ("-c", "cat")
    for opts, option in [({}, "prog"), ({"prog": "/bin/sh", "args": "x"}, "args"), ({"prog": "x", "a": 1}, "a")]:
        with pytest.raises(HandlerOptionError) as err:
            parse_exec_options(opts)
        assert err.value.option == option


def test_program_receives_alert_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    code = f"import sys; open({str(out)!r}, 'wb').write(sys.stdin.buffer.read())"
    h = ExecHandler(parse_exec_options({"prog": sys.executable, "args": ["-c", code]}))
    h.handle(alert())
    h.close(30)
    assert json.loads(out.read_bytes())["message"] == "Hey, check your CPU"
    assert h.stats()["delivered"] == 1


def test_failing_program_is_an_error(tmp_path: Path) -> None:
    h = ExecHandler(parse_exec_options({"prog": sys.executable, "args": ["-c", "raise SystemExit(3)"]}))
    h.handle(alert())
    h.close(30)
    assert h.stats()["errors"] == 1 and h.stats()["delivered"] == 0
