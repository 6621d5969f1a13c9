"""TICKscript parser: source text to :mod:`kapacity.tick.ast`.

The grammar follows Kapacitor's (``tick/ast/parser.go``)::

    program     = { statement } EOF
    statement   = "var" IDENT ( "=" expression | TYPE ) | "dbrp" REF "." REF | expression
    expression  = IDENT chain | call chain | "lambda:" lexpr | "[" items "]" | lexpr
    chain       = { ( "|" call | "." ( call | IDENT ) | "@" ( call | IDENT ) ) }
    call        = IDENT "(" [ expression { "," expression } ] ")"
    lexpr       = operator-precedence over primary: OR < AND < == != =~ !~
                  < < <= > >= < + - < * / %   (all left-associative)
    primary     = "(" lexpr ")" | NUMBER | DURATION | STRING | TRUE | FALSE | REGEX
                | "*" | REF | IDENT | IDENT "(" [ lexpr { "," lexpr } ] ")"
                | ( "-" | "!" ) primary

Every error is a :class:`~kapacity.tick.errors.TickError` naming the line and
column and what was expected there.
"""

from __future__ import annotations

import math
import re
from typing import NoReturn, TypedDict

from kapacity.tick import ast
from kapacity.tick._regex import compile_go_regex
from kapacity.tick.errors import TickError
from kapacity.tick.lexer import (
    ASSIGN,
    DBRP,
    DURATION,
    EOF,
    ERROR,
    EXPR_OPERATORS,
    FALSE,
    IDENT,
    LAMBDA,
    NOT,
    NUMBER,
    REF,
    REGEX,
    STAR,
    STRING,
    TRUE,
    VAR,
    Positions,
    Token,
    tokenize,
)

_INT64_MAX = 2**63 - 1
NANOS = {
    "u": 1_000,
    "µ": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}
_DURATION_LITERAL = re.compile(r"([0-9]+)(ms|u|µ|s|m|h|d|w)")
_PREC = ast.BINARY_OPERATORS
_NOT_A_STATEMENT_START = frozenset({")", "]", ",", ".", "|", "@", ASSIGN})
_A_VALUE = "a value (number, duration, string, reference, identifier, TRUE, FALSE, regex, '(', '-' or '!')"


class _Pos(TypedDict):
    line: int
    col: int


def describe(tok: Token) -> str:
    """How a token is named in error messages."""
    if tok.kind == EOF:
        return "end of script"
    if tok.kind in (IDENT, NUMBER, DURATION, STRING, REF, REGEX):
        text = tok.text if len(tok.text) <= 40 else tok.text[:37] + "..."
        return f"{tok.kind} {text}"
    return repr(tok.text)


def parse_number(text: str) -> int | float:
    """A number literal's value, Go style: a leading ``0`` means octal."""
    if "." in text:
        value = float(text)
        if math.isinf(value):
            raise ValueError(f"illegal number syntax: {text!r} (out of range)")
        return value
    base = 8 if text.startswith("0") and len(text) > 1 else 10
    try:
        integer = int(text, base)
    except ValueError:
        raise ValueError(f"illegal number syntax: {text!r} (a leading 0 means octal)") from None
    if integer > _INT64_MAX:
        raise ValueError(f"illegal number syntax: {text!r} (out of int64 range)")
    return integer


def parse_duration(text: str) -> int:
    """A duration literal (``10s``, ``5m``, ``100ms``, ``1w``) in nanoseconds; ValueError if invalid."""
    match = _DURATION_LITERAL.fullmatch(text)
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: expected digits and a unit (u, µ, ms, s, m, h, d, w), e.g. 10s"
        )
    ns = int(match.group(1), 10) * NANOS[match.group(2)]
    if ns > _INT64_MAX:
        raise ValueError(f"duration {text!r} overflows int64 nanoseconds")
    return ns


