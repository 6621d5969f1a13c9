"""From a parsed TICKscript to a validated description of the task graph.

Walks the program's statements, resolves variables, checks every ``|node`` and ``.property``
against :mod:`kapacity.pipeline.schema` and converts literal arguments to Python values.
Lambdas stay syntax trees here; :mod:`kapacity.pipeline.build` compiles them. Every error
is a :class:`PipelineError` naming line:column, the offending name and the valid choices.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from kapacity.gotypes import Duration
from kapacity.pipeline.errors import PipelineError
from kapacity.pipeline.schema import (
    NODES,
    SOURCES,
    UNSUPPORTED_HANDLERS,
    UNSUPPORTED_NODES,
    UNSUPPORTED_SOURCES,
    NodeSpec,
    Sig,
)
from kapacity.tick import ast


class StarValue:
    """``*`` as an argument (``groupBy(*)``)."""

    def __repr__(self) -> str:
        return "*"


STAR = StarValue()


@dataclass(slots=True)
class Prop:
    """One ``.name(args)`` as written, with converted arguments."""

    args: list[Any]
    line: int
    col: int


@dataclass(eq=False, slots=True)
class HandlerDecl:
    """``.kafka()…`` on an alert node: its properties, in order."""

    kind: str
    args: list[Any]
    line: int
    col: int
    props: dict[str, list[Prop]] = field(default_factory=dict)
    alert: NodeDecl | None = None


@dataclass(eq=False, slots=True)
class NodeDecl:
    """A ``|node(args)`` with its properties and children, as written."""

    kind: str
    name: str
    args: list[Any]
    line: int
    col: int
    props: dict[str, list[Prop]] = field(default_factory=dict)
    children: list[NodeDecl] = field(default_factory=list)
    handlers: list[HandlerDecl] = field(default_factory=list)

    def prop(self, name: str) -> Prop | None:
        """The last setting of a property (later settings win, as in Kapacitor)."""
        items = self.props.get(name)
        return items[-1] if items else None

    def flag(self, name: str) -> bool:
        return name in self.props


@dataclass(slots=True)
class Script:
    """The task graph as declared: the ``stream`` source and the ``dbrp`` statements."""

    source: NodeDecl
    dbrps: list[tuple[str, str]]
    #: The script's vars usable inside lambdas (scalars, durations, regexes, lambdas).
    scope: dict[str, Any] = field(default_factory=dict)


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{hint}; valid: {', '.join(sorted(choices))}"


def _kind_of(expr: ast.Expr) -> str:
    return type(expr).__name__


class _Walker:
    def __init__(self, vars: dict[str, Any] | None) -> None:
        self.vars: dict[str, Any] = {}
        self.task_vars = dict(vars or {})
        self.counter = 0
        self.source: NodeDecl | None = None
        self.dbrps: list[tuple[str, str]] = []

    def fail(self, node: ast.Node, message: str) -> PipelineError:
        return PipelineError(message, node.line, node.col)

    # --- statements --------------------------------------------------------------------

    def program(self, prog: ast.Program) -> Script:
        for st in prog.statements:
            if isinstance(st, ast.VarDecl):
                self.declare(st)
            elif isinstance(st, ast.DBRP):
                self.dbrps.append((st.db, st.rp))
            else:
                self.eval(st)
        if self.source is None:
            raise PipelineError("the script has no stream: start a chain with 'stream|from()'", 1, 1)
        scope = {
            k: v for k, v in self.vars.items()
            if isinstance(v, str | int | float | bool | Duration | re.Pattern | ast.Lambda)
        }
        return Script(self.source, self.dbrps, scope)

    def declare(self, st: ast.VarDecl) -> None:
        if st.name in self.task_vars:
            self.vars[st.name] = self.task_var(st, self.task_vars[st.name])
        elif st.value is None:
            raise self.fail(st, f"missing value for var {st.name!r} ({st.type_name}): pass it in the task's vars")
        else:
            self.vars[st.name] = self.eval(st.value)

    def task_var(self, st: ast.VarDecl, value: Any) -> Any:
        """A task var (``vars`` at define time): plain value or ``{"type", "value"}``."""
        if isinstance(value, dict) and "value" in value:
            kind, value = str(value.get("type", "")), value["value"]
        else:
            kind = st.type_name or ""
        if kind == "lambda" and isinstance(value, str):
            from kapacity.tick.parser import parse_lambda

            expr = parse_lambda(value)
            return expr if isinstance(expr, ast.Lambda) else ast.Lambda(expr, line=st.line, col=st.col)
        if kind == "duration" and isinstance(value, str):
            from kapacity.tick.parser import parse_duration

            return Duration(parse_duration(value))
        if kind == "duration" and isinstance(value, int):
            return Duration(value)
        if kind == "star":
            return STAR
        if kind == "regex" and isinstance(value, str):
            from kapacity.tick._regex import compile_go_regex

            return compile_go_regex(value)
        return value

    # --- expressions -------------------------------------------------------------------

    def eval(self, expr: ast.Expr) -> Any:
        if isinstance(expr, ast.Chain):
            return self.chain(expr)
        if isinstance(expr, ast.Identifier):
            return self.identifier(expr)
        if isinstance(expr, ast.StringLit):
            return expr.value
        if isinstance(expr, ast.NumberInt | ast.NumberFloat | ast.BoolLit):
            return expr.value
        if isinstance(expr, ast.DurationLit):
            return Duration(expr.ns)
        if isinstance(expr, ast.Star):
            return STAR
        if isinstance(expr, ast.Lambda):
            return expr
        if isinstance(expr, ast.RegexLit):
            return expr.compiled
        if isinstance(expr, ast.ListLit):
            return [self.eval(item) for item in expr.items]
        if isinstance(expr, ast.Call):
            raise self.fail(expr, f"{expr.name}() cannot start a chain: start with 'stream'")
        raise self.fail(expr, f"unexpected {_kind_of(expr)} here")

    def identifier(self, ident: ast.Identifier) -> Any:
        name = ident.name
        if name in self.vars:
            return self.vars[name]
        if name in SOURCES:
            if self.source is None:
                self.source = NodeDecl("stream", "stream0", [], ident.line, ident.col)
                self.counter = 1
            return self.source
        if name in UNSUPPORTED_SOURCES:
            raise self.fail(ident, f"{name} tasks are not supported by kapacity: only stream tasks run")
        raise self.fail(ident, f"unknown identifier {name!r}" + _suggest(name, [*self.vars, *SOURCES]))

    def chain(self, ch: ast.Chain) -> Any:
        target = self.eval(ch.left)
        call = ch.call
        if ch.op == "@":
            raise self.fail(ch, f"user-defined functions (@{call.name}) are not supported by kapacity")
        if isinstance(target, HandlerDecl):
            if ch.op == "|":
                assert target.alert is not None
                return self.new_node(target.alert, call, ch)
            return self.handler_prop(target, call, ch)
        if not isinstance(target, NodeDecl):
            raise self.fail(ch, f"cannot apply {ch.op}{call.name} to a {type(target).__name__} value")
        if ch.op == "|":
            return self.new_node(target, call, ch)
        return self.node_prop(target, call, ch)

    # --- nodes -------------------------------------------------------------------------

    def spec(self, decl: NodeDecl) -> NodeSpec | None:
        return NODES.get(decl.kind)

    def new_node(self, parent: NodeDecl, call: ast.Call, at: ast.Chain) -> NodeDecl:
        name = call.name
        if name in UNSUPPORTED_NODES:
            raise self.fail(call, f"node {name} is not supported by kapacity")
        spec = NODES.get(name)
        if spec is None:
            pspec = self.spec(parent)
            if pspec is not None and (name in pspec.props or name in pspec.handlers):
                raise self.fail(at, f"{name} is a property of {parent.kind}, use .{name}")
            if name in UNSUPPORTED_HANDLERS:
                raise self.fail(call, f"handler {name} is not supported by kapacity")
            raise self.fail(call, f"unknown node {name}" + _suggest(name, list(NODES)))
        if name == "from" and parent.kind != "stream":
            raise self.fail(call, f"from() must follow stream, not {parent.kind}")
        if parent.kind == "stream" and name != "from":
            raise self.fail(call, f"stream|{name}() is not supported: start with stream|from()")
        args = self.args(spec.create, call, f"{name}()")
        decl = NodeDecl(name, f"{name}{self.counter}", args, call.line, call.col)
        self.counter += 1
        parent.children.append(decl)
        return decl

    def node_prop(self, decl: NodeDecl, call: ast.Call, at: ast.Chain) -> NodeDecl | HandlerDecl:
        name = call.name
        spec = self.spec(decl)
        props = spec.props if spec is not None else {}
        handlers = spec.handlers if spec is not None else {}
        if name in handlers:
            sig, _ = handlers[name]
            h = HandlerDecl(name, self.args(sig, call, f".{name}()"), call.line, call.col, alert=decl)
            decl.handlers.append(h)
            return h
        if name not in props:
            if name in NODES or name in UNSUPPORTED_NODES:
                raise self.fail(at, f"{name} is a node, not a property of {decl.kind}: use |{name}")
            if name in UNSUPPORTED_HANDLERS and decl.kind in ("alert", "deadman"):
                raise self.fail(call, f"handler {name} is not supported by kapacity")
            valid = [*props, *handlers]
            if not valid:
                raise self.fail(call, f"{decl.kind} has no properties (unknown property {name})")
            raise self.fail(call, f"unknown property {name} on {decl.kind}" + _suggest(name, valid))
        sig = props[name]
        decl.props.setdefault(name, []).append(
            Prop(self.args(sig, call, f".{name}()"), call.line, call.col)
        )
        return decl

    def handler_prop(self, h: HandlerDecl, call: ast.Call, at: ast.Chain) -> NodeDecl | HandlerDecl:
        assert h.alert is not None
        spec = self.spec(h.alert)
        assert spec is not None
        _, hprops = spec.handlers[h.kind]
        if call.name in hprops:
            h.props.setdefault(call.name, []).append(
                Prop(self.args(hprops[call.name], call, f".{call.name}()"), call.line, call.col)
            )
            return h
        if call.name in spec.props or call.name in spec.handlers:
            # Kapacitor's handler embeds the alert node: its properties stay reachable.
            return self.node_prop(h.alert, call, at)
        if call.name in NODES or call.name in UNSUPPORTED_NODES:
            raise self.fail(at, f"{call.name} is a node, not a property of {h.kind}: use |{call.name}")
        valid = [*hprops, *spec.props, *spec.handlers]
        raise self.fail(call, f"unknown property {call.name} on {h.kind} handler" + _suggest(call.name, valid))

    # --- arguments ---------------------------------------------------------------------

    def args(self, sig: Sig, call: ast.Call, what: str) -> list[Any]:
        given = list(call.args)
        n_max = None if sig.varargs else len(sig.args)
        if len(given) < sig.min_args or (n_max is not None and len(given) > n_max):
            want = _describe(sig)
            raise self.fail(call, f"{what} takes {want}, got {len(given)}")
        out = []
        for i, expr in enumerate(given):
            kind = sig.args[i] if i < len(sig.args) else sig.varargs
            assert kind is not None
            out.append(self.arg(expr, kind, what))
        return out

    def arg(self, expr: ast.Expr, kind: str, what: str) -> Any:
        value = self.eval(expr)
        if isinstance(value, list) and kind in ("str", "dim"):
            # A list var spreads into a varargs call: groupBy(dims) with var dims = ['a', 'b']
            return [self.check(expr, v, kind, what) for v in value]
        return self.check(expr, value, kind, what)

    def check(self, expr: ast.Expr, value: Any, kind: str, what: str) -> Any:
        ok: bool
        if kind == "str":
            ok = isinstance(value, str)
        elif kind == "dur":
            ok = isinstance(value, Duration)
            if ok:
                return value.ns
        elif kind == "num":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "lambda":
            ok = isinstance(value, ast.Lambda)
        elif kind == "dim":
            ok = isinstance(value, str) or value is STAR
        elif kind == "value":
            ok = isinstance(value, str | int | float | bool)
        else:  # pragma: no cover - schema typo
            raise AssertionError(kind)
        if not ok:
            shown = "node" if isinstance(value, NodeDecl | HandlerDecl) else repr(value)
            raise self.fail(expr, f"{what}: expected {_KIND_NAMES[kind]}, got {shown}")
        return value


_KIND_NAMES = {
    "str": "a string", "dur": "a duration (e.g. 10s)", "num": "a number", "int": "an integer",
    "bool": "TRUE or FALSE", "lambda": "a lambda expression", "dim": "a tag name or *",
    "value": "a string, number or boolean",
}


def _describe(sig: Sig) -> str:
    if sig.varargs and not sig.args:
        return f"any number of {_KIND_NAMES[sig.varargs]} arguments"
    lo, hi = sig.min_args, len(sig.args)
    count = f"{lo}" if lo == hi else f"{lo} to {hi}"
    more = f" and more {_KIND_NAMES[sig.varargs]} arguments" if sig.varargs else ""
    return f"{count} argument{'s' if hi != 1 else ''} ({', '.join(_KIND_NAMES[k] for k in sig.args)}){more}"


def read_script(program: ast.Program, vars: dict[str, Any] | None = None) -> Script:
    """Validate a parsed program and return its declared task graph."""
    return _Walker(vars).program(program)


def flatten(args: list[Any]) -> list[Any]:
    """Varargs with list variables spread in place."""
    out: list[Any] = []
    for a in args:
        if isinstance(a, list):
            out.extend(a)
        else:
            out.append(a)
    return out
