"""Read a config file (TOML or YAML), validate it, and report every problem with its place.

>>> cfg = parse_config('[[kafka]]\\nenabled = true\\nid = "a"\\nbrokers = ["k:9092"]\\n')
>>> cfg.kafka_cluster(None).id
'a'
"""

from __future__ import annotations

import copy
import difflib
import re
import tomllib
import typing
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from kapacity.config.base import Issue
from kapacity.config.durations import FROM_DOCUMENT
from kapacity.config.errors import ConfigError, ConfigProblem, FieldPath
from kapacity.config.locate import Positions, toml_positions, yaml_positions
from kapacity.config.model import Config, ConfigSource

__all__ = [
    "Format",
    "describe_path",
    "format_for",
    "load_config",
    "locate_issues",
    "parse_config",
    "validate_config",
]

Format = Literal["toml", "yaml"]

_YAML_SUFFIXES: Final = (".yaml", ".yml", ".json")
_TOML_POS: Final = re.compile(r"\(at line (\d+), column (\d+)\)")
_SECRET_HINTS: Final = ("password", "secret", "token")


def format_for(path: str | Path) -> Format:
    """``yaml`` for ``.yaml``/``.yml``/``.json`` files, else ``toml`` (kapacitor.conf)."""
    return "yaml" if Path(path).suffix.lower() in _YAML_SUFFIXES else "toml"


