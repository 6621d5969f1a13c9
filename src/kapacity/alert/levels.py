"""Choosing an alert level for one point: Kapacitor's level algorithm, pure.

Given the level a group is at (``current``), the level expressions (``info``, ``warn``,
``crit``) and their optional resets (``infoReset`` …), Kapacitor picks:

1. from CRITICAL down to ``max(current, INFO)``, the first level whose expression is true
   (an escalation, or staying at ``current``);
2. else, if ``current`` has a reset expression and it is false, stay at ``current``;
3. else from ``current`` down to INFO, the first true expression; else OK (``current``
   itself was found false in step 1, so step 3 starts below it: every expression is
   evaluated at most once per point).

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
        # Step 3 (after a passed reset): below current down to INFO. Kapacitor starts at
        # current itself, whose expression step 1 has just found false: evaluating it again
        # would feed a stateful expression the same point twice, for the same answer.
        self._down = tuple(
            tuple((lv, e) for lv in range(cur - 1, OK, -1) if (e := levels[lv]) is not None)
            for cur in range(4)
        )

    def choose(self, fields: Any, tags: Any, t: int, current: int) -> int:
        """The level (an int, OK=0 … CRITICAL=3) of a point given the ``current`` level.

        Each expression is evaluated at most once per point, so a stateful one (``sigma``,
        ``count``, ``spread``) sees every point exactly once, even when another expression
        raises. (A ``try`` costs nothing until something raises, on Python ≥ 3.11.)
        """
        on_error = self._on_error
        for lv, expr in self._up[current]:
            try:
                if expr(fields, tags, t) is True:
                    return lv
            except Exception as err:  # noqa: BLE001 - a failing expression counts as false
                on_error(_NAMES[lv], Level(lv), err)
        reset = self._resets[current]
        if reset is not None:
            try:
                if reset(fields, tags, t) is not True:
                    return current
            except Exception as err:  # noqa: BLE001 - logged, then treated as "no reset"
                on_error(_NAMES[current] + "Reset", Level(current), err)
        for lv, expr in self._down[current]:
            try:
                if expr(fields, tags, t) is True:
                    return lv
            except Exception as err:  # noqa: BLE001
                on_error(_NAMES[lv], Level(lv), err)
        return OK

    def escalations(self, current: int) -> tuple[tuple[int, Predicate], ...]:
        """The (level, expression) pairs step 1 tries from ``current``, highest first."""
        return self._up[current]


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
