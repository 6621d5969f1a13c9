"""Parse and execution errors: Go's wording, the template name and a line:col position."""

from __future__ import annotations

import pytest

from kapacity.errors import KapacityError
from kapacity.gotmpl import TemplateError, parse
from tests.unit.gotmpl._data import MAP_DATA, make_alert

PARSE_ERRORS: list[tuple[str, str]] = [
    ("{{ .ID }", 'template: message:1:7: unexpected "}" in operand'),
    ("{{ .ID", "template: message:1:6: unclosed action"),
    ("{{ if .X }}a", "template: message:1:12: unexpected EOF"),
    ("{{ end }}", "template: message:1:7: unexpected {{end}}"),
    ("{{ else }}", "template: message:1:8: unexpected {{else}}"),
    ("{{ foo }}", 'template: message:1:3: function "foo" not defined'),
    ("{{ $x }}", 'template: message:1:3: undefined variable "$x"'),
    ("{{ .X | 1 }}", "template: message:1:8: non executable command in pipeline stage 2"),
    ("{{ }}", "template: message:1:3: missing value for command"),
    ("{{ (1 }}", "template: message:1:6: unclosed left paren"),
    ("{{ 1) }}", "template: message:1:4: unexpected right paren"),
    ('{{ "abc }}', "template: message:1:3: unterminated quoted string"),
    ("{{ 3x }}", 'template: message:1:3: bad number syntax: "3x"'),
    ("{{ break }}", "template: message:1:3: {{break}} outside {{range}}"),
    ("{{/* x */ .Y }}", "template: message:1:0: comment ends before closing delimiter"),
    ("{{/* x ", "template: message:1:0: unclosed comment"),
    ("{{ range $a, $b, $c := .L }}{{ end }}", "template: message:1:15: too many declarations in range"),
    ("x\n  {{ if }}", "template: message:2:8: missing value for if"),
    ("{{ template .X }}", 'template: message:1:12: unexpected ".X" in template clause'),
    ('{{ define "a" }}', "template: message:1:16: unexpected EOF"),
    ('{{ "x".Y }}', 'template: message:1:6: unexpected . after term "\\"x\\""'),
    ("{{ 99999999999999999999 }}", 'template: message:1:3: integer overflow: "99999999999999999999"'),
    ("{{ @ }}", 'template: message:1:3: unexpected "@" in command'),
    ("{{ if 1 }}{{ else }}{{ else }}{{ end }}", "template: message:1:28: expected end; found {{else}}"),
    ("{{ with 1 }}{{ else if 2 }}{{ end }}", "template: message:1:20: unexpected <if> in input"),
    ('{{ "\\q" }}', "template: message:1:3: invalid syntax"),
    ("a {{-}}", 'template: message:1:4: illegal number syntax: "-"'),
    ("{{0xi}}", 'template: message:1:2: illegal number syntax: "0xi"'),
    ("{{ 1i }}", "template: message:1:3: complex numbers are not supported: 1i"),
    ("{{ ( ) }}", "template: message:1:5: missing value for parenthesized pipeline"),
    ("{{range $k, .}}{{end}}", "template: message:1:12: range can only initialize variables"),
    ("{{range $k, $v := }}{{end}}", "template: message:1:18: missing value for range"),
    ('line1\n{{"x"\n"y"\n', "template: message:4:0: unclosed action started at message:2"),
    ("{{a#}}", "template: message:1:3: bad character U+0023 '#'"),
    ('{{ define "a" }}1{{ end }}{{ define "a" }}2{{ end }}',
     'template: message:1:50: template: multiple definition of template "a"'),
]


@pytest.mark.parametrize(("text", "message"), PARSE_ERRORS)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse(text, "message")
    assert str(info.value) == message
    assert info.value.name == "message"
    assert isinstance(info.value, KapacityError)


def test_parse_error_reports_line_and_column() -> None:
    with pytest.raises(TemplateError) as info:
        parse("first line\nsecond {{ nope }}", "message")
    assert (info.value.line, info.value.col) == (2, 10)


