"""Tokenizer for Go template text, following ``text/template/parse/lex.go``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Token kinds.
ERROR: Final = "error"
EOF: Final = "EOF"
TEXT: Final = "text"
COMMENT: Final = "comment"
LEFT_DELIM: Final = "{{"
RIGHT_DELIM: Final = "}}"
SPACE: Final = "space"
BOOL: Final = "bool"
CHAR: Final = "char"  # single-character punctuation such as ','
CHAR_CONSTANT: Final = "charconst"
NUMBER: Final = "number"
STRING: Final = "string"
RAW_STRING: Final = "rawstring"
FIELD: Final = "field"
IDENTIFIER: Final = "identifier"
VARIABLE: Final = "variable"
LEFT_PAREN: Final = "("
RIGHT_PAREN: Final = ")"
PIPE: Final = "|"
ASSIGN: Final = "="
DECLARE: Final = ":="
DOT: Final = "."
NIL: Final = "nil"

KEYWORDS: Final = {
    "block": "block",
    "break": "break",
    "continue": "continue",
    "define": "define",
    "else": "else",
    "end": "end",
    "if": "if",
    "range": "range",
    "nil": NIL,
    "template": "template",
    "with": "with",
}
KEYWORD_KINDS: Final = frozenset(KEYWORDS.values()) | {DOT}

_SPACE_CHARS: Final = " \t\r\n"
_LEFT: Final = "{{"
_RIGHT: Final = "}}"
_LEFT_TRIM: Final = "{{- "
_RIGHT_TRIM: Final = " -}}"


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    val: str
    pos: int

    def describe(self) -> str:
        """How Go's parser names a token in ``unexpected ...`` messages."""
        if self.kind == EOF:
            return "EOF"
        if self.kind == ERROR:
            return self.val
        if self.kind in KEYWORD_KINDS:
            return f"<{self.val}>"
        text = self.val
        if len(text) > 10:
            return _go_quote(text[:10]) + "..."
        return _go_quote(text)


