"""Go ``text/template`` / ``html/template`` in pure Python, rendering exactly like Go.

Kapacitor users write Go templates in TICKscripts and handler files
(``.message('{{ .ID }} is {{ .Level }}')``); kapacity renders them with this
package::

    >>> from kapacity.gotmpl import parse
    >>> parse('{{ .Name }}: {{ printf "%.2f" .Value }}').execute({"Name": "cpu", "Value": 91.456})
    'cpu: 91.46'

Parse once, execute many times: templates compile to closures.

How Python data looks to a template:

- a mapping is a Go map: ``.key`` looks the key up (a missing key prints ``<no value>``);
- any other object is a struct: ``.Name`` reads an attribute and calls it when it is a
  method (``.Time.Unix``, ``.Time.Format "15:04"``); lower-case and ``_`` names are
  unexported, as in Go;
- ``None`` is ``nil``; ``int``/``float``/``str``/``bool`` are Go's basic kinds (so
  ``eq 1 1.0`` is an error, as in Go); ``Level`` and ``Duration`` are Go integer types
  with a ``String`` method;
- values print with Go's ``fmt`` rules (:func:`format_value`, :func:`sprintf`).

Known differences from Go: html mode escapes action output for HTML *text* only (no
attribute/URL/script contexts; HTML comments are dropped only when they do not enclose
an action); template calls nest at most 100 deep; a missing key of an empty mapping
indexes as ``""``; complex numbers are not supported.
"""

from kapacity.gotmpl._escape import html_text_escape
from kapacity.gotmpl._funcs import json_func
from kapacity.gotmpl._values import NO_VALUE
from kapacity.gotmpl.errors import TemplateError
from kapacity.gotmpl.gofmt import format_value, sprint, sprintf, sprintln
from kapacity.gotmpl.template import Template, parse

__all__ = [
    "NO_VALUE",
    "Template",
    "TemplateError",
    "format_value",
    "html_text_escape",
    "json_func",
    "parse",
    "sprint",
    "sprintf",
    "sprintln",
]
