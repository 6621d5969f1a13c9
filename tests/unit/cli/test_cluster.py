"""`kapacity cluster status` formatting and `kapacity serve --instance`."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from kapacity.cli.cluster import format_status
from kapacity.cli.main import _register, cli
from kapacity.config.model import Config


def test_format_status_kafka_lists_each_stage_with_partitions_and_lag() -> None:
    text = format_status({
        "mode": "kafka", "instance": "a", "queue": "kafka", "accepting": True, "pending_points": 3,
        "refused_points": 0, "stages": {
            "engine": {"partitions": [0, 2], "lag": {"0": 5}, "restoring": {}, "handled": 7, "errors": 0},
            "delivery": {"error": "rebalancing"}}})
    assert text.splitlines() == [
        "mode:     kafka", "instance: a", "queue:    kafka", "accepting writes: yes",
        "points pending: 3, refused: 0",
        "stage delivery: error: rebalancing",
        'stage engine: partitions=0,2 lag={"0":5} restoring={} handled=7 errors=0',
    ]


def test_format_status_embedded() -> None:
    text = format_status({"mode": "embedded", "instance": "h", "queue": "embedded", "accepting": True,
                          "tasks": 2, "enabled_tasks": 1, "points_received": 10, "points_processed": 9})
    assert "mode:     embedded" in text and "tasks: 2" in text and "points processed: 9" in text


def test_serve_passes_instance_to_the_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_serve(config: Config, *, dev_kafka: bool = False, instance: str | None = None) -> None:
        seen.update(config=config, instance=instance)

    monkeypatch.setattr("kapacity.server.runner.serve", fake_serve)
    _register()
    r = CliRunner().invoke(cli, ["serve", "--instance", "node-7"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert seen["instance"] == "node-7"
