"""The alert node at run time: levels, per-group state, rendered events.

For each row the node picks a level (:class:`~kapacity.alert.levels.LevelChooser`), updates
the group's :class:`~kapacity.alert.state.GroupState` and, when that says so, renders the
event (id, message, details) and hands an :class:`~kapacity.alert.config.AlertEvent` to the
task's sink. Rendering happens only for emitted events: a point of a healthy system costs
its level lambdas and a dict lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kapacity.alert.config import AlertConfig, AlertEvent, Inhibitor, InhibitorRegistry
from kapacity.alert.event import AlertData, Result
from kapacity.alert.levels import OK, LevelChooser, Predicate
from kapacity.alert.state import AlertNodeState, GroupState
from kapacity.alert.templates import GoStruct, depends_on_tags, id_data, server_info
from kapacity.gotypes import Duration, Level, Time
from kapacity.pipeline.base import Node
from kapacity.pipeline.lambdas import GroupedLambda, as_grouped
from kapacity.pipeline.nodes import batch_series, row_series
from kapacity.pipeline.row import Batch, Row, group_label


def _ignore(_event: AlertEvent) -> None:
    return None


class AlertNode(Node):
    """The runtime of ``|alert()`` (and of ``|deadman()``'s alert)."""

    kind = "alert"

    def __init__(
        self,
        name: str,
        task_name: str,
        levels: Sequence[Predicate | GroupedLambda | None],
        resets: Sequence[Predicate | GroupedLambda | None],
        config: AlertConfig,
        *,
        sink: Callable[[AlertEvent], None] = _ignore,
        inhibitors: InhibitorRegistry | None = None,
        info: GoStruct | None = None,
    ) -> None:
        super().__init__(name)
        self.task_name = task_name
        self._level_lams = tuple(None if x is None else as_grouped(x) for x in levels)
        self._reset_lams = tuple(None if x is None else as_grouped(x) for x in resets)
        #: Stateful level expressions (sigma, count, spread) keep their state per group:
        #: each group then gets its own chooser, built when the group is first seen.
        self.stateful = any(x is not None and x.stateful for x in self._level_lams + self._reset_lams)
        self.chooser = LevelChooser(
            [None if x is None else x.fn for x in self._level_lams],
            [None if x is None else x.fn for x in self._reset_lams],
            self._lambda_error,
        )
        self._choosers: dict[str, LevelChooser] = {}
        self.config = config
        self.policy = config.policy
        self.sink = sink
        self.inhibitors = inhibitors or InhibitorRegistry()
        self.server_info = info or server_info()
        self.state = AlertNodeState()
        self._groups = self.state.groups
        #: Dicts owned by fused chains (:meth:`shortcut`), emptied when the groups are replaced.
        self._shortcuts: list[dict[Any, GroupState]] = []
        self._choose = self.chooser.choose
        self._up_from_ok = self.chooser.escalations(OK)
        #: Without flapping, an OK point of a group at OK changes nothing (the ring's older
        #: slots only matter to flapping detection), so it costs no state update.
        self._ok_fast = not config.policy.flapping
        self._group_inhibitors: dict[str, list[Inhibitor]] = {}
        self._id_cache: dict[tuple[str, str], str] | None = (
            None if depends_on_tags(config.id_text) else {}
        )
        self._augment = bool(
            config.level_tag or config.level_field or config.message_field
            or config.id_tag or config.id_field or config.duration_field
        )
        self.counts = {"alerts_triggered": 0, "alerts_inhibited": 0, "oks_triggered": 0,
                       "infos_triggered": 0, "warns_triggered": 0, "crits_triggered": 0}

    def _lambda_error(self, expr: str, _level: Level, err: Exception) -> None:
        self.error(f"error evaluating {expr} expression", err)

    def chooser_for(self, group: str) -> LevelChooser:
        """The level chooser of ``group`` (one shared by all groups unless stateful)."""
        if not self.stateful:
            return self.chooser
        chooser = self._choosers.get(group)
        if chooser is None:
            chooser = self._choosers[group] = LevelChooser(
                [None if x is None else x.new_state() for x in self._level_lams],
                [None if x is None else x.new_state() for x in self._reset_lams],
                self._lambda_error,
            )
        return chooser

    # --- state persistence -------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return self.state.to_dict()

    def restore(self, data: dict[str, Any]) -> None:
        self.state = AlertNodeState.from_dict(data)
        self._groups = self.state.groups
        for shortcut in self._shortcuts:
            shortcut.clear()

    def shortcut(self) -> dict[Any, GroupState]:
        """An empty dict for a caller to map its own key of a group straight to the group's
        state (the fused chain: one dict lookup per point instead of two).

        The node empties it whenever its groups are replaced (:meth:`restore`); the states
        themselves are only ever mutated in place, so an entry stays valid until then.
        """
        out: dict[Any, GroupState] = {}
        self._shortcuts.append(out)
        return out

    def seed_events(self, events: dict[str, tuple[Level | int, int]]) -> None:
        """Seed event ID → (level, time ns) restored from a persisted alert topic."""
        self.state.seed({k: (int(lv), t) for k, (lv, t) in events.items()})

    # --- rendering ---------------------------------------------------------------------

    def render_id(self, name: str, group: str, tags: dict[str, str]) -> str:
        cache = self._id_cache
        if cache is not None:
            hit = cache.get((name, group))
            if hit is not None:
                return hit
        text = self.config.id_tmpl(id_data(name, self.task_name, group_label(group), tags, self.server_info))
        if cache is not None:
            if len(cache) > 100_000:
                cache.clear()  # bounded: an unbounded number of groups must not grow memory
            cache[(name, group)] = text
        return text

    def _new_group(self, name: str, group: str, tags: dict[str, str], t: int) -> GroupState:
        gs = GroupState.new(self.policy.history)
        restored = self.state.restored
        if restored:
            hit = restored.pop(self.render_id(name, group, tags), None)
            if hit is not None:
                gs.restore(t, hit[0], hit[1], self.policy)
        self.state.groups[group] = gs
        if self.config.inhibits:
            items = []
            for category, equal_tags in self.config.inhibits:
                inh = Inhibitor(category, {k: tags.get(k, "") for k in equal_tags})
                self.inhibitors.add(inh)
                items.append(inh)
            self._group_inhibitors[group] = items
        return gs

    # --- processing --------------------------------------------------------------------

    def point(self, row: Row) -> None:
        self.points_in += 1
        group = row.group
        gs = self._groups.get(group)
        if gs is None:
            gs = self._new_group(row.name, group, row.tags, row.time)
        current = gs.level
        if current == 0 and not self.stateful:
            # The healthy case, inlined: from OK only escalations are possible (no reset).
            level = 0
            fields, tags, t = row.fields, row.tags, row.time
            for lv, expr in self._up_from_ok:
                try:
                    if expr(fields, tags, t) is True:
                        level = lv
                        break
                except Exception as err:  # noqa: BLE001 - counts as false, as in choose()
                    self._lambda_error(_LEVEL_NAMES[lv], Level(lv), err)
            if level == 0 and self._ok_fast:
                return
        else:
            choose = self._choose if not self.stateful else self.chooser_for(group).choose
            level = choose(row.fields, row.tags, row.time, current)
            if level == 0 and current == 0 and self._ok_fast:
                return
        self.observe(row, level, gs)

    def observe(self, row: Row, level: int, gs: GroupState) -> None:
        """Apply the ``level`` chosen for ``row`` to its group ``gs``; emit when due.

        The fused fast path (:mod:`kapacity.pipeline.fused`) chooses the level itself and
        calls this for every point that is not OK-after-OK.
        """
        emit = gs.observe(row.time, level, self.policy)
        if self._group_inhibitors:
            self._set_inhibitors(row.group, gs)
        if not emit:
            return
        event = self._event(row.name, row.group, row.tags, row.fields, level, row.time, gs,
                            Result([row_series(row)]))
        if event is not None and self.children:
            self.points_out += 1
            self.emit_point(self._augmented(row, event) if self._augment else row)

    def batch(self, b: Batch) -> None:
        self.points_in += len(b.rows)
        if not b.rows:
            return
        gs = self._groups.get(b.group)
        if gs is None:
            gs = self._new_group(b.name, b.group, b.tags, b.time)
        current = gs.level
        lowest, highest, top = 3, OK, b.rows[0]
        choose = self.chooser_for(b.group).choose
        for i, row in enumerate(b.rows):
            lv = choose(row.fields, row.tags, row.time, current)
            lowest = min(lowest, lv)
            if lv > highest or i == 0:
                highest, top = lv, row
        level = lowest if self.config.all_flag else highest
        t = b.time if (self.config.all_flag or level == OK) else top.time
        emit = gs.observe_batch(t, level, self.policy)
        if self._group_inhibitors:
            self._set_inhibitors(b.group, gs)
        if not emit:
            return
        event = self._event(b.name, b.group, b.tags, top.fields, level, t, gs, Result([batch_series(b)]))
        if event is not None and self.children:
            self.points_out += len(b.rows)
            if self._augment:
                rows = [self._augmented(r, event) for r in b.rows]
                tags = dict(b.tags)
                self._augment_tags(tags, event)
                b = Batch(b.name, tags, b.time, b.group, b.dims, b.by_name, rows)
            self.emit_batch(b)

    def _set_inhibitors(self, group: str, gs: GroupState) -> None:
        """Inhibit while the group is not OK; updated with every event, even a recovery that
        ``noRecoveries`` drops (as Kapacitor's ``triggered``), but not while flapping."""
        if self.policy.flapping and gs.flapping:
            return
        items = self._group_inhibitors.get(group)
        if items:
            for inh in items:
                inh.inhibited = gs.level != OK

    def _event(
        self, name: str, group: str, tags: dict[str, str], fields: dict[str, Any],
        level: int, t: int, gs: GroupState, result: Result,
    ) -> AlertEvent | None:
        cfg = self.config
        if self.inhibitors.is_inhibited(cfg.category, tags):
            self.counts["alerts_inhibited"] += 1
            return None
        event_id = self.render_id(name, group, tags)
        lvl = _LEVELS[level]
        duration = Duration(gs.duration)
        when = Time(t)
        # Kapacitor's messageInfo (idInfo's fields, then its own), in declaration order.
        info = GoStruct(Name=name, TaskName=self.task_name, Group=group or "nil", Tags=tags,
                        ServerInfo=self.server_info, ID=event_id, Fields=fields, Level=lvl.name,
                        Time=when, Duration=duration)
        try:
            message = cfg.message_tmpl(info)
            info["Message"] = message  # detailsInfo: messageInfo and the message
            details = cfg.details_tmpl(info)
        except Exception as err:  # noqa: BLE001 - a template failing at run time drops the event
            self.error("failed to render alert message or details", err)
            return None
        last = self.state.last_levels
        before = last.get(event_id, OK)
        previous = _LEVELS[before] if type(before) is int and 0 <= before <= 3 else Level(before)
        last[event_id] = level
        data = AlertData(
            id=event_id, message=message, details=details, time=when, duration=duration,
            level=lvl, data=result, previous_level=previous,
            recoverable=not self.policy.no_recoveries,
        )
        counts = self.counts
        counts["alerts_triggered"] += 1
        counts[_COUNT_KEYS[level]] += 1
        event = AlertEvent(
            data=data, task=self.task_name, node=self.name, topic=cfg.topic,
            handlers=cfg.handlers, name=name, group=group, tags=tags, fields=fields,
            category=cfg.category, changed=gs.changed,
        )
        self.sink(event)
        return event

    def _augment_tags(self, tags: dict[str, str], event: AlertEvent) -> None:
        if self.config.level_tag:
            tags[self.config.level_tag] = event.data.level.name
        if self.config.id_tag:
            tags[self.config.id_tag] = event.data.id

    def _augmented(self, row: Row, event: AlertEvent) -> Row:
        cfg = self.config
        out = row.copy()
        self._augment_tags(out.tags, event)
        if cfg.level_field:
            out.fields[cfg.level_field] = event.data.level.name
        if cfg.message_field:
            out.fields[cfg.message_field] = event.data.message
        if cfg.id_field:
            out.fields[cfg.id_field] = event.data.id
        if cfg.duration_field:
            out.fields[cfg.duration_field] = event.data.duration.ns
        return out

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(self.counts)
        out["groups"] = len(self.state.groups)
        return out


_LEVEL_NAMES = ("ok", "info", "warn", "crit")
_LEVELS = tuple(Level(i) for i in range(4))
_COUNT_KEYS = ("oks_triggered", "infos_triggered", "warns_triggered", "crits_triggered")

