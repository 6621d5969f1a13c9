"""Scale-out faults (issue 6) with ``kapacity engine run`` instances as OS processes on noida-db.

1. Two instances process a stream; one is killed with SIGKILL mid-stream: the survivor takes
   over its partitions once the session times out, and the handler's output topic (read
   read_committed) has every expected event exactly once, in order per alert ID.
   On noida-db 0.2.3 the membership part holds (the killed instance is shown ``lost``, the
   survivor keeps running) but the takeover cannot happen: the broker never removes the dead
   member nor aborts its open transaction. The test then ends as ``xfail`` with that reason
   (see :data:`NOIDA_KEEPS_DEAD_MEMBERS`); on a broker that expires members it must pass.
2. A third instance joins mid-stream: partitions move to it, no loss, no duplicate.

The cluster is observed the way an operator sees it: through the membership view
(``Runtime.status()["instances"]``) of an ingest-only instance, the feeder.
noida-db: its read_committed hides aborted records (Tansu's does not: see test-brokers.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kapacity.config import load_config
from kapacity.runtime import Runtime
from tests.support.engines import (
    ALERT_SCRIPT,
    SESSION_TIMEOUT_MS,
    EngineProcess,
    OutputReader,
    assignment,
    covers,
    expected_events,
    round_points,
    stop_all,
    stop_cleanly,
    write_engine_config,
)
from tests.support.kafka import Broker, create_topic, unique
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

PARTITIONS = 4
HOSTS = 40
ROUNDS = 30
#: Pause between rounds while feeding: keeps the stream going while the fault happens.
ROUND_PAUSE_S = 0.15
#: After the session expires: the rebalance, the survivor's state restore and one membership
#: interval (2 s) until its status shows the new assignment. Generous: 2 shared cores.
TAKEOVER_SLACK_S = 12.0


@dataclass
class Cluster:
    tmp: Path
    config: Path
    feeder: Runtime
    output: OutputReader
    engines: list[EngineProcess]

    def engine(self, name: str) -> EngineProcess:
        e = EngineProcess(self.config, name)
        self.engines.append(e)
        return e

    def members(self) -> list[dict[str, Any]]:
        return list(self.feeder.status()["instances"])

    def assigned(self, stage: str = "engine") -> dict[str, list[int]]:
        return assignment(self.members(), stage)

    def feed(self, rounds: range) -> None:
        pause = threading.Event()
        for rnd in rounds:
            self.feeder.submit_points(round_points(rnd, HOSTS))
            pause.wait(ROUND_PAUSE_S)

    def wait_spread(self, names: set[str], timeout: float = 40.0) -> dict[str, list[int]]:
        """Until each of ``names`` owns engine partitions and together they own all of them."""
        def spread() -> dict[str, list[int]] | None:
            got = self.assigned()
            ok = set(got) == names and all(got.values()) and covers(got, PARTITIONS)
            return got if ok else None

        return wait_for(spread, timeout=timeout, what=f"engine partitions spread over {sorted(names)}: "
                        f"{self.assigned()}")

    def wait_output(self, total: int, timeout: float = 40.0) -> None:
        wait_for(lambda: self.output.read() >= total, timeout=timeout,
                 what=f"{total} output events (have {len(self.output.messages)}); logs: "
                 + " | ".join(e.tail(5) for e in self.engines))

    def check_exactly_once(self) -> None:
        expected = expected_events(HOSTS, ROUNDS)
        total = sum(len(v) for v in expected.values())
        self.output.drain()
        assert len(self.output.messages) == total, f"{len(self.output.messages)} events, expected {total}"
        assert self.output.by_id() == expected  # every event once, in order per alert ID
        assert len(set(self.output.event_ids)) == total


@pytest.fixture
def cluster(tmp_path: Path, noida: Broker, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Feeder + output reader; ``request.param`` (indirect): the consumers' session timeout."""
    session_timeout_ms = getattr(request, "param", SESSION_TIMEOUT_MS)
    prefix = unique("scale").replace("-", "_")
    out_topic = f"{prefix}_out"
    create_topic(noida.bootstrap, out_topic, 1)
    config_path = write_engine_config(tmp_path, noida.bootstrap, prefix, partitions=PARTITIONS,
                                      session_timeout_ms=session_timeout_ms)
    feeder = Runtime(load_config(config_path), instance="feeder", run_stages=False)
    feeder.start()
    feeder.define_task("cpu_alert", ALERT_SCRIPT)
    feeder.put_handler({"id": "out", "topic": "cpu", "kind": "kafka", "options": {"cluster": "out", "topic": out_topic}})
    c = Cluster(tmp_path, config_path, feeder, OutputReader(noida.bootstrap, out_topic), [])
    try:
        yield c
    finally:
        stop_all(c.engines)
        c.output.close()
        feeder.stop(10)


def _total() -> int:
    return sum(len(v) for v in expected_events(HOSTS, ROUNDS).values())