def load_config(path: str | Path, fmt: Format | None = None) -> Config:
    """Load and validate a config file; raises :class:`ConfigError` listing every problem."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problem = ConfigProblem(f"cannot read config file: {reason}", source=name)
        raise ConfigError([problem]) from exc
    return parse_config(text, fmt or format_for(path), name)


def parse_config(text: str, fmt: Format = "toml", source_name: str = "<config>") -> Config:
    """Parse and validate config text; raises :class:`ConfigError` listing every problem."""
    raw, positions = _parse(text, fmt, source_name)
    source = ConfigSource(source_name, positions, raw)
    issues: list[Issue] = []
    context = {FROM_DOCUMENT: True}
    try:
        # Files use Kapacitor's spelling only (batch-size, not batch_size).
        config = Config.model_validate(raw, context=context, by_alias=True, by_name=False)
    except ValidationError as exc:
        errors = exc.errors()
        issues.extend(_pydantic_issue(e, raw) for e in errors)
        issues.extend(_semantic_issues_despite(raw, [tuple(e["loc"]) for e in errors]))
        raise ConfigError(locate_issues(issues, source, raw)) from None
    issues.extend(config.problems())
    if issues:
        raise ConfigError(locate_issues(issues, source, raw))
    config._source = source
    return config


def validate_config(config: Config) -> Config:
    """Check the semantic rules of a config built in code; raises :class:`ConfigError`."""
    issues = config.problems()
    if issues:
        document = config.source.document if config.source else None
        if document is None:
            document = config.model_dump(mode="json", by_alias=True)
        raise ConfigError(locate_issues(issues, config.source, document))
    return config


def locate_issues(
    issues: list[Issue], source: ConfigSource | None, raw: object = None
) -> list[ConfigProblem]:
    """Turn field-path issues into located problems, sorted in document order."""
    if raw is None and source is not None:
        raw = source.document
    out: list[ConfigProblem] = []
    for path, message in issues:
        pos = source.locate(path) if source else None
        out.append(
            ConfigProblem(
                message=message,
                path=path,
                where=describe_path(path, raw),
                source=source.name if source else None,
                line=pos[0] if pos else None,
                column=pos[1] if pos else None,
            )
        )
    big = 1 << 62
    out.sort(key=lambda p: (p.line or big, p.column or big))
    return out


def describe_path(path: FieldPath, raw: object) -> str:
    """``("kafka", 1, "sasl-mechanism")`` → ``kafka[1] (id "infra"): sasl-mechanism``."""
    segments: list[str] = []
    current = ""
    node: object = raw
    for part in path:
        if isinstance(part, int):
            current += f"[{part}]"
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            if isinstance(node, dict):
                if isinstance(node.get("id"), str):
                    current += f' (id "{node["id"]}")'
                segments.append(current)
                current = ""
        else:
            current = f"{current}.{part}" if current else part
            node = node.get(part) if isinstance(node, dict) else None
    if current:
        segments.append(current)
    return ": ".join(segments)


# --- parsing -----------------------------------------------------------------------


def _parse(text: str, fmt: Format, name: str) -> tuple[dict[str, Any], Positions]:
    if fmt == "toml":
        try:
            data: object = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = _TOML_POS.search(str(exc))
            msg = _TOML_POS.sub("", str(exc)).strip()
            line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
            problem = ConfigProblem(f"invalid TOML: {msg}", source=name, line=line, column=col)
            raise ConfigError([problem]) from None
        return typing.cast(dict[str, Any], data), toml_positions(text)
    if fmt == "yaml":
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = ConfigProblem(
                f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
                source=name,
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
            )
            raise ConfigError([problem]) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            message = "the document must be a mapping of sections"
            raise ConfigError([ConfigProblem(message, source=name, line=1, column=1)])
        return data, yaml_positions(text)
    message = f'unknown format "{fmt}"; valid choices: toml, yaml'
    raise ConfigError([ConfigProblem(message, source=name)])


# --- pydantic errors → issues --------------------------------------------------------


def _pydantic_issue(err: ErrorDetails, raw: object) -> Issue:
    loc: FieldPath = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        return loc, _unknown_key_message(loc)
    msg = err["msg"]
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif kind == "missing":
        msg = "required key is missing"
    else:
        found = _lookup(raw, loc)
        if found is not _MISSING:
            msg = f"{msg[:1].lower()}{msg[1:]}, got {_describe_value(loc, found)}"
    return loc, msg


_MISSING: Final = object()


def _lookup(raw: object, loc: FieldPath) -> object:
    node = raw
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(part, str) and isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


def _describe_value(loc: FieldPath, value: object) -> str:
    kind = {
        bool: "boolean",
        int: "integer",
        float: "float",
        str: "string",
        list: "array",
        dict: "table",
    }.get(type(value), type(value).__name__)
    key = str(loc[-1]) if loc else ""
    if any(h in key for h in _SECRET_HINTS) or isinstance(value, (list, dict)):
        return kind
    if isinstance(value, str):
        return f'{kind} "{value}"'
    return f"{kind} {value!r}"


def _model_at(path: FieldPath) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in path:
        if isinstance(part, int):
            continue
        field = _field_named(model, part)
        if field is None:
            return None
        target = _model_in(field.annotation)
        if target is None:
            return None
        model = target
    return model


def _field_named(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if key in _spellings(name, field):
            return field
    return None


def _spellings(name: str, field: Any) -> list[str]:
    out = [field.alias or name]
    choices = getattr(field.validation_alias, "choices", None)
    if choices:
        out.extend(c for c in choices if isinstance(c, str) and c not in out)
    return out


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _unknown_key_message(loc: FieldPath) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        return f'unknown key "{key}"'
    for name, field in model.model_fields.items():
        spellings = _spellings(name, field)
        if key in spellings:
            return f"set only one of {', '.join(spellings)}"
    known = [_spellings(n, f)[0] for n, f in model.model_fields.items()]
    close = difflib.get_close_matches(key.replace("_", "-").lower(), known, n=1, cutoff=0.6)
    hint = f'; did you mean "{close[0]}"?' if close else f"; valid keys: {', '.join(known)}"
    return f'unknown key "{key}"{hint}'


def _semantic_issues_despite(raw: dict[str, Any], locs: list[FieldPath]) -> list[Issue]:
    """Semantic problems of the rest of the document once the keys that failed are removed.

    One bad type must not hide the other problems: validation is retried without the
    offending keys, and problems about the removed keys themselves are left out.
    """
    pruned = copy.deepcopy(raw)
    removed: list[FieldPath] = []
    for loc in locs:
        cut = _prune_point(loc)
        if not cut:
            return []
        parent = _lookup(pruned, cut[:-1])
        if isinstance(parent, dict):
            parent.pop(cut[-1], None)
        removed.append(cut)
    try:
        config = Config.model_validate(
            pruned, context={FROM_DOCUMENT: True}, by_alias=True, by_name=False
        )
    except ValidationError:
        return []
    return [
        (path, msg)
        for path, msg in config.problems()
        if not any(path[: len(cut)] == cut for cut in removed)
    ]


def _prune_point(loc: FieldPath) -> FieldPath:
    """The key to remove for an error at ``loc``: a whole list, never one of its items."""
    end = len(loc)
    while end and isinstance(loc[end - 1], int):
        end -= 1
    return loc[:end]
