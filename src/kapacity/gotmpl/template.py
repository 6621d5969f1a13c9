"""``parse`` and ``Template``: the public face of the Go template engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kapacity.gotmpl._exec import Compiler, Exec, State
from kapacity.gotmpl._funcs import BUILTINS
from kapacity.gotmpl._nodes import ListNode
from kapacity.gotmpl._parser import Parser
from kapacity.gotmpl._values import NO_VALUE
from kapacity.gotmpl.errors import TemplateError


class Template:
    """A parsed template; :meth:`execute` renders it and may be called any number of times.

    Thread-safe: execution state lives in a per-call object.
    """

    __slots__ = ("name", "html", "_main", "_templates")

    def __init__(self, name: str, html: bool, main: Exec, templates: dict[str, Exec]) -> None:
        self.name = name
        self.html = html
        self._main = main
        self._templates = templates

    @property
    def defined_templates(self) -> list[str]:
        """Names of the templates ``define`` d or ``block`` ed in the text (not the main one), sorted."""
        return sorted(n for n in self._templates if n != self.name)

    def execute(self, data: Any) -> str:
        """Render with ``data`` as dot; raises :class:`TemplateError` naming the position on failure."""
        out: list[str] = []
        dot = NO_VALUE if data is None else data
        st = State(out, dot)
        try:
            self._main(st, dot)
        except RecursionError:
            raise TemplateError(f"template: {self.name}: execution too deeply nested", name=self.name) from None
        return "".join(out)

    def __repr__(self) -> str:
        return f"<Template {self.name!r}{' html' if self.html else ''}>"


def parse(
    text: str,
    name: str = "template",
    *,
    html: bool = False,
    funcs: Mapping[str, Callable[..., Any]] | None = None,
) -> Template:
    """Parse Go ``text/template`` (or, with ``html=True``, ``html/template``) text.

    ``funcs`` adds (or overrides) template functions. In html mode the output of
    every action is escaped for HTML *text* context and Kapacitor's ``json``
    function is available; attribute, URL and ``<script>`` contexts are not
    tracked (kapacity only renders alert details, which Kapacitor writes as text).

    Example::

        >>> parse("{{ .ID }} is {{ .Level }}", "message").execute({"ID": "cpu", "Level": "OK"})
        'cpu is OK'
    """
    user_funcs = dict(funcs or {})
    names = set(BUILTINS) | set(user_funcs)
    if html:
        names.add("json")
    parser = Parser(text, name, names)
    templates: dict[str, Exec] = {}
    try:
        _root, defined = parser.parse()
        compiler = Compiler(text, name, user_funcs, html, templates, dict(defined))
        trees: dict[str, ListNode] = dict(defined)
        for tname, tree in trees.items():
            templates[tname] = compiler.compile_template(tname, tree)
    except RecursionError:
        raise TemplateError(f"template: {name}: template nested too deeply", name=name) from None
    # The main text is itself the template `name`; a non-empty {{define name}} may stand in for an empty one.
    main = templates[name]
    return Template(name, html, main, templates)
