"""TICKscript tokenizer.

Lexing is context sensitive, as in Kapacitor: right after a value (identifier,
number, duration, reference, string or ``)``) the characters ``+ - * / %`` are
binary operators and ``=`` is assignment (a regex counts as a value too, where
Kapacitor would not look for an operator after it); anywhere else ``-`` and ``!`` are unary
operators, ``*`` is the star of ``groupBy(*)`` and ``/`` opens a regex. After
``=``, ``=~`` and ``!~`` a ``/`` opens a regex too.

A lexing error does not raise here: it ends the token list with an ``ERROR``
token, so that the parser reports whichever problem comes first in the source.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

# Token kinds. Operators use their own spelling as kind ("+", "==", "AND", ...).
IDENT = "identifier"
REF = "reference"
STRING = "string"
NUMBER = "number"
DURATION = "duration"
REGEX = "regex"
LAMBDA = "lambda"
VAR = "var"
DBRP = "dbrp"
TRUE = "TRUE"
FALSE = "FALSE"
STAR = "star"
NOT = "!"
ASSIGN = "="
EOF = "EOF"
ERROR = "ERROR"

KEYWORDS = {"AND": "AND", "OR": "OR", "TRUE": TRUE, "FALSE": FALSE, "var": VAR, "dbrp": DBRP}

EXPR_OPERATORS = frozenset(
    {"+", "-", "*", "/", "%", "AND", "OR", "==", "!=", "<", ">", "<=", ">=", "=~", "!~"}
)

DURATION_UNITS = "uµsmhdw"
_SINGLE = {"(": "(", "[": "[", "]": "]", "|": "|", "@": "@", ",": ","}


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, the source text it covers (or an error message) and its offset."""

    kind: str
    text: str
    pos: int


class Positions:
    """Maps character offsets to 1-based (line, column)."""

    def __init__(self, source: str) -> None:
        self._starts = [0] + [i + 1 for i, ch in enumerate(source) if ch == "\n"]

    def line_col(self, pos: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._starts, pos) - 1
        return index + 1, pos - self._starts[index] + 1


def _is_ident_char(ch: str) -> bool:
    # Letters, decimal digits (Go's unicode.IsDigit is the Nd category) and '_'.
    return ch.isalpha() or ch.isdecimal() or ch == "_"


def _is_digit(ch: str) -> bool:
    # ASCII only: Python's str.isdigit accepts superscripts that int() rejects.
    return "0" <= ch <= "9"


