"""Topic handler specs: ``define-topic-handler`` files and the handlers API bodies.

A spec binds a handler (``kind`` + ``options``) to an alert topic::

    id: kafka-cpu
    topic: cpu
    kind: kafka
    match: changed() == TRUE AND level() >= WARNING
    options:
      cluster: infra
      topic: alerts

The spec is checked here (names, kind, unknown keys, that ``match`` compiles);
``options`` are checked by the handler module of the kind. Errors name the file, the line:column when
known, the offending key or value, and the valid choices.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kapacity.alert.match import MatchError, compile_match
from kapacity.errors import KapacityError

#: Handler kinds a topic handler may use.
KINDS: tuple[str, ...] = ("kafka", "log", "post", "tcp", "exec")

#: File formats of handler files, by extension.
FORMATS: tuple[str, ...] = ("yaml", "yml", "json")

_KEYS: tuple[str, ...] = ("id", "topic", "kind", "match", "options")
_ID_EXTRA = "-._"
_TOPIC_EXTRA = "-:._"


class HandlerSpecError(KapacityError, ValueError):
    """An invalid handler spec; ``source``, ``line`` and ``col`` say where when known."""

    def __init__(
        self, message: str, source: str = "", line: int | None = None, col: int | None = None
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.col = col
        where = source
        if line is not None:
            where += f":{line}" + (f":{col}" if col is not None else "")
        super().__init__(f"{where}: {message}" if where else message)


def _valid_name(value: str, extra: str) -> bool:
    # Kapacitor's ``^[-\._\p{L}0-9]+$``: str.isalpha is exactly Unicode category L*.
    return bool(value) and all(c.isalpha() or "0" <= c <= "9" or c in extra for c in value)


def validate_handler_id(value: str) -> None:
    if not _valid_name(value, _ID_EXTRA):
        raise HandlerSpecError(
            f"invalid handler id {value!r}: use only letters, digits, '-', '.' and '_'"
        )


def validate_topic_id(value: str) -> None:
    if not _valid_name(value, _TOPIC_EXTRA):
        raise HandlerSpecError(
            f"invalid topic {value!r}: use only letters, digits, '-', ':', '.' and '_'"
        )


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """A validated topic handler."""

    id: str
    topic: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    match: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in Kapacitor's field order (what PATCH documents are applied to)."""
        return {
            "id": self.id,
            "topic": self.topic,
            "kind": self.kind,
            "options": json.loads(json.dumps(self.options)),
            "match": self.match,
        }

    @classmethod
    def from_dict(
        cls,
        data: Any,
        *,
        topic: str | None = None,
        source: str = "",
        kinds: Iterable[str] = KINDS,
    ) -> HandlerSpec:
        """Validate a decoded spec; ``topic`` (from an API URL) overrides the body's."""
        return _build(data, topic=topic, source=source, kinds=tuple(kinds), positions={})


def _mark(positions: Mapping[str, tuple[int, int]], key: str) -> tuple[int | None, int | None]:
    line, col = positions.get(key, (None, None))
    return line, col


