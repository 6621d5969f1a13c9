"""Rendering of every template construct, with the output Go's text/template produces."""

from __future__ import annotations

from typing import Any

import pytest

from kapacity.alert.event import AlertData
from kapacity.gotmpl import parse
from tests.unit.gotmpl._data import MAP_DATA

RENDER_CASES: list[tuple[str, str, str]] = [
    # (id, template, expected) over MAP_DATA
    ("text only", "hello, world", "hello, world"),
    ("empty", "", ""),
    ("dot map", "{{ .M }}", "map[a:1 b:2]"),
    ("nested fields", "{{ .A.B.C }}", "deep"),
    ("missing key", "{{ .Nope }}", "<no value>"),
    ("missing key chain", "{{ .A.X.C }}", "<no value>"),
    ("nil value", "{{ .N }}", "<no value>"),
    ("print nil", "{{ print .N }}", "<nil>"),
    ("print missing", "{{ print .Nope }}", "<nil>"),
    ("list", "{{ .L }}", "[1 2 3]"),
    ("empty list", "{{ .E }}", "[]"),
    ("bool", "{{ .T }}", "true"),
    ("float", "{{ .F }}", "1.5"),
    ("root var", "{{ $.S }}", "str"),
    ("comment", "a{{/* hidden */}}b", "ab"),
    ("comment trimmed", "a {{- /* hidden */ -}} b", "ab"),
    ("trim left", "a   {{- .S }}", "astr"),
    ("trim right", "{{ .S -}}   \n b", "strb"),
    ("trim both", "x \n{{- .I -}}\n y", "x7y"),
    ("minus number not trim", "{{-3}}", "-3"),
    ("multi-line action", "{{ printf\n  \"%d\"\n  .I }}", "7"),
    # literals
    ("int", "{{ 42 }}", "42"),
    ("negative", "{{ -5 }}", "-5"),
    ("hex", "{{ 0x1F }}", "31"),
    ("octal", "{{ 017 }}", "15"),
    ("octal 0o", "{{ 0o17 }}", "15"),
    ("binary", "{{ 0b101 }}", "5"),
    ("underscores", "{{ 1_000_000 }}", "1000000"),
    ("float literal", "{{ 1.0 }}", "1"),
    ("float exp", "{{ 1e3 }}", "1000"),
    ("float big", "{{ 1e21 }}", "1e+21"),
    ("float 1e6", "{{ 1e6 }}", "1e+06"),
    ("float small", "{{ 0.00001 }}", "1e-05"),
    ("float plain", "{{ 123456.7 }}", "123456.7"),
    ("hex float", "{{ 0x1p-2 }}", "0.25"),
    ("char", "{{ 'a' }}", "97"),
    ("char escape", "{{ '\\n' }}", "10"),
    ("string escapes", '{{ "a\\tb\\u00e9\\x41\\101\\"" }}', 'a\tbéAA"'),
    ("raw string", "{{ `a\\nb` }}", "a\\nb"),
    ("true false", "{{ true }} {{ false }}", "true false"),
    # variables
    ("declare", "{{ $x := .I }}{{ $x }}", "7"),
    ("assign in if", "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", "2"),
    ("scope ends at end", "{{ $x := 1 }}{{ if true }}{{ $x := 5 }}{{ $x }}{{ end }}{{ $x }}", "51"),
    ("variable fields", "{{ $a := .A }}{{ $a.B.C }}", "deep"),
    ("decl prints nothing", "[{{ $x := 3 }}]", "[]"),
    # if / else
    ("if true", "{{ if .T }}yes{{ end }}", "yes"),
    ("if zero", "{{ if .Z }}yes{{ else }}no{{ end }}", "no"),
    ("if empty list", "{{ if .E }}yes{{ else }}no{{ end }}", "no"),
    ("if empty string", '{{ if "" }}yes{{ else }}no{{ end }}', "no"),
    ("if missing", "{{ if .Nope }}yes{{ else }}no{{ end }}", "no"),
    ("if map", "{{ if .M }}yes{{ end }}", "yes"),
    ("else if", "{{ if eq .I 1 }}one{{ else if eq .I 7 }}seven{{ else }}other{{ end }}", "seven"),
    ("else if else", "{{ if eq .I 1 }}one{{ else if eq .I 2 }}two{{ else }}other{{ end }}", "other"),
    ("if decl scope", "{{ if $v := .S }}{{ $v }}{{ end }}", "str"),
    # with
    ("with", "{{ with .A.B }}{{ .C }}{{ end }}", "deep"),
    ("with else", "{{ with .Nope }}x{{ else }}none{{ end }}", "none"),
    ("else with", "{{ with .Nope }}a{{ else with .S }}b{{ . }}{{ end }}", "bstr"),
    # range
    ("range list", "{{ range .L }}{{ . }},{{ end }}", "1,2,3,"),
    ("range index", "{{ range $i, $e := .L }}{{ $i }}:{{ $e }} {{ end }}", "0:1 1:2 2:3 "),
    ("range one var", "{{ range $e := .L }}{{ $e }}{{ end }}", "123"),
    ("range map sorted", "{{ range $k, $v := .M }}{{ $k }}={{ $v }};{{ end }}", "a=1;b=2;"),
    ("range map values", "{{ range .M }}{{ . }}{{ end }}", "12"),
    ("range else", "{{ range .E }}x{{ else }}empty{{ end }}", "empty"),
    ("range missing else", "{{ range .Nope }}x{{ else }}empty{{ end }}", "empty"),
    ("range int", "{{ range 3 }}{{ . }}{{ end }}", "012"),
    ("range break", "{{ range .L }}{{ if eq . 3 }}{{ break }}{{ end }}{{ . }}{{ end }}", "12"),
    ("range continue", "{{ range .L }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ . }}{{ end }}", "13"),
    ("range dollar", "{{ range .L }}{{ $.S }}{{ end }}", "strstrstr"),
    ("range assign", "{{ $i := 0 }}{{ range $i = .L }}{{ end }}{{ $i }}", "3"),
    # pipelines
    ("pipe to printf", '{{ .S | printf "%q" }}', '"str"'),
    ("pipe final arg last", '{{ "a" | printf "%s-%s" "b" }}', "b-a"),
    ("pipe chain", '{{ .L | len | printf "%03d" }}', "003"),
    ("parens", '{{ (printf "%d" 5) }}', "5"),
    ("paren field", "{{ (.A).B.C }}", "deep"),
    ("paren pipe field", "{{ (index .A \"B\").C }}", "deep"),
    ("nested parens", "{{ len (index .A.B \"C\") }}", "4"),
    # builtins
    ("and", "{{ and 1 0 2 }}", "0"),
    ("and all true", "{{ and 1 2 }}", "2"),
    ("or", '{{ or 0 "" "x" }}', "x"),
    ("or all false", '{{ or 0 "" }}', ""),
    ("and short circuit", "{{ and .Z (index .L 99) }}", "0"),
    ("or short circuit", "{{ or .I (index .L 99) }}", "7"),
    ("not", "{{ not 0 }} {{ not .S }}", "true false"),
    ("len", "{{ len .L }} {{ len .S }} {{ len .M }} {{ len \"héllo\" }}", "3 3 2 6"),
    ("index list", "{{ index .L 1 }}", "2"),
    ("index map", '{{ index .Tags "host" }}', "h1"),
    ("index string map miss", '{{ index .Tags "nope" }}', ""),
    ("index map miss", '{{ index .M "zz" }}', "<no value>"),
    ("index nested", '{{ index .A "B" "C" }}', "deep"),
    ("index string", '{{ index "abc" 1 }}', "98"),
    ("slice list", "{{ slice .L 1 }} {{ slice .L 0 2 }} {{ slice .L }}", "[2 3] [1 2] [1 2 3]"),
    ("slice string", '{{ slice "hello" 1 3 }}', "el"),
    ("print", '{{ print 1 2 "a" 3 "b" "c" }}', "1 2a3bc"),
    ("println", '{{ println 1 "x" }}', "1 x\n"),
    ("printf", '{{ printf "%5.2f|%-4d|%x" 3.14159 7 255 }}', " 3.14|7   |ff"),
    ("printf missing", '{{ printf "%d %d" 1 }}', "1 %!d(MISSING)"),
    ("printf extra", '{{ printf "%d" 1 2 }}', "1%!(EXTRA int=2)"),
    ("printf bad verb", '{{ printf "%d" "foo" }}', "%!d(string=foo)"),
    ("html", '{{ html "<a href=\\"x\\">O\'k & +</a>" }}', "&lt;a href=&#34;x&#34;&gt;O&#39;k &amp; +&lt;/a&gt;"),
    ("js", "{{ js \"it's <b> & \\\"q\\\" = \\\\\" }}", "it\\'s \\u003Cb\\u003E \\u0026 \\\"q\\\" \\u003D \\\\"),
    ("urlquery", '{{ urlquery "a b&c=d/é" }}', "a+b%26c%3Dd%2F%C3%A9"),
    ("html of nil", "{{ html .N }}", "&lt;no value&gt;"),
    # comparisons
    ("eq int", "{{ eq .I 7 }}", "true"),
    ("eq multi", "{{ eq .I 1 2 7 }}", "true"),
    ("eq multi false", "{{ eq .I 1 2 3 }}", "false"),
    ("eq string", '{{ eq .S "str" }}', "true"),
    ("eq missing", '{{ eq .Nope "x" }}', "false"),
    ("eq missing missing", "{{ eq .Nope .Nope2 }}", "true"),
    ("ne", '{{ ne .S "x" }}', "true"),
    ("lt float", "{{ lt .F 2.0 }}", "true"),
    ("le", "{{ le 1 1 }} {{ le 2 1 }}", "true false"),
    ("gt string", '{{ gt .S "a" }}', "true"),
    ("ge", "{{ ge 1 2 }} {{ ge 2 2 }}", "false true"),
    # templates
    ("define and call", '{{ define "x" }}X{{ . }}{{ end }}{{ template "x" .I }}', "X7"),
    ("template dollar is its dot", '{{ define "x" }}{{ $ }}{{ end }}{{ template "x" .S }}', "str"),
    ("template without data", '{{ define "x" }}{{ . }}{{ end }}{{ template "x" }}', "<no value>"),
    ("define after use", '{{ template "x" }}{{ define "x" }}late{{ end }}', "late"),
    ("block", '{{ block "b" .S }}[{{ . }}]{{ end }}', "[str]"),
    ("recursive define", '{{ define "r" }}{{ if . }}{{ len . }}{{ template "r" (slice . 1) }}{{ end }}{{ end }}'
     '{{ template "r" .L }}', "321"),
    ("raw template name", "{{ define `q` }}Q{{ end }}{{ template `q` }}", "Q"),
    ("empty redefinition keeps first", '{{ define "a" }}1{{ end }}{{ define "a" }} {{ end }}{{ template "a" }}', "1"),
]


