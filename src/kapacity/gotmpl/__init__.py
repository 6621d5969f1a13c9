"""Go ``text/template`` / ``html/template`` in pure Python, rendering exactly like Go.

Kapacitor users write Go templates in TICKscripts and handler files
(``.message('{{ .ID }} is {{ .Level }}')``); kapacity renders them with this
package::

    >>> from kapacity.gotmpl import parse
    >>> parse('{{ .Name }}: {{ printf "%.2f" .Value }}').execute({"Name": "cpu", "Value": 91.456})
    'cpu: 91.46'

Parse once, execute many times: templates compile to closures.
"""

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
    "json_func",
    "parse",
    "sprint",
    "sprintf",
    "sprintln",
]
