"""Scale-out test helpers: ``kapacity engine run`` instances as OS processes (so SIGKILL is
real), a queue config for them, a known alert stream, and a read_committed output reader.

>>> cfg = write_engine_config(tmp, bootstrap, prefix)          # doctest: +SKIP
>>> a = EngineProcess(cfg, "a"); a.start(); a.wait_ready()      # doctest: +SKIP
>>> a.kill()                                                    # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from confluent_kafka import Consumer, TopicPartition

from kapacity.models import Point
from tests.support.kafka import unique
from tests.support.waiting import wait_for

#: The consumers' session timeout: the smallest real Kafka accepts. A SIGKILLed static member
#: keeps its partitions until it expires; membership (``group.instance.id``) is static.
SESSION_TIMEOUT_MS: Final = 6000
#: How long an engine process gets to become ready (imports + topic checks + group join) on a
#: loaded 2-core machine.
START_TIMEOUT_S: Final = 45.0

# --- a known alert stream ---------------------------------------------------------------------

#: One alert per host; every level change is an event on the ``cpu`` alert topic.
ALERT_SCRIPT: Final = (
    "stream|from().measurement('cpu').groupBy('host')"
    "|alert().crit(lambda: \"v\" > 10).stateChangesOnly().topic('cpu')"
)


def value(host: int, rnd: int) -> float:
    """CRITICAL in 2 rounds out of 4 (phase shifted per host): a level change every 2 rounds."""
    return 50.0 if (rnd + host) % 4 in (1, 2) else 1.0


def round_points(rnd: int, hosts: int) -> list[Point]:
    return [Point("cpu", {"host": f"h{h:02d}"}, {"v": value(h, rnd)}, (rnd + 1) * 10**9) for h in range(hosts)]


def expected_events(hosts: int, rounds: int) -> dict[str, list[tuple[str, str]]]:
    """Alert ID → [(level, previousLevel)] in order, for rounds ``0 .. rounds-1``."""
    out: dict[str, list[tuple[str, str]]] = {}
    for h in range(hosts):
        level, seq = "OK", []
        for rnd in range(rounds):
            new = "CRITICAL" if value(h, rnd) > 10 else "OK"
            if new != level:
                seq.append((new, level))
                level = new
        out[f"cpu:host=h{h:02d}"] = seq
    return out


# --- config -----------------------------------------------------------------------------------


def write_engine_config(tmp: Path, bootstrap: str, prefix: str, *, partitions: int = 4,
                        queue_type: str = "kafka", out_cluster: str = "out",
                        session_timeout_ms: int = SESSION_TIMEOUT_MS) -> Path:
    """A config for instances sharing one queue (``prefix``), with a Kafka handler cluster
    ``out_cluster`` on the same broker (so its output is written inside the delivery txn).

    ``session_timeout_ms``: raise it for tests that need no takeover of dead members: a
    starved machine (load average ~100 seen) then does not expire live members.
    """
    path = tmp / "kapacity.toml"
    path.write_text(
        f'data_dir = "{tmp / "data"}"\n'
        f'[queue]\ntype = "{queue_type}"\n'
        '[queue.embedded]\nlease = "1s"\ncleaner-interval = "0s"\n'
        f'[queue.kafka.client.properties]\n"bootstrap.servers" = "{bootstrap}"\n'
        f'[queue.kafka.defaults]\ntopic-prefix = "{prefix}_"\nconsumer-prefix = "{prefix}_"\n'
        f'[queue.kafka.defaults.topic]\npartitions = {partitions}\n'
        '[queue.kafka.defaults.consumer.properties]\n'
        f'"session.timeout.ms" = "{session_timeout_ms}"\n"heartbeat.interval.ms" = "1000"\n'
        f'"max.poll.interval.ms" = "{max(10_000, session_timeout_ms)}"\n'
        # A SIGKILLed instance leaves its transaction open; nobody reuses its transactional
        # id, so only the broker's transaction timeout aborts it and unblocks read_committed.
        '[queue.kafka.defaults.producer.properties]\n"transaction.timeout.ms" = "5000"\n'
        f'[[kafka]]\nenabled = true\nid = "{out_cluster}"\nbrokers = ["{bootstrap}"]\n'
    )
    return path


# --- engine processes -------------------------------------------------------------------------


class EngineProcess:
    """``kapacity engine run --config CONFIG --instance NAME`` as a child process.

    Its output goes to ``<config dir>/engine-NAME.log``; it is ready once its status file
    (``<data dir>/runtime-status/NAME.json``) exists.
    """

    def __init__(self, config: Path, instance: str, data_dir: Path | None = None) -> None:
        self.config, self.instance = config, instance
        data = data_dir if data_dir is not None else config.parent / "data"
        self.status_file = data / "runtime-status" / f"{instance}.json"
        self.log = config.parent / f"engine-{instance}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn the process (returns at once; see :meth:`wait_ready`)."""
        self.status_file.unlink(missing_ok=True)  # a killed engine leaves its last one behind
        exe = Path(sys.executable).parent / "kapacity"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(exe), "engine", "run", "--config", str(self.config), "--instance", self.instance],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"engine {self.instance} exited with {self.proc.returncode}: {self.tail()}")
            return self.status_file.exists()

        wait_for(ready, timeout=timeout, what=f"engine {self.instance} to start ({self.log})")

    def status(self) -> dict[str, Any]:
        """The instance's last status file (written every second), ``{}`` if unreadable."""
        try:
            return dict(json.loads(self.status_file.read_text()))
        except (OSError, ValueError):
            return {}

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no drain, no commit, no ``stopped`` record; open transactions stay open."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 40.0) -> int:
        """SIGTERM (a clean stop, sent once) and its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_cleanly(engines: Iterable[EngineProcess], timeout: float = 40.0) -> list[int]:
    """SIGTERM every engine at once (they drain in parallel), then their exit codes."""
    engines = list(engines)
    for e in engines:
        if e.running:
            assert e.proc is not None
            e.proc.send_signal(signal.SIGTERM)
    # wait() only: a second SIGTERM during interpreter shutdown (handlers reset) kills with -15.
    return [e.proc.wait(timeout) for e in engines if e.proc is not None]


def stop_all(engines: Iterable[EngineProcess]) -> None:
    """Teardown: kill whatever still runs (a failed test must not leave processes behind)."""
    for e in engines:
        if e.running:
            e.kill()


# --- the cluster as the membership view shows it ----------------------------------------------


def assignment(instances: Iterable[Mapping[str, Any]], stage: str = "engine",
               states: tuple[str, ...] = ("running",)) -> dict[str, list[int]]:
    """Instance → partitions of ``stage``, from ``Runtime.status()["instances"]`` (instances
    without that stage, or in none of ``states`` — add ``"adopted"`` to count the stages a
    survivor runs for a lost instance — are left out)."""
    out: dict[str, list[int]] = {}
    for member in instances:
        info = (member.get("stages") or {}).get(stage)
        if member.get("state") in states and isinstance(info, Mapping) and "partitions" in info:
            out[str(member["instance"])] = sorted(int(p) for p in info["partitions"])
    return out


def covers(assigned: Mapping[str, list[int]], partitions: int) -> bool:
    """Every partition owned by exactly one instance."""
    owned = [p for ps in assigned.values() for p in ps]
    return sorted(owned) == list(range(partitions))


# --- output -----------------------------------------------------------------------------------


class OutputReader:
    """A read_committed reader of a one-partition handler output topic, from the beginning."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": unique("out"), "enable.auto.commit": False,
            "isolation.level": "read_committed",
        })
        self.consumer.assign([TopicPartition(topic, 0, 0)])
        self.messages: list[dict[str, Any]] = []
        self.event_ids: list[str] = []

    def read(self) -> int:
        for m in self.consumer.consume(1000, 0.2):
            if m.error() is None:
                self.messages.append(json.loads(m.value()))
                self.event_ids.append(dict(m.headers() or []).get("kapacity-event-id", b"").decode())
        return len(self.messages)

    def drain(self, timeout: float = 20.0) -> None:
        """Read up to the end of the topic (call once every writer stopped)."""
        _low, high = self.consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=10)

        def at_end() -> bool:
            self.read()
            return bool(self.consumer.position([TopicPartition(self.topic, 0)])[0].offset >= high)

        wait_for(at_end, timeout=timeout, what=f"the end of {self.topic}")

    def by_id(self) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for m in self.messages:
            out.setdefault(m["id"], []).append((m["level"], m["previousLevel"]))
        return out

    def close(self) -> None:
        self.consumer.close()
