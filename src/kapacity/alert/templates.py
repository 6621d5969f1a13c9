"""The alert node's ``id``, ``message`` and ``details`` templates and their data.

Kapacitor renders them with Go templates over structs; here the data are dicts with the
struct's field names (``.Name``, ``.Tags`` …) in the struct's field order, so that
``{{ json . }}`` in ``details`` prints the same JSON as Go's ``json.Marshal`` (struct fields
in declaration order, map keys sorted).
"""

from __future__ import annotations

import re
from json.encoder import encode_basestring as _encode_str
from collections.abc import Callable
from typing import Any

from kapacity._native import load
from kapacity.alert.gojson import encode, go_float, go_string
from kapacity.gotmpl import html_text_escape, parse
from kapacity.gotypes import Duration, Level, Time

DEFAULT_ID = "{{ .Name }}:{{ .Group }}"
DEFAULT_MESSAGE = "{{ .ID }} is {{ .Level }}"
DEFAULT_DETAILS = "{{ json . }}"

Render = Callable[[Any], str]


class GoStruct(dict[str, Any]):
    """Template data standing for a Go struct: JSON keeps the insertion (declaration) order."""


_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
_KEYS: dict[str, str] = {}


def _key(k: str) -> str:
    """A JSON object key with its colon, cached: template data reuse a few names."""
    hit = _KEYS.get(k)
    if hit is None:
        hit = go_string(k) + ":"
        if len(_KEYS) < 10_000:
            _KEYS[k] = hit
    return hit


def _json_str(value: str) -> str:
    """Same bytes as go_string, through the C encoder (this runs for every event's strings):
    the HTML-unsafe characters are rare, and ``str.translate`` with a table of multi-character
    replacements is slow, so each is looked for before replacing."""
    text = _encode_str(value)
    if "<" in text or ">" in text or "&" in text or "\u2028" in text or "\u2029" in text:
        return text.translate(_ESCAPES)
    return text


def go_json_py(value: Any) -> str:
    """Go's ``json.Marshal`` of template data, in Python (the twin of the C ``go_json``)."""
    kind = type(value)
    if kind is str:
        return _json_str(value)
    if kind is float:
        return go_float(value)
    if isinstance(value, str):
        return _json_str(value)
    if isinstance(value, GoStruct):
        return "{" + ",".join(_key(k) + go_json_py(v) for k, v in value.items()) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(_key(str(k)) + go_json_py(v) for k, v in sorted(value.items())) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json_py(v) for v in value) + "]"
    return encode(value)


def _bind_native() -> Callable[[Any], str | None] | None:
    """``kapacity._native.alertjson.go_json``, bound; None when not built or switched off."""
    module = load("alertjson")
    if module is None:
        return None
    module.bind_json(GoStruct, Time, Duration, Level)
    fn: Callable[[Any], str | None] = module.go_json
    return fn


#: The C encoder (None: not built, or ``KAPACITY_NO_NATIVE=1``). The details of every
#: event are ``{{ json . }}`` by default: ~20 values, where the Python twin costs a call each.
_native_go_json = _bind_native()


def go_json(value: Any) -> str:
    """Go's ``json.Marshal`` of template data (behind the ``json`` template functions).

    The C encoder where it is built and handles ``value``, else :func:`go_json_py`: both
    give the same text (``tests/unit/native/test_go_json.py``).
    """
    if _native_go_json is not None:
        out = _native_go_json(value)
        if out is not None:
            return out
    return go_json_py(value)


def _json_encode(value: Any) -> str:
    # Kapacitor's ``json`` is ``json.NewEncoder(w).Encode(v)``: note the trailing newline.
    return go_json(value) + "\n"


#: The functions Kapacitor adds to ``details`` (``jsonCompact`` drops the newline).
DETAILS_FUNCS = {"json": _json_encode, "jsonCompact": go_json}


def compile_template(text: str, name: str, *, html: bool = False) -> Render:
    """Parse a Go template once; the result renders data to a string.

    ``html`` selects html/template (``details``) with Kapacitor's ``json`` functions.
    Raises :class:`~kapacity.gotmpl.TemplateError` when the text does not parse.

    Every emitted event renders its message and details, so the two shapes nearly all
    alerts use get a shortcut giving the same text (``tests/unit/alert/test_templates.py``):
    the default details ``{{ json . }}``, and text with ``{{ .Field }}`` actions only (the
    default message ``{{ .ID }} is {{ .Level }}``, the default ID). Any other data than
    they expect (a missing key, a value that is not a string) goes to the template itself.
    """
    tmpl = parse(text, name, html=html, funcs=DETAILS_FUNCS if html else None)
    render: Render = tmpl.execute
    if html:
        return _json_details(render) if text == DEFAULT_DETAILS else render
    return _substitution(text, render) or render


def _json_details(template: Render) -> Render:
    """``{{ json . }}`` in html/template: the JSON, then the HTML text-context escaping."""

    def render(data: Any) -> str:
        if isinstance(data, dict):
            try:
                return html_text_escape(go_json(data) + "\n")
            except Exception:  # noqa: BLE001, S110 - the template raises its own error for it
                pass
        return template(data)

    return render


_FIELD_ACTION = re.compile(r"\{\{ *\.([A-Za-z_][A-Za-z0-9_]*) *\}\}")


def _substitution(text: str, template: Render) -> Render | None:
    """For text/template text whose actions are all ``{{ .Field }}``: a renderer that joins
    the text with the data's string values; None for any other text."""
    parts = _FIELD_ACTION.split(text)
    texts, fields = parts[0::2], parts[1::2]
    if not fields or any("{{" in t for t in texts):
        return None
    head, pairs = texts[0], list(zip(fields, texts[1:], strict=True))

    def render(data: Any) -> str:
        if isinstance(data, dict):
            out = [head]
            for field_name, after in pairs:
                value = data.get(field_name)
                if type(value) is not str:
                    return template(data)  # Go's printing of other values, <no value> when missing
                out.append(value)
                out.append(after)
            return "".join(out)
        return template(data)

    return render


_BARE_DOT = re.compile(r"(?<![\w.\])])\.(?![\w])")


def depends_on_tags(text: str) -> bool:
    """Whether an ID template may read more than name, task and group (so it cannot be cached
    per group): it mentions ``.Tags``, passes the whole data (``.``), or uses variables."""
    return ".Tags" in text or "$" in text or bool(_BARE_DOT.search(text))


def server_info(hostname: str = "", cluster_id: str = "", server_id: str = "") -> GoStruct:
    return GoStruct(Hostname=hostname, ClusterID=cluster_id, ServerID=server_id)


def id_data(name: str, task: str, group: str, tags: dict[str, str], info: GoStruct) -> GoStruct:
    return GoStruct(Name=name, TaskName=task, Group=group, Tags=tags, ServerInfo=info)