def _unescape(body: str, quote: str) -> str:
    return body.replace("\\" + quote, quote)


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.positions = Positions(source)
        self.i = 0

    # --- token stream -------------------------------------------------------

    def peek(self, offset: int = 0) -> Token:
        j = min(self.i + offset, len(self.tokens) - 1)
        tok = self.tokens[j]
        if tok.kind == ERROR:
            # A lexing error surfaces when the parser reaches it.
            self.fail(tok, tok.text)
        return tok

    def next(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, kind: str, what: str) -> Token:
        tok = self.peek()
        if tok.kind != kind:
            self.unexpected(tok, what)
        self.i += 1
        return tok

    def where(self, tok: Token) -> _Pos:
        line, col = self.positions.line_col(tok.pos)
        return {"line": line, "col": col}

    def fail(self, tok: Token, message: str) -> NoReturn:
        line, col = self.positions.line_col(tok.pos)
        raise TickError(message, line, col)

    def too_deep(self) -> TickError:
        tok = self.tokens[min(self.i, len(self.tokens) - 1)]
        line, col = self.positions.line_col(tok.pos)
        return TickError("expression is nested too deeply", line, col)

    def unexpected(self, tok: Token, expected: str) -> NoReturn:
        self.fail(tok, f"unexpected {describe(tok)}, expected {expected}")

    # --- statements ---------------------------------------------------------

    def program(self) -> ast.Program:
        statements: list[ast.Statement] = []
        declared: dict[str, ast.VarDecl] = {}
        while self.peek().kind != EOF:
            stmt = self.statement()
            if isinstance(stmt, ast.VarDecl):
                first = declared.get(stmt.name)
                if first is not None:
                    raise TickError(
                        f"attempted to redefine {stmt.name} (declared at line {first.line} "
                        f"char {first.col}), vars are immutable",
                        stmt.line,
                        stmt.col,
                    )
                declared[stmt.name] = stmt
            statements.append(stmt)
        return ast.Program(tuple(statements), line=1, col=1)

    def statement(self) -> ast.Statement:
        tok = self.peek()
        kind = tok.kind
        if kind == VAR:
            return self.declaration()
        if kind == DBRP:
            return self.dbrp()
        if kind in _NOT_A_STATEMENT_START or kind in EXPR_OPERATORS and kind != "-":
            self.unexpected(tok, "a statement (var, dbrp or a chain such as stream|from())")
        return self.expression()

    def declaration(self) -> ast.VarDecl:
        var_tok = self.next()
        name = self.expect(IDENT, "a variable name after 'var'")
        if self.peek().kind == ASSIGN:
            self.next()
            value = self.expression()
            return ast.VarDecl(name.text, value, **self.where(var_tok))
        type_tok = self.peek()
        if type_tok.kind not in (IDENT, LAMBDA) or type_tok.text not in ast.VAR_TYPES:
            valid = ", ".join(ast.VAR_TYPES)
            self.unexpected(type_tok, f"'=' or a var type ({valid})")
        self.next()
        return ast.VarDecl(name.text, None, type_tok.text, **self.where(var_tok))

    def dbrp(self) -> ast.DBRP:
        tok = self.next()
        db = self.expect(REF, 'a database name in double quotes: dbrp "db"."rp"')
        self.expect(".", 'a \'.\' between database and retention policy: dbrp "db"."rp"')
        rp = self.expect(REF, 'a retention policy name in double quotes: dbrp "db"."rp"')
        return ast.DBRP(_unescape(db.text[1:-1], '"'), _unescape(rp.text[1:-1], '"'), **self.where(tok))

    def expression(self) -> ast.Expr:
        tok = self.peek()
        if tok.kind == IDENT:
            after = self.peek(1).kind
            if after == "(":
                term: ast.Expr = self.call(tok, lambda_args=False)
                if self.peek().kind in (".", "|", "@", VAR, IDENT):
                    return self.chain(term)
                return self.precedence(term, 0)
            if after in (".", "|", "@", VAR, IDENT):
                self.next()
                return self.chain(ast.Identifier(tok.text, **self.where(tok)))
            return self.lexpr()
        if tok.kind == LAMBDA:
            self.next()
            return ast.Lambda(self.lexpr(), **self.where(tok))
        if tok.kind == "[":
            return self.string_list()
        return self.lexpr()

    def chain(self, left: ast.Expr) -> ast.Expr:
        while self.peek().kind in (".", "|", "@"):
            op = self.next()
            name = self.peek()
            if name.kind != IDENT:
                what = "a node name" if op.text == "|" else "a property name"
                self.unexpected(name, f"{what} after '{op.text}'")
            if op.text == "|" or self.peek(1).kind == "(":
                call = self.call(name, lambda_args=False)
            else:
                self.next()
                call = ast.Call(name.text, (), parens=False, **self.where(name))
            left = ast.Chain(left, op.text, call, **self.where(op))
        return left

    def call(self, name: Token, *, lambda_args: bool) -> ast.Call:
        self.next()
        self.expect("(", f"'(' after {name.text}")
        args: list[ast.Expr] = []
        while self.peek().kind != ")":
            if self.peek().kind == EOF:
                self.unexpected(self.peek(), f"an argument or ')' to close {name.text}(")
            args.append(self.lexpr() if lambda_args else self.expression())
            if self.peek().kind != ",":
                break
            self.next()
        close = self.peek()
        if close.kind != ")":
            self.unexpected(close, f"',' or ')' in the arguments of {name.text}()")
        self.next()
        return ast.Call(name.text, tuple(args), **self.where(name))

    def string_list(self) -> ast.ListLit:
        open_tok = self.next()
        items: list[ast.Expr] = []
        while self.peek().kind != "]":
            tok = self.next()
            if tok.kind == IDENT:
                items.append(ast.Identifier(tok.text, **self.where(tok)))
            elif tok.kind == STRING:
                items.append(self.string(tok))
            elif tok.kind == STAR:
                items.append(ast.Star(**self.where(tok)))
            else:
                self.unexpected(tok, "a list item (string, identifier or *)")
            if self.peek().kind != ",":
                break
            self.next()
        close = self.peek()
        if close.kind != "]":
            self.unexpected(close, "',' or ']' in a list")
        self.next()
        return ast.ListLit(tuple(items), **self.where(open_tok))

    # --- lambda expressions -------------------------------------------------

    def lexpr(self) -> ast.Expr:
        return self.precedence(self.primary(), 0)

    def precedence(self, left: ast.Expr, min_prec: int) -> ast.Expr:
        look = self.peek()
        while look.kind in EXPR_OPERATORS and _PREC[look.kind] >= min_prec:
            op = self.next()
            right = self.primary()
            look = self.peek()
            while look.kind in EXPR_OPERATORS and _PREC[look.kind] > _PREC[op.kind]:
                right = self.precedence(right, _PREC[look.kind])
                look = self.peek()
            left = ast.BinaryOp(op.kind, left, right, **self.where(op))
        return left

    def primary(self) -> ast.Expr:
        tok = self.peek()
        kind = tok.kind
        if kind == "(":
            self.next()
            inner = self.lexpr()
            close = self.peek()
            if close.kind != ")":
                self.unexpected(close, "')' or an operator")
            self.next()
            if isinstance(inner, ast.BinaryOp):
                return ast.BinaryOp(
                    inner.op, inner.left, inner.right, parens=True, line=inner.line, col=inner.col
                )
            return inner
        if kind == IDENT:
            if self.peek(1).kind == "(":
                return self.call(tok, lambda_args=True)
            self.next()
            return ast.Identifier(tok.text, **self.where(tok))
        if kind in ("-", NOT):
            self.next()
            return ast.UnaryOp(tok.text, self.primary(), **self.where(tok))
        self.next()
        pos = self.where(tok)
        if kind == NUMBER:
            try:
                value = parse_number(tok.text)
            except ValueError as exc:
                self.fail(tok, str(exc))
            if isinstance(value, float):
                return ast.NumberFloat(value, **pos)
            return ast.NumberInt(value, octal=tok.text.startswith("0") and len(tok.text) > 1, **pos)
        if kind == DURATION:
            try:
                return ast.DurationLit(parse_duration(tok.text), tok.text, **pos)
            except ValueError as exc:
                self.fail(tok, str(exc))
        if kind == STRING:
            return self.string(tok)
        if kind in (TRUE, FALSE):
            return ast.BoolLit(kind == TRUE, **pos)
        if kind == REGEX:
            pattern = _unescape(tok.text[1:-1], "/")
            try:
                compiled = compile_go_regex(pattern)
            except ValueError as exc:
                self.fail(tok, f"invalid regex {tok.text}: {exc}")
            return ast.RegexLit(pattern, compiled, **pos)
        if kind == STAR:
            return ast.Star(**pos)
        if kind == REF:
            return ast.Reference(_unescape(tok.text[1:-1], '"'), **pos)
        self.i -= 1
        self.unexpected(tok, _A_VALUE)

    def string(self, tok: Token) -> ast.StringLit:
        text = tok.text
        if len(text) >= 6 and text.startswith("'''"):
            return ast.StringLit(text[3:-3], triple=True, **self.where(tok))
        return ast.StringLit(_unescape(text[1:-1], "'"), **self.where(tok))


def parse(source: str) -> ast.Program:
    """Parse a whole TICKscript.

    >>> parse("stream|from().measurement('cpu')").statements[0].call.name
    'measurement'
    """
    parser = _Parser(source)
    try:
        return parser.program()
    except RecursionError:
        raise parser.too_deep() from None


def parse_lambda(source: str) -> ast.Expr:
    """Parse a bare lambda expression (what follows ``lambda:``), e.g. a handler's match."""
    parser = _Parser(source)
    try:
        expr = parser.lexpr()
    except RecursionError:
        raise parser.too_deep() from None
    tok = parser.peek()
    if tok.kind != EOF:
        parser.unexpected(tok, "an operator or the end of the expression")
    return expr


__all__ = ["parse", "parse_lambda", "parse_number", "parse_duration", "describe", "NANOS"]
