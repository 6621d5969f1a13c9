"""Splitting a body into logical lines.

A newline ends a line except inside a quoted string field value or right after
a backslash (InfluxDB's ``scanLine``). Only bodies that contain a ``"`` or a
``\\`` need this scanner; the others are split with ``str.split``.
"""

from __future__ import annotations

from collections.abc import Iterator


class _LineState:
    """Where the scan of the current logical line stands, across physical lines."""

    __slots__ = ("commas", "equals", "in_fields", "quoted")

    def __init__(self) -> None:
        self.in_fields = False
        self.quoted = False
        self.equals = 0
        self.commas = 0


def _continues(piece: str, state: _LineState) -> bool:
    """Scan ``piece`` (a physical line); true when the newline after it is not an end."""
    i = 0
    n = len(piece)
    while i < n:
        c = piece[i]
        if c == "\\":
            i += 2
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
        i += 1
    # ``i == n + 1``: a trailing backslash swallowed the newline.
    return state.quoted or i > n


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield ``(first physical line number, logical line)`` pairs, 1-based."""
    pieces = text.split("\n")
    total = len(pieces)
    k = 0
    while k < total:
        piece = pieces[k]
        lineno = k + 1
        k += 1
        if '"' not in piece and "\\" not in piece:
            yield lineno, piece
            continue
        state = _LineState()
        parts = [piece]
        while _continues(piece, state) and k < total:
            piece = pieces[k]
            k += 1
            parts.append(piece)
        yield lineno, "\n".join(parts)
