"""The TICKscript language: parse scripts, format them, compile lambdas.

>>> from kapacity.tick import parse, format_program
>>> program = parse("stream|from().measurement('cpu')")
>>> print(format_program(program), end="")
stream
    |from()
        .measurement('cpu')
"""

from __future__ import annotations

from kapacity.tick._regex import compile_go_regex
from kapacity.tick.ast import (
    BINARY_OPERATORS,
    DBRP,
    VAR_TYPES,
    BinaryOp,
    BoolLit,
    Call,
    Chain,
    DurationLit,
    Expr,
    FunctionCall,
    Identifier,
    Lambda,
    ListLit,
    Node,
    NumberFloat,
    NumberInt,
    Program,
    Reference,
    RegexLit,
    Star,
    Statement,
    StringLit,
    UnaryOp,
    VarDecl,
)
from kapacity.tick.compiler import CompiledLambda, compile_lambda, lambda_references
from kapacity.tick.errors import LambdaError, TickError
from kapacity.tick.formatter import format_expr, format_program
from kapacity.tick.parser import parse, parse_duration, parse_lambda

__all__ = [
    "BINARY_OPERATORS",
    "DBRP",
    "VAR_TYPES",
    "BinaryOp",
    "BoolLit",
    "Call",
    "Chain",
    "CompiledLambda",
    "DurationLit",
    "Expr",
    "FunctionCall",
    "Identifier",
    "Lambda",
    "LambdaError",
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
    "TickError",
    "UnaryOp",
    "VarDecl",
    "compile_go_regex",
    "compile_lambda",
    "format_expr",
    "format_program",
    "lambda_references",
    "parse",
    "parse_duration",
    "parse_lambda",
]