@pytest.mark.parametrize(("template", "expected"), [c[1:] for c in RENDER_CASES], ids=[c[0] for c in RENDER_CASES])
def test_render_matches_go(template: str, expected: str) -> None:
    assert parse(template, "t").execute(MAP_DATA) == expected


ALERT_CASES: list[tuple[str, str]] = [
    ("{{ .ID }} is {{ .Level }}", "cpu:host=server01 is CRITICAL"),
    ("{{ .Level.String }}", "CRITICAL"),
    ("{{ .PreviousLevel }} -> {{ .Level }}", "WARNING -> CRITICAL"),
    ("{{ .Time }}", "2023-11-14 22:13:20.123 +0000 UTC"),
    ("{{ .Time.Unix }}", "1700000000"),
    ("{{ .Time.UnixNano }}", "1700000000123000000"),
    ('{{ .Time.Format "2006-01-02T15:04:05.000Z07:00" }}', "2023-11-14T22:13:20.123Z"),
    ("{{ .Time.Year }} {{ .Time.Month }} {{ .Time.Weekday }}", "2023 November Tuesday"),
    ("{{ .Duration }}", "1m30.5s"),
    ("{{ .Duration.Seconds }}", "90.5"),
    ('{{ printf "%d" .Duration }}', "90500000000"),
    ("{{ gt .Duration 0 }}", "true"),
    ("{{ .Recoverable }}", "true"),
    ('{{ index (index .Data.Series 0).Tags "host" }}', "server01"),
    ('{{ (index .Data.Series 0).Name }}', "cpu"),
    ('{{ printf "%.2f" (index (index .Data.Series 0).Values 0 1) }}', "91.46"),
    ("{{ range .Data.Series }}{{ range $k, $v := .Tags }}{{ $k }}={{ $v }} {{ end }}{{ end }}", "host=server01 region=eu "),
    ("{{ (index .Data.Series 0).Columns }}", "[time value]"),
    ("{{ eq .Level 3 }}", "true"),
    ("{{ if ge .Level 2 }}page{{ end }}", "page"),
    ("{{ len .Data.Series }}", "1"),
]


