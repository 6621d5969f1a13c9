"""The wiring hands the configured hostname to task templates as `.ServerInfo.Hostname`."""

from __future__ import annotations

from kapacity.config.model import Config
from kapacity.models import Point
from kapacity.server.wiring import make_compiler


def test_alert_id_template_sees_the_configured_hostname() -> None:
    compiler = make_compiler(Config(hostname="kap-01"))
    task = compiler.start(
        "t", "stream|from().measurement('cpu')|alert().id('{{ .ServerInfo.Hostname }}:{{ .Name }}')"
        ".crit(lambda: \"v\" > 1)", {},
    )
    events = task.task.process(Point("cpu", {}, {"v": 5.0}, 1_000_000_000))
    assert [e.data.id for e in events] == ["kap-01:cpu"]
