"""The one place where pipeline nodes meet the TICKscript lambda compiler.

Nodes call a compiled lambda as ``fn(fields, tags, time_ns)`` (the compiler's own calling
convention, so there is no wrapper frame per point); this module compiles each lambda once,
with the script's vars in scope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kapacity.tick import ast, compile_lambda

#: ``fn(fields, tags, time_ns) -> value``; raises ``LambdaError`` for a bad point.
RowLambda = Callable[[dict[str, Any], dict[str, str], int], Any]


def compile_expr(expr: ast.Lambda, scope: Mapping[str, Any] | None = None, *, predicate: bool = False) -> RowLambda:
    """Compile ``lambda: …`` (raises ``TickError`` at the offending line:col when invalid)."""
    compiled = compile_lambda(expr, scope, predicate=predicate)
    fn: RowLambda = compiled.fn
    return fn