#: What noida-db 0.2.3 (and Tansu) do with a SIGKILLed group member, seen with bare consumers
#: (session.timeout.ms 6000): noida never removes it, static or dynamic (its partitions stay
#: assigned; a later join stalls the group until the dead member comes back); Tansu rebalances
#: after the session timeout but hands a dead *static* member its partitions again. Neither
#: aborts the killed producer's open transaction after transaction.timeout.ms, so
#: read_committed readers stop at it. Real Kafka does both.
NOIDA_KEEPS_DEAD_MEMBERS = (
    "noida-db never removes a SIGKILLed group member (static or dynamic) nor aborts its open "
    "transaction: its partitions are never reassigned (see NOIDA_KEEPS_DEAD_MEMBERS)"
)
#: A killed instance is ``lost`` after 3 missed intervals of 2 s; + one interval + slack.
LOST_WITHIN_S = 12.0


def _states(cluster: Cluster) -> dict[str, str]:
    return {m["instance"]: m["state"] for m in cluster.members()}


def test_kill_9_of_one_of_two_instances_the_other_takes_over_exactly_once(
    cluster: Cluster, noida: Broker
) -> None:
    a, b = cluster.engine("a"), cluster.engine("b")
    a.start()
    b.start()
    a.wait_ready()
    b.wait_ready()
    before = cluster.wait_spread({"a", "b"})
    cluster.feed(range(ROUNDS // 2))
    wait_for(lambda: cluster.output.read() > 0, timeout=30, what="the first committed events")

    a.kill()
    killed_at = time.monotonic()
    rest = threading.Thread(target=cluster.feed, args=(range(ROUNDS // 2, ROUNDS),))
    rest.start()
    wait_for(lambda: _states(cluster).get("a") == "lost", timeout=LOST_WITHIN_S, what="a shown lost")
    lost_s = time.monotonic() - killed_at
    assert _states(cluster)["b"] == "running" and before["a"] and before["b"]

    def b_owns_everything() -> bool:
        every = list(range(PARTITIONS))
        return cluster.assigned() == {"b": every} and cluster.assigned("delivery") == {"b": every}

    try:
        wait_for(b_owns_everything, timeout=SESSION_TIMEOUT_MS / 1000 + TAKEOVER_SLACK_S, what="b to take over")
    except AssertionError:
        rest.join(30)
        if noida.kind == "noida":
            pytest.xfail(f"{NOIDA_KEEPS_DEAD_MEMBERS}; a shown lost after {lost_s:.1f}s, "
                         f"assignment {cluster.assigned()} {SESSION_TIMEOUT_MS / 1000 + TAKEOVER_SLACK_S:g}s after")
        raise AssertionError(f"b did not take a's partitions: {cluster.members()}") from None
    takeover_s = time.monotonic() - killed_at
    rest.join(30)
    cluster.wait_output(_total())
    assert b.stop() == 0

    assert lost_s <= LOST_WITHIN_S
    # The broker keeps a killed static member's partitions until its session expires.
    assert SESSION_TIMEOUT_MS / 1000 - 1.0 <= takeover_s <= SESSION_TIMEOUT_MS / 1000 + TAKEOVER_SLACK_S
    cluster.check_exactly_once()


#: Joining needs no session expiry: a longer session keeps live members in the group when
#: the machine is starved (sessions were seen expiring at load average ~90, then noida fenced
#: the rejoining static member for good: "Static consumer fenced by other consumer").
JOIN_SESSION_TIMEOUT_MS = 15_000


@pytest.mark.parametrize("cluster", [JOIN_SESSION_TIMEOUT_MS], indirect=True, ids=["session15s"])
def test_a_third_instance_joining_mid_stream_takes_partitions_without_loss_or_duplicate(cluster: Cluster) -> None:
    a, b = cluster.engine("a"), cluster.engine("b")
    a.start()
    b.start()
    a.wait_ready()
    b.wait_ready()
    before = cluster.wait_spread({"a", "b"})
    third = ROUNDS // 3
    cluster.feed(range(third))  # before the join
    wait_for(lambda: cluster.output.read() > 0, timeout=30, what="the first committed events")

    c = cluster.engine("c")
    c.start()
    during = threading.Thread(target=cluster.feed, args=(range(third, 2 * third),))  # while c joins
    during.start()
    c.wait_ready()
    after = cluster.wait_spread({"a", "b", "c"})
    during.join(60)
    cluster.feed(range(2 * third, ROUNDS))  # after the partitions moved
    cluster.wait_output(_total())
    c_points = wait_for(lambda: c.status().get("stages", {}).get("engine", {}).get("points"), timeout=5,
                        what="c's engine to report the points it processed")
    assert stop_cleanly([a, b, c]) == [0, 0, 0]

    assert after != before and after["c"]  # partitions moved to the new instance
    assert c_points > 0
    cluster.check_exactly_once()