def _json_value(value: Any, where: str, source: str) -> None:
    """Options must survive JSON (they are stored and served as JSON)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _json_value(item, f"{where}[{i}]", source)
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise HandlerSpecError(f"{where}: key {k!r} must be a string", source)
            _json_value(item, f"{where}.{k}", source)
        return
    raise HandlerSpecError(
        f"{where}: unsupported value {value!r} ({type(value).__name__}); "
        "use strings, numbers, booleans, lists or mappings",
        source,
    )


def _build(
    data: Any,
    *,
    topic: str | None,
    source: str,
    kinds: tuple[str, ...],
    positions: Mapping[str, tuple[int, int]],
    raw_scalars: Mapping[str, str] | None = None,
) -> HandlerSpec:
    if not isinstance(data, dict):
        raise HandlerSpecError(
            f"a handler spec must be a mapping with keys {', '.join(_KEYS)}, "
            f"got {type(data).__name__}",
            source,
        )
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).lower()
        if name not in _KEYS:
            line, col = _mark(positions, str(key))
            raise HandlerSpecError(
                f"unknown key {str(key)!r} (valid keys: {', '.join(_KEYS)})", source, line, col
            )
        values[name] = value
        if raw_scalars and str(key) in raw_scalars and name != "options":
            values[name] = raw_scalars[str(key)]

    def text(name: str, required: bool) -> str:
        value = values.get(name)
        line, col = _mark(positions, name)
        if value is None:
            if required:
                raise HandlerSpecError(f"missing required key {name!r}", source, line, col)
            return ""
        if not isinstance(value, str):
            raise HandlerSpecError(
                f"{name!r} must be a string, got {type(value).__name__}", source, line, col
            )
        return value

    spec_id = text("id", True)
    spec_topic = topic if topic is not None else text("topic", True)
    kind = text("kind", True)
    match = text("match", False)
    for check, name, value in (
        (validate_handler_id, "id", spec_id),
        (validate_topic_id, "topic", spec_topic),
    ):
        try:
            check(value)
        except HandlerSpecError as err:
            line, col = _mark(positions, name)
            raise HandlerSpecError(err.message, source, line, col) from None
    if match:
        try:
            compile_match(match)
        except MatchError as err:
            line, col = _mark(positions, "match")
            raise HandlerSpecError(f"match: {err}", source, line, col) from None
    if kind not in kinds:
        line, col = _mark(positions, "kind")
        raise HandlerSpecError(
            f"unknown handler kind {kind!r} (valid kinds: {', '.join(kinds)})", source, line, col
        )
    options = values.get("options")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        line, col = _mark(positions, "options")
        raise HandlerSpecError(
            f"'options' must be a mapping, got {type(options).__name__}", source, line, col
        )
    _json_value(options, "options", source)
    return HandlerSpec(spec_id, spec_topic, kind, options, match)


def _yaml_positions(text: str) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """Top-level key → (line, col) and the raw text of top-level scalars.

    Go's YAML decoder reads ``id: 123`` into a string field as ``"123"``; the
    raw scalar text lets us do the same.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}, {}
    positions: dict[str, tuple[int, int]] = {}
    raw: dict[str, str] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            positions[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if isinstance(value_node, yaml.ScalarNode) and value_node.tag != "tag:yaml.org,2002:null":
                raw[key] = str(value_node.value)
    return positions, raw


def parse_handler_spec(
    text: str,
    fmt: str,
    source: str = "<input>",
    *,
    topic: str | None = None,
    kinds: Iterable[str] = KINDS,
) -> HandlerSpec:
    """Parse and validate a handler file's text; ``fmt`` is ``yaml``, ``yml`` or ``json``."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise HandlerSpecError(f"unknown format {fmt!r} (valid formats: {', '.join(FORMATS)})", source)
    raw: dict[str, str] | None = None
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise HandlerSpecError(f"invalid JSON: {err.msg}", source, err.lineno, err.colno) from None
        # JSON is YAML, so the YAML composer finds the keys' positions.
        positions, _ = _yaml_positions(text)
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark
            line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
            raise HandlerSpecError(f"invalid YAML: {err.problem}", source, line, col) from None
        except yaml.YAMLError as err:
            raise HandlerSpecError(f"invalid YAML: {err}", source) from None
        positions, raw = _yaml_positions(text)
    return _build(
        data, topic=topic, source=source, kinds=tuple(kinds), positions=positions, raw_scalars=raw
    )


def load_handler_file(path: str | os.PathLike[str], *, kinds: Iterable[str] = KINDS) -> HandlerSpec:
    """Read a ``.yaml``/``.yml``/``.json`` handler file (``define-topic-handler``)."""
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise HandlerSpecError(
            f"unknown handler file extension {p.suffix!r} (valid: .yaml, .yml, .json)", str(p)
        )
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise HandlerSpecError(f"cannot read handler file: {err.strerror}", str(p)) from None
    except UnicodeDecodeError:
        raise HandlerSpecError("handler file is not UTF-8 text", str(p)) from None
    return parse_handler_spec(text, fmt, str(p), kinds=kinds)


def handler_spec_from_json(
    body: bytes | str, *, topic: str, kinds: Iterable[str] = KINDS
) -> HandlerSpec:
    """An API body (``POST``/``PUT /alerts/topics/<topic>/handlers``); the URL's topic wins."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise HandlerSpecError("invalid handler json: body is not UTF-8") from None
    return parse_handler_spec(text, "json", "request body", topic=topic, kinds=kinds)


# --- RFC 6902 JSON Patch (handler PATCH) -----------------------------------------


class JSONPatchError(KapacityError, ValueError):
    """A patch that cannot be applied; names the operation (index, op, path)."""


_PATCH_OPS = ("add", "remove", "replace", "move", "copy", "test")


def _pointer(text: Any, where: str) -> list[str]:
    """RFC 6901: ``/a/b~1c`` → ``["a", "b/c"]``; ``""`` is the whole document."""
    if not isinstance(text, str):
        raise JSONPatchError(f"{where}: a JSON pointer must be a string, got {text!r}")
    if text == "":
        return []
    if not text.startswith("/"):
        raise JSONPatchError(f"{where}: JSON pointer {text!r} must start with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in text[1:].split("/")]


def _index(token: str, size: int, where: str, *, allow_end: bool) -> int:
    if allow_end and token == "-":
        return size
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        raise JSONPatchError(f"{where}: {token!r} is not an array index")
    index = int(token)
    limit = size if allow_end else size - 1
    if index > limit:
        raise JSONPatchError(f"{where}: index {index} is out of range (array has {size} items)")
    return index


def _parent(doc: Any, tokens: list[str], where: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise JSONPatchError(f"{where}: path not found ({token!r} is missing)")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, len(node), where, allow_end=False)]
        else:
            raise JSONPatchError(f"{where}: path not found ({token!r} is inside a scalar)")
    return node


def _get(doc: Any, tokens: list[str], where: str) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens, where)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise JSONPatchError(f"{where}: path not found ({last!r} is missing)")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(last, len(parent), where, allow_end=False)]
    raise JSONPatchError(f"{where}: path not found ({last!r} is inside a scalar)")