def _go_quote(s: str) -> str:
    from kapacity.gotmpl.gofmt import go_quote

    return go_quote(s)


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalpha() or c.isdigit()


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []
        self.paren_depth = 0

    def emit(self, kind: str, start: int, end: int) -> None:
        self.tokens.append(Token(kind, self.text[start:end], start))

    def error(self, msg: str, pos: int) -> None:
        self.tokens.append(Token(ERROR, msg, pos))

    def run(self) -> list[Token]:
        text = self.text
        pos = 0
        n = len(text)
        while True:
            j = text.find(_LEFT, pos)
            if j < 0:
                if pos < n:
                    self.emit(TEXT, pos, n)
                self.tokens.append(Token(EOF, "", n))
                return self.tokens
            trim = text.startswith(_LEFT_TRIM, j) or (
                text.startswith("{{-", j) and j + 3 < n and text[j + 3] in _SPACE_CHARS
            )
            end_text = j
            if trim:
                while end_text > pos and text[end_text - 1] in _SPACE_CHARS:
                    end_text -= 1
            if end_text > pos:
                self.emit(TEXT, pos, end_text)
            after = j + 2 + (2 if trim else 0)
            # Comments must follow the delimiter (and trim marker) directly.
            if text.startswith("/*", after):
                nxt = self.comment(j, after)
            else:
                self.tokens.append(Token(LEFT_DELIM, _LEFT, j))
                self.paren_depth = 0
                nxt = self.inside_action(after)
            if nxt < 0:
                self.tokens.append(Token(EOF, "", n))
                return self.tokens
            pos = nxt

    def at_right_trim(self, pos: int) -> bool:
        """Any space character, then "-}}" (Go's right trim marker)."""
        text = self.text
        return pos < len(text) and text[pos] in _SPACE_CHARS and text.startswith("-" + _RIGHT, pos + 1)

    def at_right_delim(self, pos: int) -> tuple[bool, bool]:
        if self.at_right_trim(pos):
            return True, True
        if self.text.startswith(_RIGHT, pos):
            return True, False
        return False, False

    def after_right(self, pos: int, trim: bool) -> int:
        """Position after the right delimiter, skipping spaces when trimming."""
        pos += len(_RIGHT_TRIM) if trim else len(_RIGHT)
        if trim:
            while pos < len(self.text) and self.text[pos] in _SPACE_CHARS:
                pos += 1
        return pos

    def comment(self, start: int, pos: int) -> int:
        x = self.text.find("*/", pos + 2)
        if x < 0:
            self.error("unclosed comment", start)
            return -1
        pos = x + 2
        delim, trim = self.at_right_delim(pos)
        if not delim:
            self.error("comment ends before closing delimiter", start)
            return -1
        self.tokens.append(Token(COMMENT, self.text[start:pos], start))
        return self.after_right(pos, trim)

    def inside_action(self, pos: int) -> int:  # noqa: C901 - one state machine, as in Go
        text = self.text
        n = len(text)
        while True:
            delim, trim = self.at_right_delim(pos)
            if delim:
                if self.paren_depth != 0:
                    self.error("unclosed left paren", pos)
                    return -1
                self.tokens.append(Token(RIGHT_DELIM, _RIGHT, pos))
                return self.after_right(pos, trim)
            if pos >= n:
                self.error("unclosed action", pos)
                return -1
            c = text[pos]
            if c in _SPACE_CHARS:
                start = pos
                # A space run that ends at " -}}" keeps the marker's space for the delimiter.
                while pos < n and text[pos] in _SPACE_CHARS:
                    if self.at_right_trim(pos):
                        break
                    pos += 1
                if pos > start:
                    self.emit(SPACE, start, pos)
                continue
            if c == "=":
                self.emit(ASSIGN, pos, pos + 1)
                pos += 1
            elif c == ":":
                if pos + 1 < n and text[pos + 1] == "=":
                    self.emit(DECLARE, pos, pos + 2)
                    pos += 2
                else:
                    self.error("expected :=", pos)
                    return -1
            elif c == "|":
                self.emit(PIPE, pos, pos + 1)
                pos += 1
            elif c == '"':
                pos = self.quote(pos)
                if pos < 0:
                    return -1
            elif c == "`":
                end = text.find("`", pos + 1)
                if end < 0:
                    self.error("unterminated raw quoted string", pos)
                    return -1
                self.emit(RAW_STRING, pos, end + 1)
                pos = end + 1
            elif c == "$":
                end = pos + 1
                while end < n and _is_alnum(text[end]):
                    end += 1
                if not self.at_terminator(end):
                    self.error(f"bad character {_unicode(text[end])}", end)
                    return -1
                self.emit(VARIABLE, pos, end)
                pos = end
            elif c == "'":
                pos = self.char_constant(pos)
                if pos < 0:
                    return -1
            elif c == ".":
                if pos + 1 < n and text[pos + 1].isdigit() and text[pos + 1].isascii():
                    pos = self.number(pos)
                    if pos < 0:
                        return -1
                    continue
                end = pos + 1
                while end < n and _is_alnum(text[end]):
                    end += 1
                if end == pos + 1:
                    self.emit(DOT, pos, end)
                else:
                    if not self.at_terminator(end):
                        self.error(f"bad character {_unicode(text[end])}", end)
                        return -1
                    self.emit(FIELD, pos, end)
                pos = end
            elif c in "+-" or (c.isdigit() and c.isascii()):
                pos = self.number(pos)
                if pos < 0:
                    return -1
            elif c == "_" or c.isalpha():
                end = pos
                while end < n and _is_alnum(text[end]):
                    end += 1
                if not self.at_terminator(end):
                    self.error(f"bad character {_unicode(text[end])}", end)
                    return -1
                word = text[pos:end]
                if word in KEYWORDS:
                    self.emit(KEYWORDS[word], pos, end)
                elif word in ("true", "false"):
                    self.emit(BOOL, pos, end)
                else:
                    self.emit(IDENTIFIER, pos, end)
                pos = end
            elif c == "(":
                self.emit(LEFT_PAREN, pos, pos + 1)
                self.paren_depth += 1
                pos += 1
            elif c == ")":
                self.paren_depth -= 1
                if self.paren_depth < 0:
                    self.error("unexpected right paren", pos)
                    return -1
                self.emit(RIGHT_PAREN, pos, pos + 1)
                pos += 1
            elif c.isascii() and c.isprintable():
                self.emit(CHAR, pos, pos + 1)
                pos += 1
            else:
                self.error(f"unrecognized character in action: {_unicode(c)}", pos)
                return -1

    def at_terminator(self, pos: int) -> bool:
        if pos >= len(self.text):
            return True
        c = self.text[pos]
        if c in _SPACE_CHARS or c in ".,|:()":
            return True
        return self.text.startswith(_RIGHT, pos)

    def quote(self, start: int) -> int:
        text = self.text
        pos = start + 1
        n = len(text)
        while True:
            if pos >= n or text[pos] == "\n":
                self.error("unterminated quoted string", start)
                return -1
            c = text[pos]
            if c == "\\":
                pos += 2
                continue
            if c == '"':
                break
            pos += 1
        self.emit(STRING, start, pos + 1)
        return pos + 1

    def char_constant(self, start: int) -> int:
        text = self.text
        pos = start + 1
        n = len(text)
        while True:
            if pos >= n or text[pos] == "\n":
                self.error("unterminated character constant", start)
                return -1
            c = text[pos]
            if c == "\\":
                pos += 2
                continue
            if c == "'":
                break
            pos += 1
        self.emit(CHAR_CONSTANT, start, pos + 1)
        return pos + 1

    def number(self, start: int) -> int:
        text = self.text
        n = len(text)
        pos = start
        if pos < n and text[pos] in "+-":
            pos += 1
        digits = "0123456789_"
        if text.startswith(("0x", "0X"), pos):
            pos += 2
            digits = "0123456789abcdefABCDEF_"
        elif text.startswith(("0o", "0O"), pos):
            pos += 2
            digits = "01234567_"
        elif text.startswith(("0b", "0B"), pos):
            pos += 2
            digits = "01_"
        while pos < n and text[pos] in digits:
            pos += 1
        if pos < n and text[pos] == ".":
            pos += 1
            while pos < n and text[pos] in digits:
                pos += 1
        if len(digits) == 11 and pos < n and text[pos] in "eE":
            pos += 1
            if pos < n and text[pos] in "+-":
                pos += 1
            while pos < n and text[pos] in "0123456789_":
                pos += 1
        if len(digits) == 23 and pos < n and text[pos] in "pP":
            pos += 1
            if pos < n and text[pos] in "+-":
                pos += 1
            while pos < n and text[pos] in "0123456789_":
                pos += 1
        if pos < n and text[pos] == "i":
            pos += 1
        if pos < n and _is_alnum(text[pos]):
            end = pos + 1
            self.error(f"bad number syntax: {_go_quote(text[start:end])}", start)
            return -1
        self.emit(NUMBER, start, pos)
        return pos


def _unicode(c: str) -> str:
    """Go's ``%#U``: ``U+007D '}'``."""
    r = ord(c)
    text = f"U+{r:04X}"
    if c.isprintable():
        text += f" '{c}'"
    return text


def lex(text: str) -> list[Token]:
    """All tokens of ``text``; an ERROR token (if any) is followed by EOF."""
    return _Lexer(text).run()
