"""Properties: literal text passes through untouched; no input escapes as a non-TemplateError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kapacity.gotmpl import TemplateError, parse
from tests.unit.gotmpl._data import MAP_DATA, make_alert

_TOKENS = [
    "{{", "}}", "{{- ", " -}}", " ", "\n", ".", ".A", ".L", ".S", ".ID", ".Level", "$", "$x", ":=", "=",
    "|", "(", ")", ",", '"s"', "`r`", "'c'", "1", "-2", "1.5", "0x1F", "if", "else", "end", "range",
    "with", "define", "template", "block", "break", "continue", "nil", "true", "printf", '"%d"', "len",
    "index", "eq", "lt", "and", "or", "not", "slice", "call", "html", "js", "print", "/*", "*/", "x",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.text().filter(lambda s: "{{" not in s))
def test_text_without_actions_renders_unchanged(text: str) -> None:
    assert parse(text, "t").execute(MAP_DATA) == text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS) | st.text(max_size=3), max_size=16).map("".join))
def test_garbage_only_raises_template_error(text: str) -> None:
    try:
        tmpl = parse(text, "t")
        tmpl.execute(MAP_DATA)
        tmpl.execute(make_alert())
        tmpl.execute(None)
    except TemplateError:
        pass
