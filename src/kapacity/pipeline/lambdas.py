"""The one place where pipeline nodes meet the TICKscript lambda compiler.

Nodes call a compiled lambda as ``fn(fields, tags, time_ns)`` (the compiler's own calling
convention, so there is no wrapper frame per point); this module compiles each lambda once,
with the script's vars in scope.

A lambda using ``sigma``, ``count`` or ``spread`` keeps state. As in Kapacitor's grouped
nodes, that state is per group: :class:`GroupedLambda` hands out one callable per group
(:meth:`GroupedLambda.for_group`), and the same shared callable for every group when the
lambda is stateless, so the common case costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kapacity.tick import ast, compile_lambda
from kapacity.tick.compiler import CompiledLambda

#: ``fn(fields, tags, time_ns) -> value``; raises ``LambdaError`` for a bad point.
RowLambda = Callable[[dict[str, Any], dict[str, str], int], Any]


def compile_expr(expr: ast.Lambda, scope: Mapping[str, Any] | None = None, *, predicate: bool = False) -> RowLambda:
    """Compile ``lambda: …`` (raises ``TickError`` at the offending line:col when invalid).

    The result has one state shared by all callers; use :func:`compile_grouped` in a node
    that sees several groups.
    """
    compiled = compile_lambda(expr, scope, predicate=predicate)
    fn: RowLambda = compiled.fn
    return fn


class GroupedLambda:
    """A compiled lambda with one state per group (when it has state at all).

    ``fn`` is the shared callable, used directly when :attr:`stateful` is false; ``expr``
    the source expression (the fused fast path of :mod:`kapacity.pipeline.fused` compiles
    it again, inline).

    >>> from kapacity.tick import parse_lambda
    >>> g = compile_grouped(parse_lambda('count("v") > 1'))
    >>> g.for_group("host=a")({"v": 1}, {}, 0), g.for_group("host=a")({"v": 1}, {}, 0)
    (False, True)
    >>> g.for_group("host=b")({"v": 1}, {}, 0)
    False
    """

    __slots__ = ("expr", "fn", "stateful", "_compiled", "_groups")

    def __init__(self, fn: RowLambda, expr: ast.Expr | None = None, compiled: CompiledLambda | None = None) -> None:
        self.fn = fn
        self.expr = expr
        self._compiled = compiled
        self.stateful = compiled is not None and compiled.stateful
        self._groups: dict[str, RowLambda] = {}

    def new_state(self) -> RowLambda:
        """A callable with fresh state (the shared one when stateless)."""
        if not self.stateful or self._compiled is None:
            return self.fn
        fn: RowLambda = self._compiled.new_state()
        return fn

    def for_group(self, group: str) -> RowLambda:
        """The callable that keeps ``group``'s state (the shared one when stateless)."""
        if not self.stateful:
            return self.fn
        fn = self._groups.get(group)
        if fn is None:
            fn = self._groups[group] = self.new_state()
        return fn

    def __call__(self, fields: dict[str, Any], tags: dict[str, str], time_ns: int) -> Any:
        """Evaluate with the shared state (for callers that have no group)."""
        return self.fn(fields, tags, time_ns)


def compile_grouped(expr: ast.Lambda, scope: Mapping[str, Any] | None = None, *,
                    predicate: bool = False) -> GroupedLambda:
    """Compile ``lambda: …`` once, for a node that keeps its state per group."""
    compiled = compile_lambda(expr, scope, predicate=predicate)
    return GroupedLambda(compiled.fn, expr, compiled)


def as_grouped(fn: RowLambda | GroupedLambda) -> GroupedLambda:
    """``fn`` itself when grouped already, else a stateless wrapper around a plain callable."""
    return fn if isinstance(fn, GroupedLambda) else GroupedLambda(fn)
