"""Compile lambda expressions once into fast Python callables.

A lambda is translated to Python source and compiled with :func:`compile`, so
per point there is no tree walking: ``lambda: "usage_idle" < 10`` becomes ::

    def _lambda(fields, tags, time_ns=0):
        return (_t0 < 10 if type(_t0 := (fields['usage_idle'] if 'usage_idle' in fields
                else _tag(tags, 'usage_idle'))) in _NUM else _mismatch('<', _t0, 10))

Calling convention of the compiled function: ``fn(fields, tags, time_ns=0)``

* ``fields``: the point's fields (``Mapping[str, int | float | str | bool]``);
* ``tags``: the point's tags (``Mapping[str, str]``);
* ``time_ns``: the point's time in integer nanoseconds (UTC), read by
  ``"time"``, ``hour("time")``, ``unixNano("time")`` and friends.

``"name"`` resolves to the field, else the tag; neither raises :class:`LambdaError`
(``no field or tag exists for "name"``), which callers log and treat as false.
Types follow Kapacitor: int/int division truncates, int and float never mix in
arithmetic (``float("x") * 1.5``), comparisons may mix them, strings
concatenate with ``+``. Where the types are known when compiling (literals,
vars, function results) a mismatch is a :class:`TickError` at the operator's
line:col; otherwise it is a :class:`LambdaError` for that point.

State: ``sigma``, ``count`` and ``spread`` keep state per call site. The
callable returned by :meth:`CompiledLambda.new_state` owns fresh state, so a
node keeps one per group; ``compiled.fn`` is a shared default instance.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from kapacity.gotypes import Duration, Time
from kapacity.tick import _runtime as rt
from kapacity.tick import ast
from kapacity.tick.errors import LambdaError, TickError
from kapacity.tick.functions import BUILTINS, TIME_NS_FUNCS, Builtin, static_result

LambdaFn = Callable[..., Any]
Factory = Callable[[], Callable[..., Any]]

# Errors raised by Python operations on unexpected values; they become LambdaError.
_CAUGHT = (TypeError, ValueError, OverflowError, ZeroDivisionError, AttributeError, IndexError)

_BASE_NAMESPACE: dict[str, Any] = {
    "__builtins__": {},
    "type": type,
    "str": str,
    "bool": bool,
    "_NUM": rt.NUMERIC,
    "_Duration": Duration,
    "_Time": Time,
    "_tag": rt.tag_or_missing,
    "_mismatch": rt.mismatch,
    "_compare": rt.compare,
    "_math_op": rt.math_op,
    "_go_div": rt.go_div,
    "_go_mod": rt.go_mod,
    "_float_div": rt.float_div,
    "_regex_match": rt.regex_match,
    "_as_bool": rt.as_bool,
    "_negate": rt.negate,
    "_CAUGHT": _CAUGHT,
    "_LambdaError": LambdaError,
}

_PY_TYPE_CHECK = {
    rt.INT: "type({0}) in _NUM",
    rt.FLOAT: "type({0}) in _NUM",
    rt.STRING: "type({0}) is str",
    rt.BOOL: "type({0}) is bool",
    rt.DURATION: "type({0}) is _Duration",
    rt.TIME: "type({0}) is _Time",
}


def _present(_value: object) -> bool:
    return True


def _wrap_error(exc: BaseException) -> LambdaError:
    return LambdaError(f"{type(exc).__name__}: {exc}")


_BASE_NAMESPACE["_present"] = _present
_BASE_NAMESPACE["_wrap"] = _wrap_error


class CompiledLambda:
    """A lambda compiled to Python.

    Attributes:
        fn: ``fn(fields, tags, time_ns=0) -> value`` with a shared default state.
        result_type: the static result type (``"boolean"``, ``"float"``, ...) or None
            when it depends on the point's values.
        references: the ``"names"`` the expression reads (see :func:`lambda_references`).
        stateful: whether it uses ``sigma``/``count``/``spread``.
        source: the generated Python source, for debugging.
    """

    __slots__ = ("expr", "fn", "references", "result_type", "source", "stateful", "_make", "_factories")

    def __init__(
        self,
        expr: ast.Expr,
        source: str,
        make: Callable[..., LambdaFn],
        factories: list[Factory],
        result_type: str | None,
    ) -> None:
        self.expr = expr
        self.source = source
        self._make = make
        self._factories = factories
        self.result_type = result_type
        self.stateful = bool(factories)
        self.references = frozenset(lambda_references(expr))
        self.fn: LambdaFn = self.new_state()

    def new_state(self) -> LambdaFn:
        """A callable with its own fresh state (the same callable kind as ``fn``)."""
        return self._make(*[factory() for factory in self._factories])

    def __call__(self, fields: Mapping[str, Any], tags: Mapping[str, str], time_ns: int = 0) -> Any:
        return self.fn(fields, tags, time_ns)

    def __repr__(self) -> str:
        return f"CompiledLambda(result_type={self.result_type!r}, references={sorted(self.references)!r})"


class _Codegen:
    def __init__(
        self,
        scope: Mapping[str, Any],
        functions: Mapping[str, Callable[..., Any]],
        now: Callable[[], int],
    ) -> None:
        self.scope = scope
        self.functions = functions
        self.namespace = dict(_BASE_NAMESPACE)
        self.namespace["_now"] = now
        self.states: list[tuple[str, Factory]] = []
        self.counter = 0
        #: When set (inline mode), ``"name"`` reads a local loaded once per section:
        #: reference name → local variable name.
        self.loads: dict[str, str] | None = None

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, value: Any) -> str:
        key = self.name("_k")
        self.namespace[key] = value
        return key

    # --- nodes -----------------------------------------------------------------

    def gen(self, node: ast.Expr) -> tuple[str, str | None]:
        if isinstance(node, ast.BinaryOp):
            return self.binary(node)
        if isinstance(node, ast.Reference):
            return self.reference(node.name)
        if isinstance(node, ast.NumberInt):
            return repr(node.value), rt.INT
        if isinstance(node, ast.NumberFloat):
            return repr(node.value), rt.FLOAT
        if isinstance(node, ast.StringLit):
            return repr(node.value), rt.STRING
        if isinstance(node, ast.BoolLit):
            return repr(node.value), rt.BOOL
        if isinstance(node, ast.DurationLit):
            return self.const(Duration(node.ns)), rt.DURATION
        if isinstance(node, ast.RegexLit):
            return self.const(node.compiled), rt.REGEX
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Identifier):
            return self.identifier(node)
        if isinstance(node, ast.Lambda):
            return self.gen(node.expr)
        what = type(node).__name__
        raise TickError(f"a {what} cannot be used in a lambda expression", node.line, node.col)

    def reference(self, name: str) -> tuple[str, str | None]:
        if name == "time":
            return "_Time(time_ns)", rt.TIME
        if self.loads is None:
            return gen_load(name), None
        local = self.loads.get(name)
        if local is None:
            local = self.loads[name] = self.name("_r")
        return local, None

    def identifier(self, node: ast.Identifier) -> tuple[str, str | None]:
        if node.name not in self.scope:
            known = ", ".join(sorted(self.scope)) or "none"
            raise TickError(
                f"undefined identifier {node.name} in lambda (vars in scope: {known}); "
                "use double quotes for a field or tag: \"" + node.name + '"',
                node.line,
                node.col,
            )
        value = self.scope[node.name]
        if isinstance(value, ast.Node):
            return self.gen(value)  # type: ignore[arg-type]  # scope holds expressions
        return self.value(value, node)

    def value(self, value: Any, node: ast.Node) -> tuple[str, str | None]:
        if isinstance(value, bool):
            return repr(value), rt.BOOL
        if isinstance(value, int):
            return repr(int(value)), rt.INT
        if isinstance(value, float):
            return self.const(float(value)), rt.FLOAT
        if isinstance(value, str):
            return repr(str(value)), rt.STRING
        if isinstance(value, Duration):
            return self.const(value), rt.DURATION
        if isinstance(value, Time):
            return self.const(value), rt.TIME
        if isinstance(value, re.Pattern):
            return self.const(value), rt.REGEX
        raise TickError(
            f"var of type {type(value).__name__} cannot be used in a lambda expression",
            node.line,
            node.col,
        )

    def unary(self, node: ast.UnaryOp) -> tuple[str, str | None]:
        code, typ = self.gen(node.operand)
        if typ is not None and rt.unary_result(node.op, typ) is None:
            raise TickError(f"invalid argument to '{node.op}': {typ}", node.line, node.col)
        if node.op == "!":
            inner = code if typ == rt.BOOL else f"_as_bool({code}, \"'!'\")"
            return f"(not {inner})", rt.BOOL
        if typ in (rt.INT, rt.FLOAT):
            return f"(-{code})", typ
        return f"_negate({code})", typ

    def binary(self, node: ast.BinaryOp) -> tuple[str, str | None]:
        op = node.op
        lc, lt = self.gen(node.left)
        rc, rtype = self.gen(node.right)
        if lt is not None and rtype is not None:
            result = rt.binary_result(op, lt, rtype)
            if result is None:
                raise TickError(rt.binary_error(op, lt, rtype), node.line, node.col)
        self.check_one_side(node, lt, rtype)
        if op in rt.LOGICAL:
            lb = lc if lt == rt.BOOL else f"_as_bool({lc}, {op!r})"
            rb = rc if rtype == rt.BOOL else f"_as_bool({rc}, {op!r})"
            return f"({lb} {op.lower()} {rb})", rt.BOOL
        if op in rt.COMPARISON:
            return self.comparison(op, lc, lt, rc, rtype), rt.BOOL
        if op in rt.REGEX_OPS:
            return self.regex(op, lc, lt, rc, rtype), rt.BOOL
        if lt is not None and rtype is not None:
            result = rt.binary_result(op, lt, rtype)
            assert result is not None
            return rt.static_math(op, lt, rtype, result).format(lc, rc), result
        return f"_math_op({op!r}, {lc}, {rc})", None

    def check_one_side(self, node: ast.BinaryOp, lt: str | None, rtype: str | None) -> None:
        """Reject an operator that cannot apply to the one side whose type is known."""
        op = node.op
        for side, other in ((lt, rtype), (rtype, lt)):
            if side is None or other is not None:
                continue
            ok = any(
                rt.binary_result(op, side, candidate) is not None
                or rt.binary_result(op, candidate, side) is not None
                for candidate in (rt.INT, rt.FLOAT, rt.STRING, rt.BOOL, rt.DURATION, rt.TIME, rt.REGEX)
            )
            if not ok:
                kind = "math" if op in rt.MATH else "logical" if op in rt.LOGICAL else "comparison"
                raise TickError(f"invalid {kind} operator {op} for type {side}", node.line, node.col)

    def bind(self, code: str) -> tuple[str, str]:
        """A name for the value of ``code`` and the expression that binds it: a walrus into
        a fresh temporary, or nothing when ``code`` is already a local (an inline load)."""
        if code.isidentifier():
            return code, code
        t = self.name("_t")
        return t, f"({t} := {code})"

    def comparison(self, op: str, lc: str, lt: str | None, rc: str, rtype: str | None) -> str:
        if lt is not None and rtype is not None:
            return f"({lc} {op} {rc})"
        if lt is None and rtype is not None and rtype in _PY_TYPE_CHECK:
            t, bind = self.bind(lc)
            check = _PY_TYPE_CHECK[rtype].format(bind)
            return f"({t} {op} {rc} if {check} else _mismatch({op!r}, {t}, {rc}))"
        if rtype is None and lt is not None and lt in _PY_TYPE_CHECK:
            t, bind = self.bind(rc)
            check = _PY_TYPE_CHECK[lt].format(bind)
            return f"({lc} {op} {t} if {check} else _mismatch({op!r}, {lc}, {t}))"
        return f"_compare({op!r}, {lc}, {rc})"

    def regex(self, op: str, lc: str, lt: str | None, rc: str, rtype: str | None) -> str:
        if rtype == rt.REGEX:
            test = "is not None" if op == "=~" else "is None"
            # A literal regex's bound search method is a constant: one attribute lookup less per point.
            search = f"{rc}.search"
            if isinstance(self.namespace.get(rc), re.Pattern):
                search = self.const(self.namespace[rc].search)
            if lt == rt.STRING:
                return f"({search}({lc}) {test})"
            t, bind = self.bind(lc)
            return (
                f"({search}({t}) {test} if type({bind}) is str "
                f"else _mismatch({op!r}, {t}, {rc}))"
            )
        return f"_regex_match({op!r}, {lc}, {rc})"

    # --- calls -------------------------------------------------------------------

    def call(self, node: ast.Call) -> tuple[str, str | None]:
        name = node.name
        if name in self.functions:
            fn = self.const(self.functions[name])
            args = ", ".join(self.gen(arg)[0] for arg in node.args)
            return f"{fn}({args})", None
        builtin = BUILTINS.get(name)
        if builtin is None:
            raise TickError(_unknown_function(name, self.functions), node.line, node.col)
        if name == "isPresent":
            return self.is_present(node, builtin), rt.BOOL
        if name in TIME_NS_FUNCS and len(node.args) == 1 and node.args[0] == ast.Reference("time"):
            return f"{self.const(TIME_NS_FUNCS[name])}(time_ns)", rt.INT
        compiled = [self.gen(arg) for arg in node.args]
        codes = [code for code, _ in compiled]
        types = tuple(typ for _, typ in compiled)
        fits, result = static_result(builtin, types)
        if not fits:
            shown = "(" + ", ".join(
                f"{_arg_text(arg)}: {typ or 'any'}" for arg, typ in zip(node.args, types)
            ) + ")"
            raise TickError(builtin.signature_error(tuple(t or "any" for t in types), shown), node.line, node.col)
        fully_known = all(typ is not None for typ in types)
        args = ", ".join(codes)
        if name == "now":
            return "_Time(_now())", rt.TIME
        if builtin.factory is not None:
            state = self.name("_s")
            self.states.append((state, builtin.factory))
            if fully_known:
                return f"{state}({args})", result
            checked = self.const(_StatefulCall(builtin))
            return f"{checked}({state}, {args})", result
        assert builtin.impl is not None
        impl = builtin.impl if fully_known else builtin.checked(builtin.impl)
        return f"{self.const(impl)}({args})", result

    def is_present(self, node: ast.Call, builtin: Builtin) -> str:
        if len(node.args) != 1:
            raise TickError(builtin.signature_error(("any",) * len(node.args)), node.line, node.col)
        arg = node.args[0]
        if isinstance(arg, ast.Reference):
            if arg.name == "time":
                return "True"
            key = repr(arg.name)
            return f"({key} in fields or {key} in tags)"
        return f"_present({self.gen(arg)[0]})"


class _StatefulCall:
    """Checks the argument types of a stateful call whose types vary per point."""

    __slots__ = ("builtin", "allowed")

    def __init__(self, builtin: Builtin) -> None:
        self.builtin = builtin
        self.allowed = builtin.allowed_types()

    def __call__(self, state: Callable[..., Any], *args: Any) -> Any:
        if tuple(map(type, args)) not in self.allowed:
            raise LambdaError(self.builtin.signature_error(tuple(rt.type_name(a) for a in args)))
        return state(*args)


def _arg_text(arg: ast.Expr) -> str:
    from kapacity.tick.formatter import format_expr

    return format_expr(arg)


def _unknown_function(name: str, extra: Mapping[str, Any]) -> str:
    names = sorted(set(BUILTINS) | set(extra))
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"did you mean {' or '.join(close)}?" if close else "valid functions are " + ", ".join(names)
    return f'undefined function "{name}" in lambda; {hint}'


def compile_lambda(
    expr: ast.Expr,
    scope: Mapping[str, Any] | None = None,
    *,
    functions: Mapping[str, Callable[..., Any]] | None = None,
    now: Callable[[], int] = time.time_ns,
    predicate: bool = False,
) -> CompiledLambda:
    """Compile a lambda (``ast.Lambda`` or its expression) once.

    ``scope`` maps identifiers (the script's vars) to values: Python ``int``,
    ``float``, ``str``, ``bool``, :class:`Duration`, compiled regexes, or AST
    nodes (a var holding ``lambda: …`` is inlined). ``functions`` adds extra
    global functions (called with evaluated arguments), e.g. ``level()`` in
    topic-handler match expressions. ``now`` is the clock behind ``now()``
    (integer nanoseconds). With ``predicate=True`` the result must be a
    boolean (``where``, alert levels): a non-boolean type known when compiling
    is a :class:`TickError`, one found per point a :class:`LambdaError`.

    >>> from kapacity.tick.parser import parse_lambda
    >>> fn = compile_lambda(parse_lambda('"usage_idle" < 10')).fn
    >>> fn({"usage_idle": 5.0}, {}, 0)
    True
    """
    gen = _Codegen(scope or {}, functions or {}, now)
    try:
        code, result_type = gen.gen(expr)
    except RecursionError:
        raise TickError("lambda expression is nested too deeply to compile", expr.line, expr.col) from None
    if predicate:
        if result_type is not None and result_type != rt.BOOL:
            raise TickError(
                f"expression must evaluate to a boolean, got {result_type}", expr.line, expr.col
            )
        if result_type is None:
            code = f"_as_bool({code}, 'a condition')"
            result_type = rt.BOOL
    params = ", ".join(name for name, _ in gen.states)
    source = (
        f"def _make({params}):\n"
        "    def _lambda(fields, tags, time_ns=0):\n"
        "        try:\n"
        f"            return {code}\n"
        "        except _CAUGHT as exc:\n"
        "            raise _wrap(exc) from exc\n"
        "    return _lambda\n"
    )
    namespace = gen.namespace
    try:
        exec(compile(source, f"<lambda line {expr.line}>", "exec"), namespace)  # noqa: S102
    except (SyntaxError, RecursionError, MemoryError):
        raise TickError("lambda expression is nested too deeply to compile", expr.line, expr.col) from None
    make = namespace["_make"]
    return CompiledLambda(expr, source, make, [factory for _, factory in gen.states], result_type)


class InlineSection:
    """Predicates compiled to Python expressions, for code that evaluates them in sequence.

    ``loads`` are ``(local, code)`` assignments to run first, in order: each ``"name"`` the
    section reads, looked up once (the code raises :class:`LambdaError` when it is neither
    a field nor a tag). ``exprs`` holds one boolean Python expression per predicate, over
    the locals ``fields``, ``tags``, ``time_ns`` and the loads.
    """

    __slots__ = ("exprs", "loads")

    def __init__(self, loads: list[tuple[str, str]], exprs: list[str]) -> None:
        self.loads = loads
        self.exprs = exprs


class InlineLambdas:
    """The result of :func:`inline_predicates`: sections sharing one ``namespace`` (the
    globals the generated function must be compiled with); ``stateful`` is true when a
    predicate uses ``sigma``/``count``/``spread``, whose state inline code cannot keep."""

    __slots__ = ("namespace", "sections", "stateful")

    def __init__(self, sections: list[InlineSection], namespace: dict[str, Any], stateful: bool) -> None:
        self.sections = sections
        self.namespace = namespace
        self.stateful = stateful


def inline_predicates(
    sections: list[list[ast.Expr]],
    scope: Mapping[str, Any] | None = None,
    *,
    now: Callable[[], int] = time.time_ns,
) -> InlineLambdas:
    """Compile predicates to expressions for a caller that generates one function around
    several of them (the pipeline's fused fast path), with :func:`compile_lambda`'s type
    rules and errors (``predicate=True``).

    Within a section each ``"name"`` is read once, so a hoisted load may raise for a point
    where the lambdas alone would have short-circuited: callers treat any exception as
    "take the exact path" (the lambdas compiled by :func:`compile_lambda`).

    >>> from kapacity.tick.parser import parse_lambda
    >>> il = inline_predicates([[parse_lambda('"v" > 1'), parse_lambda('"v" < 5')]])
    >>> il.sections[0].loads
    [('_r1', "(fields['v'] if 'v' in fields else _tag(tags, 'v'))")]
    """
    gen = _Codegen(scope or {}, {}, now)
    out: list[InlineSection] = []
    for exprs in sections:
        gen.loads = {}
        codes = []
        for expr in exprs:
            try:
                code, result_type = gen.gen(expr)
            except RecursionError:
                raise TickError("lambda expression is nested too deeply to compile", expr.line, expr.col) from None
            if result_type is not None and result_type != rt.BOOL:
                raise TickError(f"expression must evaluate to a boolean, got {result_type}", expr.line, expr.col)
            if result_type is None:
                code = f"_as_bool({code}, 'a condition')"
            codes.append(code)
        key_loads = [(local, gen_load(name)) for name, local in gen.loads.items()]
        out.append(InlineSection(key_loads, codes))
    gen.loads = None
    return InlineLambdas(out, gen.namespace, bool(gen.states))


def gen_load(name: str) -> str:
    """Python code reading reference ``"name"``: the field, else the tag, else an error."""
    key = repr(name)
    return f"(fields[{key}] if {key} in fields else _tag(tags, {key}))"


def lambda_references(expr: ast.Expr) -> set[str]:
    """The ``"names"`` an expression reads (fields or tags; ``"time"`` included if used)."""
    found: set[str] = set()
    stack: list[Any] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Reference):
            found.add(node.name)
        elif isinstance(node, ast.Lambda):
            stack.append(node.expr)
        elif isinstance(node, ast.BinaryOp):
            stack.extend((node.left, node.right))
        elif isinstance(node, ast.UnaryOp):
            stack.append(node.operand)
        elif isinstance(node, ast.Call):
            stack.extend(node.args)
        elif isinstance(node, ast.Chain):
            stack.extend((node.left, node.call))
        elif isinstance(node, ast.ListLit):
            stack.extend(node.items)
    return found
