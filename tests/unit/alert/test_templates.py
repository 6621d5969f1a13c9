"""Alert template data and Kapacitor's json template function."""

from __future__ import annotations

import pytest

from kapacity.alert.templates import GoStruct, compile_template, depends_on_tags, go_json
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