EXEC_ERRORS: list[tuple[str, str]] = [
    ("{{ .S.Foo }}", "template: t:1:3: executing \"t\" at <.S.Foo>: can't evaluate field Foo in type string"),
    ("{{ .N.X }}", 'template: t:1:3: executing "t" at <.N.X>: nil pointer evaluating interface {}.X'),
    ("{{ index .L 5 }}", 'template: t:1:3: executing "t" at <index .L 5>: error calling index: index out of range: 5'),
    ("{{ index .L -1 }}", 'template: t:1:3: executing "t" at <index .L -1>: error calling index: index out of range: -1'),
    ('{{ index .L "a" }}', 'template: t:1:3: executing "t" at <index .L "a">: error calling index: '
     "cannot index slice/array with type string"),
    ("{{ index .I 1 }}", 'template: t:1:3: executing "t" at <index .I 1>: error calling index: '
     "can't index item of type int"),
    ("{{ nil }}", 'template: t:1:3: executing "t" at <nil>: nil is not a command'),
    ("{{ .S 1 }}", 'template: t:1:3: executing "t" at <.S>: S is not a method but has arguments'),
    ("{{ 1 | .S }}", 'template: t:1:7: executing "t" at <.S>: S is not a method but has arguments'),
    ("{{ $x := 1 }}{{ $x 2 }}", 'template: t:1:16: executing "t" at <$x>: can\'t give argument to non-function $x'),
    ("{{ not }}", 'template: t:1:3: executing "t" at <not>: wrong number of args for not: want 1 got 0'),
    ("{{ lt 1 2 3 }}", 'template: t:1:3: executing "t" at <lt 1 2 3>: wrong number of args for lt: want 2 got 3'),
    ("{{ printf }}", 'template: t:1:3: executing "t" at <printf>: wrong number of args for printf: want at least 1 got 0'),
    ("{{ eq .F 1 }}", 'template: t:1:3: executing "t" at <eq .F 1>: error calling eq: '
     "incompatible types for comparison: float64 and int"),
    ("{{ lt 1 1.5 }}", 'template: t:1:3: executing "t" at <lt 1 1.5>: error calling lt: incompatible types for comparison'),
    ("{{ lt .T .T }}", 'template: t:1:3: executing "t" at <lt .T .T>: error calling lt: invalid type for comparison'),
    ("{{ eq }}", 'template: t:1:3: executing "t" at <eq>: wrong number of args for eq: want at least 1 got 0'),
    ("{{ eq 1 }}", 'template: t:1:3: executing "t" at <eq 1>: error calling eq: missing argument for comparison'),
    ("{{ len 3 }}", 'template: t:1:3: executing "t" at <len 3>: error calling len: len of type int'),
    ("{{ range .S }}{{ end }}", 'template: t:1:9: executing "t" at <{{range .S}}{{end}}>: range can\'t iterate over str'),
    ("{{ range .S }}abcdef{{ end }}", 'template: t:1:9: executing "t" at <{{range .S}}abcdef{{...>: '
     "range can't iterate over str"),
    ('{{ template "nope" }}', 'template: t:1:12: executing "t" at <{{template "nope"}}>: template "nope" not defined'),
    ("{{ call .S }}", 'template: t:1:3: executing "t" at <call .S>: error calling call: non-function of type string'),
    ("line one\n  {{ .A.B.C.D.E }}", 'template: t:2:5: executing "t" at <.A.B.C.D.E>: '
     "can't evaluate field D in type string"),
    ('{{ define "inner" }}{{ .X.Y }}{{ end }}{{ template "inner" .S }}',
     'template: t:1:23: executing "inner" at <.X.Y>: can\'t evaluate field X in type string'),
    ("{{ printf \"%d %d %d %d %d %d\" 1 2 3 4 5 .S.Bad }}",
     'template: t:1:40: executing "t" at <.S.Bad>: can\'t evaluate field Bad in type string'),
]


@pytest.mark.parametrize(("text", "message"), EXEC_ERRORS)
def test_execution_errors(text: str, message: str) -> None:
    tmpl = parse(text, "t")
    with pytest.raises(TemplateError) as info:
        tmpl.execute(MAP_DATA)
    assert str(info.value) == message


def test_long_context_is_truncated_like_go() -> None:
    tmpl = parse('{{ index .L 1 2 3 4 5 6 7 8 9 "very long" }}', "t")
    with pytest.raises(TemplateError, match=r'at <index \.L 1 2 3 4 5 6\.\.\.>'):
        tmpl.execute(MAP_DATA)


def test_exceptions_from_methods_and_funcs_are_wrapped() -> None:
    class Boom:
        def Fail(self) -> str:  # noqa: N802
            raise RuntimeError("kaput")

    with pytest.raises(TemplateError, match=r"at <\.Fail>: error calling Fail: kaput"):
        parse("{{ .Fail }}", "t").execute(Boom())

    def bad(x: int) -> int:
        raise ValueError("no good")

    with pytest.raises(TemplateError, match="error calling bad: no good"):
        parse("{{ bad 1 }}", "t", funcs={"bad": bad}).execute({})
    with pytest.raises(TemplateError, match="wrong number of args for bad: want 1 got 2"):
        parse("{{ bad 1 2 }}", "t", funcs={"bad": bad}).execute({})


def test_method_argument_count_is_checked() -> None:
    class Obj:
        def One(self, a: int) -> int:  # noqa: N802
            return a

    with pytest.raises(TemplateError, match="wrong number of args for One: want 1 got 0"):
        parse("{{ .One }}", "t").execute(Obj())


def test_infinite_template_recursion_stops() -> None:
    tmpl = parse('{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}', "t")
    with pytest.raises(TemplateError, match=r"exceeded maximum template depth \(100\)"):
        tmpl.execute({})


def test_deeply_nested_parentheses_are_a_template_error() -> None:
    with pytest.raises(TemplateError, match="nested too deeply"):
        parse("{{" + "(" * 3000 + "1" + ")" * 3000 + "}}", "t")


def test_private_python_attributes_are_unreachable() -> None:
    with pytest.raises(TemplateError, match="can't evaluate field __class__"):
        parse("{{ .S.__class__ }}", "t").execute(MAP_DATA)
    with pytest.raises(TemplateError, match="can't evaluate field _x in type AlertData"):
        parse("{{ ._x }}", "t").execute(make_alert())
