"""Choosing an alert level for one point: Kapacitor's level algorithm, pure.

Given the level a group is at (``current``), the level expressions (``info``, ``warn``,
``crit``) and their optional resets (``infoReset`` …), Kapacitor picks:

1. from CRITICAL down to ``max(current, INFO)``, the first level whose expression is true
   (an escalation, or staying at ``current``);
2. else, if ``current`` has a reset expression and it is false, stay at ``current``;
3. else from ``current`` down to INFO, the first true expression; else OK.

Example (Kapacitor's docs): info>60 reset<50, warn>70 reset<60, crit>80 reset<70 over
61 73 64 85 62 56 47 gives INFO WARNING WARNING CRITICAL INFO INFO OK.

An expression that raises counts as false (Kapacitor logs it and moves on); the error is
handed to ``on_error`` so the caller can log it, rate-limited.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kapacity.gotypes import Level

#: A compiled level expression ``fn(fields, tags, time_ns)``: True when the point is at that level.
Predicate = Callable[[Any, Any, int], Any]
#: Called with (expression name, level, error) when an expression raises.
ErrorSink = Callable[[str, Level, Exception], None]

OK, INFO, WARNING, CRITICAL = 0, 1, 2, 3


def _ignore(_name: str, _level: Level, _err: Exception) -> None:
    return None


class LevelChooser:
    """The level algorithm over up to three level expressions and their resets.

    ``levels`` and ``resets`` are indexed by level (index 0, OK, is unused). The order of
    evaluation for each current level is computed once, so choosing a level is two short
    loops over the expressions that exist.
    """

    __slots__ = ("_levels", "_resets", "_on_error", "_up", "_down")

    def __init__(
        self,
        levels: Sequence[Predicate | None],
        resets: Sequence[Predicate | None] = (None, None, None, None),
        on_error: ErrorSink | None = None,
    ) -> None:
        if len(levels) != 4 or len(resets) != 4:
            raise ValueError("levels and resets must have 4 entries (OK, INFO, WARNING, CRITICAL)")
        self._levels = tuple(levels)
        self._resets = tuple(resets)
        self._on_error = on_error or _ignore
        # Step 1 (escalate or stay): CRITICAL down to max(current, INFO).
        self._up = tuple(
            tuple((lv, e) for lv in range(CRITICAL, max(cur, INFO) - 1, -1) if (e := levels[lv]) is not None)
            for cur in range(4)
        )
        # Step 3 (after a passed reset): current down to INFO.
        self._down = tuple(
            tuple((lv, e) for lv in range(cur, OK, -1) if (e := levels[lv]) is not None)
            for cur in range(4)
        )

    def choose(self, fields: Any, tags: Any, t: int, current: int) -> int:
        """The level (an int, OK=0 … CRITICAL=3) of a point given the ``current`` level."""
        try:
            for lv, expr in self._up[current]:
                if expr(fields, tags, t) is True:
                    return lv
            reset = self._resets[current]
            if reset is not None and reset(fields, tags, t) is not True:
                return current
            for lv, expr in self._down[current]:
                if expr(fields, tags, t) is True:
                    return lv
            return OK
        except Exception:  # noqa: BLE001 - rare: redo with per-expression error handling
            return self.choose_checked(fields, tags, t, current)

    def _first_true(self, exprs: Sequence[tuple[int, Predicate]], fields: Any, tags: Any, t: int) -> int:
        for lv, expr in exprs:
            try:
                if expr(fields, tags, t) is True:
                    return lv
            except Exception as err:  # noqa: BLE001 - any lambda failure counts as false
                self._on_error(_NAMES[lv], Level(lv), err)
        return -1

    def escalations(self, current: int) -> tuple[tuple[int, Predicate], ...]:
        """The (level, expression) pairs step 1 tries from ``current``, highest first."""
        return self._up[current]

    def choose_checked(self, fields: Any, tags: Any, t: int, current: int) -> int:
        """:meth:`choose` where a failing expression counts as false and is reported."""
        found = self._first_true(self._up[current], fields, tags, t)
        if found >= 0:
            return found
        reset = self._resets[current]
        if reset is not None:
            try:
                if reset(fields, tags, t) is not True:
                    return current
            except Exception as err:  # noqa: BLE001 - logged, then treated as "no reset"
                self._on_error(_NAMES[current] + "Reset", Level(current), err)
        found = self._first_true(self._down[current], fields, tags, t)
        return found if found >= 0 else OK


_NAMES = ("ok", "info", "warn", "crit")

# Flapping detection weights, as in Kapacitor (and Nagios): the newest state change
# weighs WEIGHT_DIFF times the oldest, the newest weighing MAX_WEIGHT.
WEIGHT_DIFF = 1.5
MAX_WEIGHT = 1.2


def percent_change(history: Sequence[int], idx: int) -> float:
    """Weighted share of state changes in the ring buffer ``history`` whose newest entry is ``idx``.

    The walk is Kapacitor's, step for step (it starts at the newest entry and wraps), so
    that a script flaps exactly when it flapped under Kapacitor; the result is compared with
    the ``flapping(low, high)`` thresholds.
    """
    n = len(history)
    changes = 0.0
    weight = MAX_WEIGHT / WEIGHT_DIFF
    step = (MAX_WEIGHT - weight) / (n - 1)
    for i in range(n - 1):
        c = (i + idx) % n
        p = c - 1 if c > 0 else n - 1
        if history[c] != history[p]:
            changes += weight
        weight += step
    return changes / (n - 1)
