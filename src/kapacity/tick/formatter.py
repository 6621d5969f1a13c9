"""Canonical TICKscript text for a syntax tree (Kapacitor's ``tickfmt`` layout).

``parse(format_program(parse(s))) == parse(s)`` for every script ``s`` that
parses (positions and comments aside). Parentheses are written where precedence
needs them, plus wherever the source had them around a binary expression.

Layout::

    var warn = 70

    stream
        |from()
            .measurement('cpu')
        |alert()
            .crit(lambda: "usage_idle" < 10)
"""

from __future__ import annotations

from decimal import Decimal

from kapacity.tick import ast
from kapacity.tick.errors import TickError

INDENT = "    "
_DURATION_UNITS = (
    (604_800_000_000_000, "w"),
    (86_400_000_000_000, "d"),
    (3_600_000_000_000, "h"),
    (60_000_000_000, "m"),
    (1_000_000_000, "s"),
    (1_000_000, "ms"),
    (1_000, "u"),
)


def format_duration_literal(ns: int) -> str:
    """The largest whole unit that represents ``ns`` exactly (``90s`` → ``90s``, ``120s`` → ``2m``)."""
    if ns == 0:
        return "0s"
    for size, unit in _DURATION_UNITS:
        if ns % size == 0:
            return f"{ns // size}{unit}"
    raise ValueError(f"duration {ns}ns is not a whole number of microseconds")


def format_float(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)`` plus a ``.0`` on whole numbers."""
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    if "." not in text:
        text += ".0"
    return text


def format_string(node: ast.StringLit) -> str:
    value = node.value
    single_ok = not value.endswith("\\")
    triple_ok = "'''" not in value and not value.endswith("'")
    if (node.triple and triple_ok) or not single_ok:
        if not triple_ok:
            raise TickError(f"string {value!r} cannot be written in TICKscript", node.line, node.col)
        return f"'''{value}'''"
    return "'" + value.replace("'", "\\'") + "'"


def format_reference(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'


def _needs_parens(child: ast.Expr, parent_prec: int, right: bool) -> bool:
    if not isinstance(child, ast.BinaryOp):
        return False
    prec = ast.BINARY_OPERATORS[child.op]
    return child.parens or prec < parent_prec or (right and prec == parent_prec)


def format_expr(node: ast.Expr, indent: str = "") -> str:
    """One expression; chains break onto indented lines below ``indent``."""
    if isinstance(node, ast.Chain):
        # Iterative: real scripts have long chains, and recursion depth is limited.
        steps: list[ast.Chain] = []
        current: ast.Expr = node
        while isinstance(current, ast.Chain):
            steps.append(current)
            current = current.left
        parts = [format_expr(current, indent)]
        for chain in reversed(steps):
            step = indent + INDENT + (INDENT if chain.op != "|" else "")
            parts.append(f"\n{step}{chain.op}{_format_call(chain.call, step)}")
        return "".join(parts)
    if isinstance(node, ast.BinaryOp):
        prec = ast.BINARY_OPERATORS[node.op]
        left = format_expr(node.left, indent)
        if _needs_parens(node.left, prec, right=False):
            left = f"({left})"
        right = format_expr(node.right, indent)
        if _needs_parens(node.right, prec, right=True):
            right = f"({right})"
        return f"{left} {node.op} {right}"
    if isinstance(node, ast.UnaryOp):
        operand = format_expr(node.operand, indent)
        if isinstance(node.operand, ast.BinaryOp):
            operand = f"({operand})"
        return f"{node.op}{operand}"
    if isinstance(node, ast.Call):
        return _format_call(node, indent)
    if isinstance(node, ast.Lambda):
        inner = format_expr(node.expr, indent)
        if isinstance(node.expr, ast.BinaryOp) and node.expr.parens:
            inner = f"({inner})"
        return f"lambda: {inner}"
    if isinstance(node, ast.Identifier):
        return node.name
    if isinstance(node, ast.Reference):
        return format_reference(node.name)
    if isinstance(node, ast.StringLit):
        return format_string(node)
    if isinstance(node, ast.NumberInt):
        return f"0{node.value:o}" if node.octal else str(node.value)
    if isinstance(node, ast.NumberFloat):
        return format_float(node.value)
    if isinstance(node, ast.DurationLit):
        return node.literal or format_duration_literal(node.ns)
    if isinstance(node, ast.BoolLit):
        return "TRUE" if node.value else "FALSE"
    if isinstance(node, ast.RegexLit):
        return "/" + node.pattern.replace("/", "\\/") + "/"
    if isinstance(node, ast.Star):
        return "*"
    if isinstance(node, ast.ListLit):
        return "[" + ", ".join(format_expr(item, indent) for item in node.items) + "]"
    raise TypeError(f"not a TICKscript expression: {node!r}")


def _format_call(call: ast.Call, indent: str) -> str:
    if not call.parens and not call.args:
        return call.name
    args = ", ".join(_format_arg(arg, indent) for arg in call.args)
    return f"{call.name}({args})"


def _format_arg(arg: ast.Expr, indent: str) -> str:
    text = format_expr(arg, indent)
    if isinstance(arg, ast.BinaryOp) and arg.parens:
        return f"({text})"
    return text


def format_statement(node: ast.Statement) -> str:
    if isinstance(node, ast.VarDecl):
        if node.value is None:
            return f"var {node.name} {node.type_name}"
        return f"var {node.name} = {format_expr(node.value)}"
    if isinstance(node, ast.DBRP):
        return f"dbrp {format_reference(node.db)}.{format_reference(node.rp)}"
    return format_expr(node)


def format_program(program: ast.Program) -> str:
    """The whole script, one statement per line, a blank line around multi-line statements."""
    out: list[str] = []
    previous_multiline = False
    for index, stmt in enumerate(program.statements):
        text = format_statement(stmt)
        multiline = "\n" in text
        if index and (multiline or previous_multiline):
            out.append("")
        out.append(text)
        previous_multiline = multiline
    return "\n".join(out) + "\n" if out else ""


def format_node(node: ast.Node) -> str:
    """Any node: a whole program, a statement or an expression."""
    if isinstance(node, ast.Program):
        return format_program(node)
    if isinstance(node, (ast.VarDecl, ast.DBRP)):
        return format_statement(node)
    return format_expr(node)  # type: ignore[arg-type]  # every other node is an expression
