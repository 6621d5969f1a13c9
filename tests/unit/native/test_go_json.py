"""The C ``go_json`` (template data → Go's ``json.Marshal``) against its pure-Python twin.

``kapacity._native.alertjson.go_json`` may decline (return None) and leave a value to
``go_json_py``, but whatever text it returns must equal the twin's. ``go_json`` (what the
``json`` template function calls) and the rendered ``details`` are checked both ways: with
the C module and with it switched off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kapacity._native import load
from kapacity.alert import templates
from kapacity.alert.templates import GoStruct, compile_template, go_json_py, id_data, server_info
from kapacity.gotypes import Duration, Level, Time

native = load("alertjson")
needs_native = pytest.mark.skipif(native is None, reason="kapacity._native.alertjson is not built")

NS = 1_767_225_600_000_000_000

special = st.sampled_from(["<", ">", "&", "\u2028", "\u2029", "\x00", "\x1f", "\x7f", "\n", '"', "\\",
                           "é", "€", "😀", "\ud800"])
texts = st.lists(st.one_of(st.text(max_size=5), special), max_size=5).map("".join)


class Text(str):
    """A str subclass: the C encoder leaves it to Python."""


scalars = st.one_of(
    texts, st.floats(), st.integers(min_value=-(2**70), max_value=2**70), st.booleans(), st.none(),
    st.builds(Time, st.integers(min_value=-(10**18), max_value=300_000_000_000 * 10**9)),
    st.builds(Duration, st.integers(-(2**65), 2**65)), st.sampled_from(list(Level)), texts.map(Text),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(texts, inner, max_size=4),
        st.dictionaries(texts, inner, max_size=4).map(GoStruct),
    ),
    max_leaves=20,
)


def details_data(i: int = 0) -> GoStruct:
    data = id_data("cpu", "bench", f"host=h{i}", {"host": f"h{i}", "region": "eu <&>"}, server_info("kapacity"))
    data.update(ID=f"cpu:host=h{i}", Fields={"usage_idle": i / 7, "usage_user": 12.5, "n": i, "ok": True},
                Level="CRITICAL", Time=Time(NS + i), Duration=Duration(i * 10**9))
    data["Message"] = f"cpu:host=h{i} is CRITICAL"
    return data


def py_or_error(value: Any) -> str | type[BaseException]:
    try:
        return go_json_py(value)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        return type(exc)


@needs_native
@settings(max_examples=500, deadline=None)
@given(values)
@example(details_data())
@example({"b": 1, "a": [Level.OK, Duration(5), None]})
def test_native_text_equals_the_python_twin_or_it_declines(value: Any) -> None:
    assert native is not None
    got = native.go_json(value)
    if got is not None:
        assert got == py_or_error(value)


@needs_native
def test_native_handles_the_default_details_without_declining() -> None:
    assert native is not None
    for i in range(100):
        data = details_data(i)
        assert native.go_json(data) == go_json_py(data)


@needs_native
@pytest.mark.parametrize("value", [
    Text("x"), {1: "a"}, 2**64, Duration(2**64), Time(-1), "\ud800", GoStruct({"a": {"b": object()}}),
])
def test_native_declines_what_only_python_decides(value: Any) -> None:
    assert native is not None
    assert native.go_json(value) is None


@pytest.fixture(params=["native", "pure"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "native":
        if native is None:
            pytest.skip("kapacity._native.alertjson is not built")
        assert templates._native_go_json is not None
    else:
        monkeypatch.setattr(templates, "_native_go_json", None)
    return str(request.param)


def test_details_render_the_same_both_ways(implementation: str) -> None:
    render: Callable[[Any], str] = compile_template("{{ json . }}", "details", html=True)
    out = render(details_data(3))
    assert out.startswith("{&#34;Name&#34;:&#34;cpu&#34;,&#34;TaskName&#34;:&#34;bench&#34;")
    assert "&#34;region&#34;:&#34;eu \\u003c\\u0026\\u003e&#34;" in out
    assert "&#34;Fields&#34;:{&#34;n&#34;:3,&#34;ok&#34;:true,&#34;usage_idle&#34;:0.42857142857142855," in out
    assert out.endswith("&#34;Duration&#34;:3000000000,&#34;Message&#34;:&#34;cpu:host=h3 is CRITICAL&#34;}\n")
    assert templates.go_json(details_data(3)) == go_json_py(details_data(3))
