"""Alert template data and Kapacitor's json template function."""

from __future__ import annotations

import pytest

from kapacity.alert.templates import (
    DEFAULT_DETAILS,
    DEFAULT_ID,
    DEFAULT_MESSAGE,
    DETAILS_FUNCS,
    GoStruct,
    compile_template,
    depends_on_tags,
    go_json,
)
from kapacity.gotypes import Duration, Time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ .Name }}:{{ .Group }}", False),
        ("{{ .TaskName }}-{{ .ServerInfo.Hostname }}", False),
        ('{{ index .Tags "host" }}', True),
        ("{{ . }}", True),
        ("{{ json . }}", True),
        ("{{ with $x := .Name }}{{ $x }}{{ end }}", True),
    ],
)
def test_id_cacheability(text: str, expected: bool) -> None:
    assert depends_on_tags(text) is expected


def test_go_json_keeps_struct_order_and_sorts_maps() -> None:
    data = GoStruct(Name="cpu", Tags={"b": "2", "a": "<1>"}, Time=Time(1_500_000_000), Duration=Duration(5),
                    Fields={"v": 1.0, "n": 3})
    assert go_json(data) == (
        '{"Name":"cpu","Tags":{"a":"\\u003c1\\u003e","b":"2"},"Time":"1970-01-01T00:00:01.5Z",'
        '"Duration":5,"Fields":{"n":3,"v":1}}'
    )


def test_details_json_functions_match_kapacitor() -> None:
    render = compile_template("{{ json . }}", "details", html=True)
    assert render(GoStruct(A="x")) == "{&#34;A&#34;:&#34;x&#34;}\n"
    compact = compile_template("{{ jsonCompact . }}", "details", html=True)
    assert compact(GoStruct(A="x")) == "{&#34;A&#34;:&#34;x&#34;}"


# --- the shortcuts of compile_template (default details, {{ .Field }}-only text) ----------

from typing import Any  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kapacity.gotmpl import TemplateError, parse  # noqa: E402
from kapacity.gotypes import Level  # noqa: E402

_names = st.sampled_from(["ID", "Level", "Name", "Group", "Missing"])
_strings = st.text(alphabet=st.sampled_from(list("ab <>&\"'+{}.\u2028é")), max_size=6)
_data_values = st.one_of(_strings, st.integers(-5, 5), st.floats(allow_nan=False), st.none(),
                         st.just(Level.CRITICAL), st.lists(_strings, max_size=2),
                         st.dictionaries(_strings, _strings, max_size=2))
_data = st.dictionaries(_names, _data_values, max_size=5).map(GoStruct)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_strings.filter(lambda t: "{{" not in t), _names.map(lambda n: "{{ ." + n + " }}"),
                          _names.map(lambda n: "{{." + n + "}}")), max_size=5).map("".join), _data)
def test_field_only_text_renders_as_the_template(text: str, data: GoStruct) -> None:
    try:
        slow = parse(text, "message").execute
    except TemplateError:
        with pytest.raises(TemplateError):
            compile_template(text, "message")
        return
    fast = compile_template(text, "message")
    try:
        want: Any = slow(data)
    except Exception as exc:  # noqa: BLE001 - the shortcut must fail the same way
        with pytest.raises(type(exc)):
            fast(data)
        return
    assert fast(data) == want


@settings(max_examples=200, deadline=None)
@given(_data)
def test_default_details_render_as_the_template(data: GoStruct) -> None:
    fast = compile_template(DEFAULT_DETAILS, "details", html=True)
    slow = parse(DEFAULT_DETAILS, "details", html=True, funcs=DETAILS_FUNCS).execute
    assert fast is not slow
    assert fast(data) == slow(data)
    assert fast(None) == slow(None)


def test_shortcuts_apply_to_the_defaults_only() -> None:
    from kapacity.alert.templates import _substitution

    assert _substitution(DEFAULT_MESSAGE, str) is not None
    assert _substitution(DEFAULT_ID, str) is not None
    for other in ("no actions", "{{ .A.B }}", "{{ .A }}{{ if .B }}x{{ end }}", "{{- .A }}", "{{ index .Tags \"h\" }}"):
        assert _substitution(other, str) is None, other
    data = GoStruct(ID="cpu:host=a", Level="CRITICAL")
    assert compile_template(DEFAULT_MESSAGE, "message")(data) == "cpu:host=a is CRITICAL"
    assert compile_template(DEFAULT_MESSAGE, "message")(GoStruct(ID="x")) == "x is <no value>"
