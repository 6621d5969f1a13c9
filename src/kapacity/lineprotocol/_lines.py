"""Splitting a body into logical lines.

A newline ends a line except inside a quoted string field value or right after
a backslash (InfluxDB's ``scanLine``). Only bodies that contain a ``"`` or a
``\\`` need this scanner; the others are split with ``str.split``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_LINE_SPECIAL = re.compile(r'[\\ =,"]')


class _LineState:
    """Where the scan of the current logical line stands, across physical lines."""

    __slots__ = ("commas", "equals", "in_fields", "quoted")

    def __init__(self) -> None:
        self.in_fields = False
        self.quoted = False
        self.equals = 0
        self.commas = 0


def _continues(piece: str, state: _LineState) -> bool:
    """Scan ``piece`` (a physical line); true when the newline after it is not an end.

    Only the characters that matter are visited (found by a regex in C); a
    backslash hides the character right after it.
    """
    hidden = -1
    for found in _LINE_SPECIAL.finditer(piece):
        i = found.start()
        if i == hidden:
            continue
        c = piece[i]
        if c == "\\":
            hidden = i + 1
            continue
        if c == " ":
            state.in_fields = True
        if state.in_fields:
            if c == "=" and not state.quoted:
                state.equals += 1
            elif c == "," and not state.quoted:
                state.commas += 1
            elif c == '"' and state.equals > state.commas:
                state.quoted = not state.quoted
    # A backslash ending the piece hides the newline itself.
    return state.quoted or hidden == len(piece)


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield ``(first physical line number, logical line)`` pairs, 1-based."""
    pieces = text.split("\n")
    total = len(pieces)
    k = 0
    while k < total:
        piece = pieces[k]
        lineno = k + 1
        k += 1
        if '"' not in piece and piece[-1:] != "\\":
            # Without quotes only a backslash hiding the newline joins lines.
            yield lineno, piece
            continue
        state = _LineState()
        parts = [piece]
        while _continues(piece, state) and k < total:
            piece = pieces[k]
            k += 1
            parts.append(piece)
        yield lineno, "\n".join(parts)
