"""The TICKscript syntax tree.

Every node is a frozen dataclass carrying ``line`` and ``col`` (1-based, where the
node's first token starts). Positions are excluded from ``==`` so that two trees
parsed from differently formatted sources compare equal when they mean the same
thing; formatting hints (``StringLit.triple``, ``NumberInt.octal``,
``DurationLit.literal``, ``BinaryOp.parens``) are excluded too.

Shape of a program::

    Program(statements=(
        VarDecl(name='warn', value=NumberInt(70)),
        DBRP(db='telegraf', rp='autogen'),
        Chain(                                 # stream|from().measurement('cpu')
            left=Chain(left=Identifier('stream'), op='|', call=Call('from', ())),
            op='.', call=Call('measurement', (StringLit('cpu'),))),
    ))

Chains are left-nested: the pipeline walks ``Chain.left`` down to the source
(``Identifier('stream')`` / ``Identifier('batch')`` or a variable name) and
applies each ``op`` / ``call`` on the way back up. ``op`` is ``'|'`` (new node),
``'.'`` (property) or ``'@'`` (UDF). A property written without parentheses
(``.noRecoveries``) is a ``Call`` with ``parens=False`` and no arguments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

__all__ = [
    "BINARY_OPERATORS",
    "BinaryOp",
    "BoolLit",
    "Call",
    "Chain",
    "DBRP",
    "DurationLit",
    "Expr",
    "FunctionCall",
    "Identifier",
    "Lambda",
    "ListLit",
    "Node",
    "NumberFloat",
    "NumberInt",
    "Program",
    "Reference",
    "RegexLit",
    "Star",
    "Statement",
    "StringLit",
    "UnaryOp",
    "VarDecl",
    "VAR_TYPES",
]

#: Lambda operators, lowest precedence first, as (precedence, operator) pairs.
BINARY_OPERATORS: dict[str, int] = {
    "OR": 0,
    "AND": 1,
    "==": 2,
    "!=": 2,
    "=~": 2,
    "!~": 2,
    "<": 3,
    "<=": 3,
    ">": 3,
    ">=": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
}

#: Types accepted by a typed declaration ``var x <type>`` (template tasks).
VAR_TYPES: tuple[str, ...] = (
    "int",
    "float",
    "bool",
    "string",
    "regex",
    "duration",
    "lambda",
    "list",
    "star",
)


@dataclass(frozen=True, slots=True)
class Node:
    """Base of every node: where it starts in the source (1-based)."""

    line: int = field(default=0, compare=False, kw_only=True, repr=False)
    col: int = field(default=0, compare=False, kw_only=True, repr=False)

    def format(self) -> str:
        """Canonical TICKscript for this node (see :mod:`kapacity.tick.formatter`)."""
        from kapacity.tick.formatter import format_node

        return format_node(self)


# --- literals ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumberInt(Node):
    """An integer literal; ``octal`` remembers a leading-zero spelling (``0755``)."""

    value: int
    octal: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class NumberFloat(Node):
    """A float literal (``1.5``, ``.5``, ``10.``)."""

    value: float


@dataclass(frozen=True, slots=True)
class DurationLit(Node):
    """A duration literal in nanoseconds; ``literal`` is the source spelling (``5m``)."""

    ns: int
    literal: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class StringLit(Node):
    """A ``'string'`` (escapes ``\\'`` removed) or ``'''raw string'''``."""

    value: str
    triple: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class BoolLit(Node):
    """``TRUE`` or ``FALSE``."""

    value: bool


@dataclass(frozen=True, slots=True)
class RegexLit(Node):
    """A ``/regex/``: ``pattern`` is the Go (RE2) source with ``\\/`` unescaped;
    ``compiled`` is the equivalent Python pattern."""

    pattern: str
    compiled: re.Pattern[str] = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Star(Node):
    """A standalone ``*`` (``groupBy(*)``)."""


@dataclass(frozen=True, slots=True)
class ListLit(Node):
    """``['a', 'b', ident, *]``: items are ``StringLit``, ``Identifier`` or ``Star``."""

    items: tuple[Expr, ...]


# --- names ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identifier(Node):
    """A bare name: ``stream``, a variable, or a constant in a lambda."""

    name: str


@dataclass(frozen=True, slots=True)
class Reference(Node):
    """A ``"double-quoted"`` name: a field or tag in a lambda, a db/rp name elsewhere."""

    name: str


# --- expressions ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lambda(Node):
    """``lambda: expr``."""

    expr: Expr


@dataclass(frozen=True, slots=True)
class BinaryOp(Node):
    """``left op right``; ``op`` is a key of :data:`BINARY_OPERATORS`."""

    op: str
    left: Expr
    right: Expr
    parens: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class UnaryOp(Node):
    """``-operand`` or ``!operand``."""

    op: str
    operand: Expr


@dataclass(frozen=True, slots=True)
class Call(Node):
    """``name(args…)``: a global function in a lambda or a chain step's method."""

    name: str
    args: tuple[Expr, ...] = ()
    parens: bool = True


#: The brief's name for a chain step's call; the same class.
FunctionCall = Call


@dataclass(frozen=True, slots=True)
class Chain(Node):
    """``left | call``, ``left . call`` or ``left @ call``; positioned at the operator."""

    left: Expr
    op: str
    call: Call


Expr = Union[
    NumberInt,
    NumberFloat,
    DurationLit,
    StringLit,
    BoolLit,
    RegexLit,
    Star,
    ListLit,
    Identifier,
    Reference,
    Lambda,
    BinaryOp,
    UnaryOp,
    Call,
    Chain,
]


# --- statements -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VarDecl(Node):
    """``var name = value`` (``type_name`` is None) or ``var name type`` (``value`` is None).

    A typed declaration has no value in the script: a template task's vars supply it.
    """

    name: str
    value: Expr | None = None
    type_name: str | None = None


@dataclass(frozen=True, slots=True)
class DBRP(Node):
    """``dbrp "db"."rp"``."""

    db: str
    rp: str


Statement = Union[VarDecl, DBRP, Expr]


@dataclass(frozen=True, slots=True)
class Program(Node):
    """A whole script."""

    statements: tuple[Statement, ...]
