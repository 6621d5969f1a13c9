"""Takeover: a survivor runs the stages of a killed instance under that instance's name.

A broker that expires dead group members (Kafka) hands a killed instance's partitions to the
survivors by itself. noida-db 0.2.3 never does, nor does it abort the killed producer's open
transaction (see ``docs/queue.md``, "Takeover"). What every broker does: a new client with
the same ``group.instance.id`` replaces the static member and takes its partitions, and
``init_transactions`` with the same transactional id fences the zombie and aborts what it
left open — exactly what a restart of the same instance name does. So a survivor *adopts*
the lost instance: it starts that instance's stages in its own process, under its name, with
a state dir of its own (``<data dir>/adopted/<name>``; state is restored from the changelog).

Who adopts whom is decided by :func:`decide` (pure, ``now`` injected), from the membership
view every instance reads:

* an instance is adoptable once it has been ``lost`` (no record for
  :data:`~.membership.LOST_AFTER_INTERVALS` of its intervals) for longer than the group's
  session timeout — by then the broker would have expired it, were it to;
* only instances that ran stages are adopted, and never one that stopped cleanly;
* the adopter is the smallest name among the fresh, ``running`` instances that run stages:
  every survivor computes the same answer from the same view, so one adopts. Should views
  differ for a moment and two adopt, the second fences the first, which drops its stages;
* an adopted instance is published as ``state: adopted`` with ``adopted_by``; while that
  record is fresh nobody else adopts it. An adopter that dies leaves it stale: it is then
  adopted again (by the next smallest survivor);
* when the instance itself is back (a fresh record of its own), the adopter releases it — and
  the instance's restart fences the adopted stages anyway (they are dropped on that fatal
  error, :class:`~.engine.StageThread`). An incarnation that was released or whose adopted
  stages were fenced is never adopted again: only a later incarnation is.

>>> rec = lambda seen, **kw: {"seen_ms": seen, "interval_ms": 1000, "started_ms": 0,
...                           "state": "running", "stages": {"engine": {}}, **kw}
>>> decide({"a": rec(0), "b": rec(20_000), "c": rec(20_000)}, me="b", now_ms=20_000,
...        session_timeout_ms=6_000)
Decision(adopt=['a'], release=[])
>>> decide({"a": rec(0), "b": rec(20_000), "c": rec(20_000)}, me="c", now_ms=20_000,
...        session_timeout_ms=6_000)
Decision(adopt=[], release=[])
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from kapacity.queue.kinds import Kind
from kapacity.runtime.membership import LOST_AFTER_INTERVALS, Membership, make_record

if TYPE_CHECKING:
    from kapacity.queue.base import Queue
    from kapacity.runtime.engine import StageThread

__all__ = ["DEFAULT_SESSION_TIMEOUT_MS", "Decision", "Takeover", "adopted_dir", "decide", "session_timeout_ms"]

log: Final = logging.getLogger("kapacity.runtime.takeover")

#: librdkafka's default ``session.timeout.ms``, used when the queue's consumer properties do
#: not set one.
DEFAULT_SESSION_TIMEOUT_MS: Final = 45_000
#: How long stopping an adopted instance's stages may take before the adopter moves on
#: (its next incarnation restores from the changelog anyway).
RELEASE_TIMEOUT_S: Final = 10.0


def session_timeout_ms(consumer_properties: Mapping[str, Any]) -> int:
    """The group session timeout the queue's consumers use.

    >>> session_timeout_ms({"session.timeout.ms": "6000"}), session_timeout_ms({})
    (6000, 45000)
    """
    raw = consumer_properties.get("session.timeout.ms")
    try:
        return int(str(raw)) if raw is not None else DEFAULT_SESSION_TIMEOUT_MS
    except ValueError:
        return DEFAULT_SESSION_TIMEOUT_MS


def adopted_dir(data_dir: str | Path, instance: str) -> Path:
    """Where an adopter keeps the state of the instance it adopted (never the instance's own)."""
    return Path(data_dir) / "adopted" / instance


@dataclass(frozen=True)
class Decision:
    adopt: list[str] = field(default_factory=list)
    """Instances this one starts adopting now (by name)."""
    release: list[str] = field(default_factory=list)
    """Adopted instances whose stages this one stops now."""


def _age(rec: Mapping[str, Any], now_ms: int) -> int:
    return max(0, now_ms - int(rec["seen_ms"]))


def _lost_for(rec: Mapping[str, Any], now_ms: int) -> int:
    """How long ``rec``'s instance has been ``lost`` (negative: not yet)."""
    return _age(rec, now_ms) - LOST_AFTER_INTERVALS * max(1, int(rec["interval_ms"]))


def decide(
    records: Mapping[str, Mapping[str, Any]],
    *,
    me: str,
    now_ms: int,
    session_timeout_ms: int,
    adopted: Mapping[str, int] | None = None,
    refused: Mapping[str, int] | None = None,
) -> Decision:
    """What ``me`` adopts and releases now, from the latest record per instance.

    ``records`` must hold ``me``'s own fresh record; ``adopted``: what ``me`` runs now
    (name → the adopted incarnation's ``started_ms``); ``refused``: incarnations never to
    adopt again (released, or fenced by their owner), same form.
    """
    adopted, refused = adopted or {}, refused or {}
    release = []
    for name in sorted(adopted):
        rec = records.get(name)
        if rec is None:
            continue
        by = rec.get("adopted_by")
        if by is None and _lost_for(rec, now_ms) <= 0:
            release.append(name)  # the instance itself is back (our records replace its stale one)
        elif by is not None and by != me and str(by) < me and _lost_for(rec, now_ms) <= 0:
            release.append(name)  # adopted by a smaller survivor too: it keeps it
    survivors = sorted(
        name for name, rec in records.items()
        if rec.get("adopted_by") is None and rec.get("state") == "running"
        and _lost_for(rec, now_ms) <= 0 and rec.get("stages")
    )
    if not survivors or survivors[0] != me:
        return Decision([], release)
    adopt = []
    for name, rec in sorted(records.items()):
        if name == me or name in adopted or not rec.get("stages") or rec.get("state") == "stopped":
            continue
        if refused.get(name) == rec.get("started_ms"):
            continue
        if _lost_for(rec, now_ms) > session_timeout_ms:
            adopt.append(name)
    return Decision(adopt, release)


@dataclass
class _Adoption:
    started_ms: int
    threads: list[StageThread]
    since_ms: int


StartStages = Callable[[str, Path], "list[StageThread]"]
"""Starts the stages of instance ``name`` with state under the given dir (adopted: no rebuild)."""
StagesStatus = Callable[["list[StageThread]"], dict[str, Any]]


class Takeover:
    """The adopting side, one daemon thread: every membership interval, :func:`decide`, then
    start or stop adopted stages and publish each adopted instance's ``adopted`` record."""

    def __init__(
        self,
        queue: Queue,
        membership: Membership,
        data_dir: str | Path,
        *,
        session_timeout_ms: int,
        start_stages: StartStages,
        stages_status: StagesStatus,
    ) -> None:
        self.queue, self.membership, self.data_dir = queue, membership, Path(data_dir)
        self.session_timeout_ms = session_timeout_ms
        self._start_stages, self._stages_status = start_stages, stages_status
        self.adoptions: dict[str, _Adoption] = {}
        self.refused: dict[str, int] = {}
        self.adopted_total = 0
        self.released_total = 0
        self.dropped_total = 0
        """Adoptions ended because every adopted stage was fenced (by the instance's return)."""
        self.errors = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kapacity-takeover", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = self.membership.interval_ms / 1000
        while not self._stop.wait(interval):
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - takeover must not stop the instance
                self.errors += 1
                log.warning("takeover: %s (retrying in %.1fs)", exc, interval)

    def step(self) -> Decision:
        """One round: drop fenced adoptions, decide, release, adopt, publish."""
        m = self.membership
        now = m.clock_ms()
        for name, ad in list(self.adoptions.items()):
            if all(t.dropped or not t.alive for t in ad.threads):
                log.warning("takeover: the adopted stages of %s were fenced (it is back): dropped", name)
                self._end(name, ad, timeout=1.0)
                self.dropped_total += 1
        records = m.snapshot()
        records[m.instance] = m.record()
        decision = decide(records, me=m.instance, now_ms=now, session_timeout_ms=self.session_timeout_ms,
                          adopted={n: a.started_ms for n, a in self.adoptions.items()}, refused=self.refused)
        for name in decision.release:
            log.warning("takeover: %s is back: stopping its adopted stages", name)
            held = self.adoptions.get(name)
            if held is not None:
                self._end(name, held, timeout=RELEASE_TIMEOUT_S)
                self.released_total += 1
        for name in decision.adopt:
            if self._stop.is_set():
                break
            rec = records[name]
            log.warning("takeover: %s lost for over the session timeout (%d ms): adopting it",
                        name, self.session_timeout_ms)
            threads = self._start_stages(name, adopted_dir(self.data_dir, m.instance) / name)
            with self._lock:
                self.adoptions[name] = _Adoption(int(rec.get("started_ms", 0)), threads, now)
            self.adopted_total += 1
        self.publish()
        return decision

    def _end(self, name: str, ad: _Adoption, timeout: float) -> None:
        for t in ad.threads:
            t.stop(timeout, drain=False)
        with self._lock:
            self.adoptions.pop(name, None)
        self.refused[name] = ad.started_ms

    def publish(self) -> None:
        """Each adopted instance's record: ``state: adopted``, ``adopted_by`` this instance."""
        m = self.membership
        for name, ad in list(self.adoptions.items()):
            local = {"instance": name, "queue": "kafka", "accepting": False,
                     "stages": self._stages_status(ad.threads)}
            rec = make_record(local, host=m.host, pid=m.pid, started_ms=ad.started_ms, now_ms=m.clock_ms(),
                              interval_ms=m.interval_ms, state="adopted")
            rec.update(adopted_by=m.instance, adopted_ms=ad.since_ms)
            self.queue.emit(Kind.INSTANCES, name, rec)

    def status(self) -> dict[str, Any]:
        with self._lock:
            names = sorted(self.adoptions)
        return {"adopted": names, "adopted_total": self.adopted_total, "released_total": self.released_total,
                "dropped_total": self.dropped_total, "errors": self.errors}

    def stop(self, timeout: float) -> None:
        """Stop deciding, then the adopted stages (their records go stale: another survivor
        adopts them once they are lost for the session timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for name, ad in list(self.adoptions.items()):
            for t in ad.threads:
                t.stop(max(0.1, timeout), drain=False)
            with self._lock:
                self.adoptions.pop(name, None)
