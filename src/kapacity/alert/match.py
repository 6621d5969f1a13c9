"""Topic-handler ``match`` expressions: which events a handler acts on.

A match is a TICKscript lambda body evaluated per event, with the event's data
(``"host" == 'a'`` reads a field, else a tag) and these functions:

==================  ========  ================================================
``level()``         int       the event's level: ``OK`` 0, ``INFO`` 1, ...
``changed()``       bool      the level differs from the previous level
``name()``          string    the measurement of the triggering data
``taskName()``      string    the task that raised the alert
``alertDuration()`` duration  how long the event has been non-OK
``duration()``      duration  the same (Kapacitor's documented name; with
                              arguments it is the usual conversion function)
==================  ========  ================================================

and the constants ``OK INFO WARNING CRITICAL``. An empty match matches all.

>>> m = compile_match("changed() == TRUE AND level() >= WARNING")
>>> m(MatchContext(level=Level.CRITICAL, previous_level=Level.OK))
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from kapacity.alert.event import AlertData
from kapacity.errors import KapacityError
from kapacity.gotypes import Duration, Level
from kapacity.models import FieldValue
from kapacity.tick import LambdaError, TickError, compile_lambda, parse_lambda
from kapacity.tick.functions import BUILTINS

#: Names bound in every match expression.
MATCH_CONSTANTS: dict[str, int] = {level.name: int(level) for level in Level}


class MatchError(KapacityError, ValueError):
    """A match expression that does not parse or type-check; ``col`` is 1-based."""

    def __init__(self, message: str, text: str, line: int, col: int) -> None:
        self.message = message
        self.text = text
        self.line = line
        self.col = col
        where = f"char {col}" if line == 1 else f"line {line} char {col}"
        super().__init__(f"invalid match expression {text!r} at {where}: {message}")


@dataclass(frozen=True, slots=True)
class MatchContext:
    """What a match expression sees of one event; ``time``/``duration`` in ns."""

    level: Level = Level.OK
    previous_level: Level = Level.OK
    name: str = ""
    task_name: str = ""
    duration: int = 0
    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    time: int = 0

    @property
    def changed(self) -> bool:
        return self.level != self.previous_level

    @classmethod
    def from_alert(cls, alert: AlertData, task_name: str = "") -> MatchContext:
        """From alert data: name and tags of the first series, fields of its last row."""
        series = alert.data.series[0] if alert.data.series else None
        fields: dict[str, FieldValue] = {}
        if series is not None and series.values:
            row = series.values[-1]
            fields = {
                col: val
                for col, val in zip(series.columns, row, strict=False)
                if col != "time" and isinstance(val, (str, int, float, bool))
            }
        return cls(
            level=alert.level,
            previous_level=alert.previous_level,
            name=series.name if series is not None else "",
            task_name=task_name,
            duration=alert.duration.ns,
            fields=fields,
            tags=dict(series.tags) if series is not None else {},
            time=alert.time.ns,
        )


# The event being matched, read by the bound functions. A context variable keeps
# concurrent evaluations (threads, asyncio tasks) from seeing each other's event.
_CURRENT: ContextVar[MatchContext] = ContextVar("kapacity_match_event")


def _level() -> int:
    return int(_CURRENT.get().level)


def _changed() -> bool:
    return _CURRENT.get().changed


def _name() -> str:
    return _CURRENT.get().name


def _task_name() -> str:
    return _CURRENT.get().task_name


def _alert_duration() -> Duration:
    return Duration(_CURRENT.get().duration)


_duration_builtin = BUILTINS["duration"]
assert _duration_builtin.impl is not None
_duration_conversion = _duration_builtin.checked(_duration_builtin.impl)


def _duration(*args: Any) -> Any:
    if not args:
        return _alert_duration()
    return _duration_conversion(*args)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "level": _level,
    "changed": _changed,
    "name": _name,
    "taskName": _task_name,
    "alertDuration": _alert_duration,
    "duration": _duration,
}


class Matcher:
    """A compiled match expression; call it with a :class:`MatchContext`.

    Calling never raises for a bad event: like Kapacitor, an expression that
    fails on an event (a missing tag, mismatched types) does not match it; the
    failure is counted in ``errors`` and kept in ``last_error`` for logging.
    Use :meth:`evaluate` to get the :class:`LambdaError` instead.
    """

    __slots__ = ("_fn", "errors", "last_error", "text")

    def __init__(self, text: str, fn: Callable[..., Any] | None) -> None:
        self.text = text
        self._fn = fn
        self.errors = 0
        self.last_error: LambdaError | None = None

    def evaluate(self, ctx: MatchContext) -> bool:
        """Evaluate; raises :class:`LambdaError` when the expression fails on ``ctx``."""
        if self._fn is None:
            return True
        token = _CURRENT.set(ctx)
        try:
            return bool(self._fn(ctx.fields, ctx.tags, ctx.time))
        finally:
            _CURRENT.reset(token)

    def __call__(self, ctx: MatchContext) -> bool:
        try:
            return self.evaluate(ctx)
        except LambdaError as err:
            self.errors += 1
            self.last_error = err
            return False

    def __repr__(self) -> str:
        return f"Matcher({self.text!r})"


def compile_match(text: str) -> Matcher:
    """Compile a handler's match expression once; ``""`` matches every event.

    Raises :class:`MatchError` (with the 1-based column) when it does not parse
    or does not evaluate to a boolean.
    """
    if text.strip() == "":
        return Matcher(text, None)
    try:
        expr = parse_lambda(text)
        compiled = compile_lambda(expr, MATCH_CONSTANTS, functions=_FUNCTIONS, predicate=True)
    except TickError as err:
        raise MatchError(err.message, text, err.line, err.col) from None
    return Matcher(text, compiled.fn)