@pytest.mark.parametrize(("template", "expected"), ALERT_CASES)
def test_alert_templates(alert: AlertData, template: str, expected: str) -> None:
    assert parse(template, "message").execute(alert) == expected


def test_method_with_arguments_as_first_word() -> None:
    class Greeter:
        def Greet(self, who: str, times: int) -> str:  # noqa: N802
            return " ".join([f"hi {who}"] * times)

    assert parse('{{ .Greet "bob" 2 }}').execute(Greeter()) == "hi bob hi bob"
    assert parse('{{ 1 | .Greet "ann" }}').execute(Greeter()) == "hi ann"


def test_extra_funcs_are_callable_and_override_builtins() -> None:
    funcs: dict[str, Any] = {"upper": str.upper, "len": lambda v: "custom"}
    tmpl = parse('{{ upper .S }} {{ .S | upper }} {{ len .L }}', funcs=funcs)
    assert tmpl.execute(MAP_DATA) == "STR STR custom"


def test_call_builtin_calls_function_values() -> None:
    data = {"F": lambda a, b: a + b}
    assert parse("{{ call .F 2 3 }}").execute(data) == "5"


def test_template_is_reusable_and_independent_of_previous_runs() -> None:
    tmpl = parse("{{ $n := .I }}{{ range .L }}{{ $n = . }}{{ end }}{{ $n }}")
    assert tmpl.execute({"I": 0, "L": [4, 5]}) == "5"
    assert tmpl.execute({"I": 9, "L": []}) == "9"


def test_none_data_prints_no_value() -> None:
    assert parse("{{ . }}|{{ .X }}").execute(None) == "<no value>|<no value>"


def test_objects_with_lowercase_python_names_are_not_reachable(alert: AlertData) -> None:
    # Go only exposes exported names: `.id` is an error even though Python has it.
    with pytest.raises(Exception, match="unexported field"):
        parse("{{ .id }}").execute(alert)


def test_define_with_the_main_name_is_the_main_template() -> None:
    assert parse('{{ define "message" }}X{{ end }}', "message").execute({}) == "X"


def test_defined_templates_are_listed() -> None:
    tmpl = parse('{{ define "b" }}{{ end }}{{ define "a" }}A{{ end }}{{ block "c" . }}{{ end }}')
    assert tmpl.defined_templates == ["a", "b", "c"]
