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

from kapacity.alert.gojson import encode, go_float, go_string
from kapacity.gotmpl import parse

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


def go_json(value: Any) -> str:
    """Go's ``json.Marshal`` of template data (behind the ``json`` template functions)."""
    kind = type(value)
    if kind is str:
        return _json_str(value)
    if kind is float:
        return go_float(value)
    if isinstance(value, str):
        return _json_str(value)
    if isinstance(value, GoStruct):
        return "{" + ",".join(_key(k) + go_json(v) for k, v in value.items()) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(_key(str(k)) + go_json(v) for k, v in sorted(value.items())) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    return encode(value)


def _json_encode(value: Any) -> str:
    # Kapacitor's ``json`` is ``json.NewEncoder(w).Encode(v)``: note the trailing newline.
    return go_json(value) + "\n"


#: The functions Kapacitor adds to ``details`` (``jsonCompact`` drops the newline).
DETAILS_FUNCS = {"json": _json_encode, "jsonCompact": go_json}


def compile_template(text: str, name: str, *, html: bool = False) -> Render:
    """Parse a Go template once; the result renders data to a string.

    ``html`` selects html/template (``details``) with Kapacitor's ``json`` functions.
    Raises :class:`~kapacity.gotmpl.TemplateError` when the text does not parse.
    """
    tmpl = parse(text, name, html=html, funcs=DETAILS_FUNCS if html else None)
    render: Render = tmpl.execute
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
