"""Membership through a real queue (embedded SQLite): publish, see each other, stop, lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kapacity.config import load_config
from kapacity.config.model import Config
from kapacity.queue.factory import open_queue
from kapacity.runtime import Runtime
from kapacity.runtime.membership import Membership
from tests.support.waiting import wait_for

INTERVAL_S = 0.1


def _config(tmp: Path) -> Config:
    path = tmp / "kapacity.toml"
    path.write_text(
        f'data_dir = "{tmp / "data"}"\n[queue]\ntype = "embedded"\n'
        '[queue.embedded]\nlease = "1s"\ncleaner-interval = "0s"\n'
    )
    return load_config(path)


def _states(rt: Runtime) -> dict[str, str]:
    return {i["instance"]: i["state"] for i in rt.status()["instances"]}


def _by_name(rt: Runtime, name: str) -> dict[str, Any]:
    return next(i for i in rt.status()["instances"] if i["instance"] == name)


def test_instances_see_each_other_and_a_clean_stop(tmp_path: Path) -> None:
    config = _config(tmp_path)
    worker = Runtime(config, instance="worker", membership_interval_s=INTERVAL_S)
    front = Runtime(config, instance="front", run_stages=False, membership_interval_s=INTERVAL_S)
    worker.start()
    front.start()
    try:
        wait_for(lambda: _states(front) == {"front": "running", "worker": "running"}, timeout=10,
                 what="both instances running in front's view")
        seen = _by_name(front, "worker")
        assert seen["stages"]["engine"]["partitions"] == [0] and seen["stages"]["delivery"]["partitions"] == [0]
        assert seen["queue"] == "embedded" and seen["accepting"] is True and seen["pid"] > 0
        assert _by_name(front, "front")["stages"] == {}  # an ingest-only instance is a member too
        own = worker.status()
        assert own["instance"] == "worker" and "stages" in own  # the existing keys stay
        assert own["stages"]["engine"]["partitions"] == [0]
        assert worker.stop(10)
        wait_for(lambda: _states(front).get("worker") == "stopped", timeout=10, what="worker shown stopped")
    finally:
        front.stop(10)
    assert worker.status()["instances"] == []  # a stopped runtime has no view


def test_an_instance_that_stops_publishing_is_shown_lost(tmp_path: Path) -> None:
    config = _config(tmp_path)
    front = Runtime(config, instance="front", run_stages=False, membership_interval_s=INTERVAL_S)
    front.start()
    queue = open_queue(config, instance_id="ghost")
    ghost = Membership(queue, "ghost", lambda: {"instance": "ghost", "stages": {}}, interval_s=INTERVAL_S)
    try:
        ghost.start()
        wait_for(lambda: _states(front).get("ghost") == "running", timeout=10, what="ghost running")
        ghost.stop()  # a crash: no stopped record
        lost = wait_for(lambda: _states(front).get("ghost") == "lost", timeout=10, what="ghost shown lost")
        assert lost and _by_name(front, "ghost")["last_seen_ago_s"] >= round(3 * INTERVAL_S, 1)
    finally:
        queue.close()
        front.stop(10)
