"""The level algorithm and flapping weights, over plain Python predicates."""

from __future__ import annotations

from typing import Any

import pytest

from kapacity.alert.levels import CRITICAL, INFO, OK, WARNING, LevelChooser, percent_change
from kapacity.gotypes import Level


def gt(x: float) -> Any:
    return lambda f, _t, _n: f["v"] > x


def lt(x: float) -> Any:
    return lambda f, _t, _n: f["v"] < x


def run(chooser: LevelChooser, values: list[float]) -> list[str]:
    level = OK
    out = []
    for v in values:
        level = chooser.choose({"v": v}, {}, 0, level)
        out.append(Level(level).name)
    return out


def test_documented_reset_example() -> None:
    chooser = LevelChooser([None, gt(60), gt(70), gt(80)], [None, lt(50), lt(60), lt(70)])
    assert run(chooser, [61, 73, 64, 85, 62, 56, 47]) == [
        "INFO", "WARNING", "WARNING", "CRITICAL", "INFO", "INFO", "OK",
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([50], ["OK"]),
        ([61, 71, 81], ["INFO", "WARNING", "CRITICAL"]),
        # Without resets, a level drops as soon as its expression is false.
        ([85, 75, 65, 55], ["CRITICAL", "WARNING", "INFO", "OK"]),
        ([85, 10], ["CRITICAL", "OK"]),
    ],
)
def test_levels_without_resets(values: list[float], expected: list[str]) -> None:
    chooser = LevelChooser([None, gt(60), gt(70), gt(80)])
    assert run(chooser, values) == expected


def test_only_crit_defined() -> None:
    chooser = LevelChooser([None, None, None, lt(10)])
    assert run(chooser, [50, 5, 9, 11]) == ["OK", "CRITICAL", "CRITICAL", "OK"]


def test_reset_holds_level_until_true() -> None:
    # crit > 80 with critReset < 50: stays CRITICAL on 60, 55; drops on 40.
    chooser = LevelChooser([None, None, None, gt(80)], [None, None, None, lt(50)])
    assert run(chooser, [90, 60, 55, 40]) == ["CRITICAL", "CRITICAL", "CRITICAL", "OK"]


def test_error_counts_as_false_and_is_reported() -> None:
    seen: list[tuple[str, Level]] = []

    def boom(_f: Any, _t: Any, _n: int) -> bool:
        raise KeyError("missing field")

    chooser = LevelChooser([None, gt(0), None, boom], on_error=lambda n, lv, e: seen.append((n, lv)))
    assert chooser.choose({"v": 5}, {}, 0, OK) == INFO
    assert seen == [("crit", Level.CRITICAL)]


def test_reset_error_does_not_hold_level() -> None:
    def boom(_f: Any, _t: Any, _n: int) -> bool:
        raise ValueError("bad")

    errors: list[str] = []
    chooser = LevelChooser([None, None, gt(70), None], [None, None, boom, None],
                           on_error=lambda n, lv, e: errors.append(n))
    assert chooser.choose({"v": 10}, {}, 0, WARNING) == OK
    assert errors == ["warnReset"]


def test_non_bool_result_is_false() -> None:
    chooser = LevelChooser([None, lambda f, t, n: 1, None, None])
    assert chooser.choose({}, {}, 0, OK) == OK


def test_escalation_checks_higher_levels_first() -> None:
    calls: list[int] = []

    def track(level: int) -> Any:
        def f(_f: Any, _t: Any, _n: int) -> bool:
            calls.append(level)
            return True
        return f

    chooser = LevelChooser([None, track(1), track(2), track(3)])
    assert chooser.choose({}, {}, 0, CRITICAL) == CRITICAL
    assert calls == [3]


def test_percent_change_weights() -> None:
    assert percent_change([0] * 21, 0) == 0.0
    alternating = [i % 2 for i in range(21)]
    p = percent_change(alternating, 20)
    assert 0.8 < p <= 1.2
    # Kapacitor's walk starts at the newest slot (lightest weight 0.8) and then compares the
    # oldest slot with the newest (weight 0.82): one new level counts as two changes.
    one = [0] * 20 + [1]
    assert percent_change(one, 20) == pytest.approx((0.8 + 0.82) / 20)


def test_chooser_validates_shape() -> None:
    with pytest.raises(ValueError):
        LevelChooser([None, None])


@pytest.mark.parametrize("current", [OK, INFO, WARNING, CRITICAL])
@pytest.mark.parametrize("failing", [None, 1, 2, 3])
def test_each_expression_is_evaluated_at_most_once_per_point(current: int, failing: int | None) -> None:
    # Stateful expressions (sigma, count, spread) must see a point once, whichever path the
    # algorithm takes: escalation, a held reset, a passed reset, or a failing expression.
    calls: list[str] = []

    def expr(name: str, result: bool, boom: bool = False) -> Any:
        def f(_f: Any, _t: Any, _n: int) -> bool:
            calls.append(name)
            if boom:
                raise ValueError(name)
            return result
        return f

    levels = [None] + [expr(f"level{lv}", False, boom=lv == failing) for lv in (1, 2, 3)]
    resets = [None] + [expr(f"reset{lv}", True) for lv in (1, 2, 3)]
    errors: list[str] = []
    chooser = LevelChooser(levels, resets, on_error=lambda n, lv, e: errors.append(n))
    assert chooser.choose({}, {}, 0, current) == OK
    assert len(calls) == len(set(calls))
    assert {c for c in calls if c.startswith("level")} == {"level1", "level2", "level3"}
    assert errors == ([] if failing is None else [("info", "warn", "crit")[failing - 1]])
