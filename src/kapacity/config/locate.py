"""Find where each key of a TOML or YAML document is, to point errors at line:column.

``tomllib`` keeps no positions, so :func:`toml_positions` scans the text: table headers
(``[a.b]``, ``[[a]]`` with a counter per array of tables) and ``key = value`` lines.
Values spanning lines (arrays, multi-line strings) are skipped over. Keys inside inline
tables are not located; the loader then falls back to the enclosing key's position.
YAML keeps marks on its nodes: :func:`yaml_positions` walks the composed node tree.
"""

from __future__ import annotations

import re
from typing import Final

import yaml

from kapacity.config.errors import FieldPath

__all__ = ["Positions", "toml_positions", "yaml_positions"]

Positions = dict[FieldPath, tuple[int, int]]

_BARE: Final = r"[A-Za-z0-9_-]+"
_KEY: Final = rf'(?:{_BARE}|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED: Final = re.compile(rf"\s*({_KEY}(?:\s*\.\s*{_KEY})*)\s*")
_KEY_PART: Final = re.compile(_KEY)
_HEADER: Final = re.compile(rf"\s*(\[\[?)\s*({_KEY}(?:\s*\.\s*{_KEY})*)\s*\]\]?")


def _split_key(dotted: str) -> list[str]:
    out: list[str] = []
    for m in _KEY_PART.finditer(dotted):
        part = m.group(0)
        if part[0] in "\"'":
            part = part[1:-1]
        out.append(part)
    return out


def _bracket_depth(text: str) -> int:
    """Net ``[``/``{`` nesting opened by a value fragment, ignoring strings and comments."""
    depth = 0
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        i += 1
    return depth


def toml_positions(text: str) -> Positions:
    """Map each table and key path (array-of-tables items indexed from 0) to (line, col)."""
    positions: Positions = {}
    arrays: dict[tuple[str, ...], int] = {}
    table: FieldPath = ()
    depth = 0
    multiline = ""
    lines = text.splitlines()
    for lineno, line in enumerate(lines, start=1):
        if multiline:
            if multiline in line:
                multiline = ""
            continue
        if depth > 0:
            depth += _bracket_depth(line)
            continue
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        col = len(line) - len(stripped) + 1
        header = _HEADER.match(line)
        if header and stripped.startswith("["):
            names = _split_key(header.group(2))
            if header.group(1) == "[[":
                arrays[tuple(names)] = arrays.get(tuple(names), 0) + 1
            table = _concrete(names, arrays)
            positions.setdefault(table, (lineno, col))
            if header.group(1) == "[[" and table[:-1] not in positions:
                positions[table[:-1]] = (lineno, col)
            continue
        m = _DOTTED.match(line)
        if m is None or not line[m.end() :].startswith("="):
            continue
        path = table + tuple(_split_key(m.group(1)))
        positions.setdefault(path, (lineno, col))
        value = line[m.end() + 1 :].lstrip()
        if value.startswith("["):
            start = len(line) - len(value)
            for i, item_pos in enumerate(_array_items(lines, lineno - 1, start)):
                positions.setdefault(path + (i,), item_pos)
        for delim in ('"""', "'''"):
            if value.startswith(delim) and value.count(delim) == 1:
                multiline = delim
        depth = _bracket_depth(value)
    return positions


def _array_items(lines: list[str], row: int, col: int) -> list[tuple[int, int]]:
    """1-based positions of the top-level items of the array opening at ``lines[row][col]``."""
    out: list[tuple[int, int]] = []
    depth = 0
    expecting = False
    quote = ""
    for r in range(row, len(lines)):
        line = lines[r]
        c = col if r == row else 0
        while c < len(line):
            ch = line[c]
            if quote:
                if ch == "\\" and quote == '"':
                    c += 1
                elif ch == quote:
                    quote = ""
            elif ch == "#":
                break
            elif ch in " \t":
                pass
            else:
                if depth == 1 and expecting and ch not in ",]":
                    out.append((r + 1, c + 1))
                    expecting = False
                if ch in "\"'":
                    quote = ch
                elif ch in "[{":
                    depth += 1
                    if depth == 1:
                        expecting = True
                elif ch in "]}":
                    depth -= 1
                    if depth == 0:
                        return out
                elif ch == "," and depth == 1:
                    expecting = True
            c += 1
    return out


def _concrete(names: list[str], arrays: dict[tuple[str, ...], int]) -> FieldPath:
    """The path of a header: ``[kafka.sasl-extensions]`` after the 2nd ``[[kafka]]`` is
    ``("kafka", 1, "sasl-extensions")``."""
    out: list[str | int] = []
    for i, name in enumerate(names):
        out.append(name)
        count = arrays.get(tuple(names[: i + 1]))
        if count:
            out.append(count - 1)
    return tuple(out)


def yaml_positions(text: str) -> Positions:
    """Map each key path to its key's (line, col); sequence items to the item's start."""
    positions: Positions = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return positions
    if root is not None:
        _walk(root, (), positions)
    return positions


def _walk(node: yaml.Node, path: FieldPath, out: Positions) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            sub = path + (key,)
            out.setdefault(sub, (key_node.start_mark.line + 1, key_node.start_mark.column + 1))
            _walk(value_node, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = path + (i,)
            out.setdefault(sub, (item.start_mark.line + 1, item.start_mark.column + 1))
            _walk(item, sub, out)
