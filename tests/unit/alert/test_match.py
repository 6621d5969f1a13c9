"""Topic-handler match expressions over events."""

from __future__ import annotations

import threading

import pytest

from kapacity.alert.event import AlertData, Result, Series
from kapacity.alert.match import MatchContext, MatchError, compile_match
from kapacity.gotypes import Duration, Level, Time
from kapacity.tick import LambdaError

MINUTE = 60 * 1_000_000_000

EVENT = MatchContext(
    level=Level.WARNING,
    previous_level=Level.OK,
    name="cpu",
    task_name="cpu_alert",
    duration=6 * MINUTE,
    fields={"usage_idle": 5.0},
    tags={"host": "serverA"},
    time=1_700_000_000_000_000_000,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("   ", True),
        ("changed() == TRUE AND level() >= WARNING", True),
        ("changed() == FALSE", False),
        ("level() == WARNING", True),
        ("level() > WARNING", False),
        ("level() >= OK AND level() < CRITICAL AND level() != INFO", True),
        ("level() == 2", True),
        ('"host" == \'serverA\'', True),
        ('"host" == \'serverB\'', False),
        ('"host" =~ /^server/', True),
        ('"usage_idle" < 10.0', True),
        ("name() == 'cpu'", True),
        ("taskName() == 'cpu_alert'", True),
        ("alertDuration() > 5m", True),
        ("alertDuration() > 10m", False),
        ("duration() >= 6m", True),
        ("duration('1m') < alertDuration()", True),
        ("!changed() OR level() == CRITICAL", False),
    ],
)
def test_match_expressions(text: str, expected: bool) -> None:
    assert compile_match(text)(EVENT) is expected


def test_changed_compares_with_the_previous_level() -> None:
    m = compile_match("changed()")
    assert m(MatchContext(level=Level.CRITICAL, previous_level=Level.CRITICAL)) is False
    assert m(MatchContext(level=Level.OK, previous_level=Level.CRITICAL)) is True


@pytest.mark.parametrize(
    ("text", "col", "fragment"),
    [
        ("level() ==", 11, "unexpected end"),
        ("level() >= WARNNG", 12, "undefined identifier WARNNG"),
        ("levle() > 1", 1, 'undefined function "levle"'),
        ("'a' + 1 == 2", 5, "got string + int"),
    ],
)
def test_compile_errors_name_the_column(text: str, col: int, fragment: str) -> None:
    with pytest.raises(MatchError) as info:
        compile_match(text)
    assert info.value.col == col
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)


def test_non_boolean_match_is_rejected_when_known() -> None:
    with pytest.raises(MatchError, match="boolean"):
        compile_match("'x'")


def test_failing_event_does_not_match_and_is_counted() -> None:
    m = compile_match('"missing_tag" == \'x\'')
    assert m(EVENT) is False
    assert m.errors == 1
    assert m.last_error is not None
    with pytest.raises(LambdaError):
        m.evaluate(EVENT)


def test_context_from_alert_data() -> None:
    alert = AlertData(
        id="cpu:host=serverA",
        message="m",
        details="",
        time=Time(10),
        duration=Duration(3 * MINUTE),
        level=Level.CRITICAL,
        data=Result(
            series=[
                Series(
                    name="cpu",
                    tags={"host": "serverA"},
                    columns=["time", "usage_idle"],
                    values=[[Time(5), 50.0], [Time(10), 3.0]],
                )
            ]
        ),
        previous_level=Level.WARNING,
    )
    ctx = MatchContext.from_alert(alert, task_name="t")
    assert ctx.fields == {"usage_idle": 3.0}
    assert ctx.tags == {"host": "serverA"}
    assert (ctx.name, ctx.task_name, ctx.duration, ctx.time) == ("cpu", "t", 3 * MINUTE, 10)
    m = compile_match("\"usage_idle\" < 5.0 AND level() == CRITICAL AND changed()")
    assert m(ctx) is True


def test_concurrent_evaluations_see_their_own_event() -> None:
    m = compile_match("level() == CRITICAL")
    crit = MatchContext(level=Level.CRITICAL)
    ok = MatchContext(level=Level.OK)
    wrong: list[str] = []

    def run(ctx: MatchContext, expected: bool) -> None:
        for _ in range(2000):
            if m(ctx) is not expected:
                wrong.append(ctx.level.name)

    threads = [
        threading.Thread(target=run, args=(crit, True)),
        threading.Thread(target=run, args=(ok, False)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