def _add(doc: Any, tokens: list[str], value: Any, where: str) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens, where)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), where, allow_end=True), value)
    else:
        raise JSONPatchError(f"{where}: cannot add inside a scalar")
    return doc


def _remove(doc: Any, tokens: list[str], where: str) -> Any:
    if not tokens:
        raise JSONPatchError(f"{where}: cannot remove the whole document")
    _get(doc, tokens, where)
    parent = _parent(doc, tokens, where)
    if isinstance(parent, dict):
        del parent[tokens[-1]]
    else:
        del parent[_index(tokens[-1], len(parent), where, allow_end=False)]
    return doc


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1`` (unlike Python's ``==``), ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def apply_json_patch(doc: Any, ops: Any) -> Any:
    """Apply an RFC 6902 patch; returns a new document (``doc`` is not modified).

    All or nothing: on error a :class:`JSONPatchError` names the failing operation.

    >>> apply_json_patch({"a": 1}, [{"op": "replace", "path": "/a", "value": 2}])
    {'a': 2}
    """
    if not isinstance(ops, list):
        raise JSONPatchError("a JSON patch must be an array of operations")
    result = json.loads(json.dumps(doc))
    for n, op in enumerate(ops):
        if not isinstance(op, dict):
            raise JSONPatchError(f"patch operation {n}: must be an object, got {op!r}")
        name = op.get("op")
        if name not in _PATCH_OPS:
            raise JSONPatchError(
                f"patch operation {n}: unknown op {name!r} (valid ops: {', '.join(_PATCH_OPS)})"
            )
        where = f"patch operation {n} ({name} {op.get('path')!r})"
        if "path" not in op:
            raise JSONPatchError(f"{where}: missing 'path'")
        path = _pointer(op["path"], where)
        if name in ("add", "replace", "test") and "value" not in op:
            raise JSONPatchError(f"{where}: missing 'value'")
        if name in ("move", "copy") and "from" not in op:
            raise JSONPatchError(f"{where}: missing 'from'")
        if name == "add":
            result = _add(result, path, json.loads(json.dumps(op["value"])), where)
        elif name == "remove":
            result = _remove(result, path, where)
        elif name == "replace":
            _get(result, path, where)  # the target must exist
            value = json.loads(json.dumps(op["value"]))
            if not path:
                result = value
            else:
                parent = _parent(result, path, where)
                key: Any = path[-1]
                if isinstance(parent, list):
                    key = _index(path[-1], len(parent), where, allow_end=False)
                parent[key] = value
        elif name == "test":
            if not json_equal(_get(result, path, where), op["value"]):
                raise JSONPatchError(f"{where}: test failed, value differs")
        else:
            source = _pointer(op["from"], where)
            value = json.loads(json.dumps(_get(result, source, where)))
            if name == "move":
                if path[: len(source)] == source and len(path) > len(source):
                    raise JSONPatchError(f"{where}: cannot move a value into itself")
                result = _remove(result, source, where) if source else result
            result = _add(result, path, value, where)
    return result
