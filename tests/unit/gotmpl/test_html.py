"""html mode: html/template's text-context escaping and Kapacitor's json function."""

from __future__ import annotations

from kapacity.alert.event import AlertData
from kapacity.gotmpl import parse


def test_action_output_is_escaped_in_text_context() -> None:
    tmpl = parse("<b>{{ .S }}</b>", "details", html=True)
    out = tmpl.execute({"S": "<a href='x'>1+1 & \"q\"\x00</a>"})
    assert out == "<b>&lt;a href=&#39;x&#39;&gt;1&#43;1 &amp; &#34;q&#34;\ufffd&lt;/a&gt;</b>"


def test_template_text_itself_is_not_escaped() -> None:
    assert parse("<i>&</i>", html=True).execute({}) == "<i>&</i>"


def test_nil_and_missing_values_print_nothing() -> None:
    assert parse("[{{ .N }}{{ .Missing }}]", html=True).execute({"N": None}) == "[]"


def test_json_function_matches_kapacitor_details() -> None:
    tmpl = parse("{{ json . }}", "details", html=True)
    out = tmpl.execute({"a": "<b>", "n": 1.5, "l": [1, None]})
    # encoding/json escapes <>&, Encode adds "\n", html/template escapes the quotes.
    assert out == "{&#34;a&#34;:&#34;\\u003cb\\u003e&#34;,&#34;l&#34;:[1,null],&#34;n&#34;:1.5}\n"


def test_json_of_alert_series_uses_go_field_order(alert: AlertData) -> None:
    out = parse("{{ json .Data }}", "details", html=True).execute(alert)
    assert out.startswith("{&#34;series&#34;:[{&#34;name&#34;:&#34;cpu&#34;,&#34;tags&#34;:")


def test_explicit_html_call_is_not_escaped_twice() -> None:
    tmpl = parse("{{ html .S }}|{{ .S | html }}", html=True)
    assert tmpl.execute({"S": "<&>"}) == "&lt;&amp;&gt;|&lt;&amp;&gt;"


def test_json_is_not_predefined_in_text_mode() -> None:
    import pytest

    from kapacity.gotmpl import TemplateError, json_func

    with pytest.raises(TemplateError, match='function "json" not defined'):
        parse("{{ json . }}")
    assert parse("{{ json . }}", funcs={"json": json_func}).execute({"a": 1}) == '{"a":1}\n'


def test_time_plus_sign_is_escaped_like_kapacitor_details(alert: AlertData) -> None:
    assert parse("{{ .Time }}", html=True).execute(alert) == "2023-11-14 22:13:20.123 &#43;0000 UTC"


def test_html_comments_in_template_text_are_dropped() -> None:
    assert parse("a<!-- note\n -->b{{ .X }}", html=True).execute({"X": 1}) == "ab1"