class _Lexer:
    def __init__(self, source: str) -> None:
        self.src = source
        self.n = len(source)
        self.i = 0
        self.tokens: list[Token] = []

    def peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.src[j] if j < self.n else ""

    def emit(self, kind: str, start: int) -> None:
        self.tokens.append(Token(kind, self.src[start : self.i], start))

    def fail(self, message: str, pos: int) -> None:
        self.tokens.append(Token(ERROR, message, pos))

    def skip_space(self) -> None:
        while self.i < self.n and self.src[self.i].isspace():
            self.i += 1

    def run(self) -> list[Token]:
        after_value = False
        while True:
            if after_value:
                status = self.binary_operator()
                if status == "error":
                    return self.tokens
                after_value = False
                if status == "regex":
                    if not self.regex():
                        return self.tokens
                    after_value = True
                    continue
            self.skip_space()
            if self.i >= self.n:
                self.tokens.append(Token(EOF, "", self.n))
                return self.tokens
            result = self.token()
            if result is None:
                return self.tokens
            after_value = result

    def token(self) -> bool | None:
        """Lex one token in operand position; True if it ends a value, None on error."""
        start = self.i
        ch = self.src[start]
        if ch in "-!":
            self.i += 1
            self.emit("-" if ch == "-" else NOT, start)
            return False
        if _is_digit(ch) or ch == ".":
            return self.number_duration_or_dot()
        if ch.isalpha():
            return self.identifier()
        if ch == '"':
            return self.reference()
        if ch == "'":
            return self.string()
        if ch == ")":
            self.i += 1
            self.emit(")", start)
            return True
        if ch in _SINGLE:
            self.i += 1
            self.emit(_SINGLE[ch], start)
            return False
        if ch == "*":
            self.i += 1
            self.emit(STAR, start)
            return False
        if ch == "=":
            # Only valid after a value; lexed anyway so the parser can say what it expected.
            self.i += 2 if self.peek(1) in ("=", "~") else 1
            text = self.src[start : self.i]
            self.emit(ASSIGN if text == "=" else text, start)
            return False
        if ch == "/":
            if self.peek(1) == "/":
                self.comment()
                return False
            return True if self.regex() else None
        self.fail(f"unexpected character {ch!r}", start)
        return None

    def binary_operator(self) -> str:
        """After a value: lex an operator if one follows. Returns 'ok', 'regex' or 'error'.

        Comments count as white space here: ``0 // note`` then ``/ 2`` on the next line is
        one division, as it is without the comment (a ``/`` never opens a regex right after
        a value)."""
        self.skip_space()
        while self.peek() == "/" and self.peek(1) == "/":
            self.comment()
            self.skip_space()
        start = self.i
        ch = self.peek()
        nxt = self.peek(1)
        if not ch:
            return "ok"
        if ch in "+-*%":
            self.i += 1
            self.emit(ch, start)
        elif ch == "/":
            self.i += 1
            self.emit("/", start)
        elif ch == "!":
            self.i += 2 if nxt in "=~" and nxt else 1
            text = self.src[start : self.i]
            self.emit(NOT if text == "!" else text, start)
            if text == "!~":
                return self._regex_follows()
        elif ch in "<>":
            self.i += 2 if nxt == "=" else 1
            self.emit(self.src[start : self.i], start)
        elif ch == "=":
            if nxt in ("~", "="):
                self.i += 2
                self.emit(self.src[start : self.i], start)
                if nxt == "~":
                    return self._regex_follows()
            else:
                self.i += 1
                self.emit(ASSIGN, start)
                return self._regex_follows()
        return "ok"

    def _regex_follows(self) -> str:
        self.skip_space()
        return "regex" if self.peek() == "/" else "ok"

    def comment(self) -> None:
        while self.i < self.n and self.src[self.i] != "\n":
            self.i += 1

    def number_duration_or_dot(self) -> bool | None:
        start = self.i
        if self.src[start] == "." and not _is_digit(self.peek(1)):
            self.i += 1
            self.emit(".", start)
            return False
        decimal = False
        while self.i < self.n:
            ch = self.src[self.i]
            if ch == ".":
                if decimal:
                    self.fail("multiple decimals in number", start)
                    return None
                decimal = True
            elif _is_digit(ch):
                pass
            elif not decimal and ch in DURATION_UNITS:
                self.i += 1
                if ch == "m" and self.peek() == "s":
                    self.i += 1
                self.emit(DURATION, start)
                return True
            else:
                break
            self.i += 1
        self.emit(NUMBER, start)
        return True

    def identifier(self) -> bool:
        start = self.i
        while self.i < self.n and _is_ident_char(self.src[self.i]):
            self.i += 1
        word = self.src[start : self.i]
        if word == "lambda" and self.peek() == ":":
            self.i += 1
            self.emit(LAMBDA, start)
            return False
        kind = KEYWORDS.get(word, IDENT)
        self.emit(kind, start)
        # Kapacitor also looks for a binary operator after AND / OR / var, which
        # makes `a AND -b` fail to parse; only values are followed by operators here.
        return kind in (IDENT, TRUE, FALSE)

    def reference(self) -> bool | None:
        start = self.i
        self.i += 1
        while self.i < self.n:
            ch = self.src[self.i]
            self.i += 1
            if ch == "\\" and self.peek() == '"':
                self.i += 1
            elif ch == '"':
                self.emit(REF, start)
                return True
        self.fail("unterminated reference, expected a closing '\"'", start)
        return None

    def string(self) -> bool | None:
        start = self.i
        if self.src.startswith("'''", start):
            end = self.src.find("'''", start + 3)
            if end == -1:
                self.fail("unterminated string, expected a closing \"'''\"", start)
                return None
            self.i = end + 3
            self.emit(STRING, start)
            return True
        self.i += 1
        while self.i < self.n:
            ch = self.src[self.i]
            self.i += 1
            if ch == "\\" and self.peek() == "'":
                self.i += 1
            elif ch == "'":
                self.emit(STRING, start)
                return True
        self.fail("unterminated string, expected a closing \"'\"", start)
        return None

    def regex(self) -> bool:
        start = self.i
        self.i += 1  # the opening '/'
        while self.i < self.n:
            ch = self.src[self.i]
            self.i += 1
            if ch == "\\" and self.peek() == "/":
                self.i += 1
            elif ch == "/":
                self.emit(REGEX, start)
                return True
        self.fail("unterminated regex, expected a closing '/'", start)
        return False


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens, ending with ``EOF`` (or ``ERROR`` on a lexing error)."""
    return _Lexer(source).run()
