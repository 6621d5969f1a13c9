"""Handler specs from files and API bodies, and RFC 6902 patches applied to them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kapacity.alert.handlerspec import (
    KINDS,
    HandlerSpec,
    HandlerSpecError,
    JSONPatchError,
    apply_json_patch,
    handler_spec_from_json,
    json_equal,
    load_handler_file,
    parse_handler_spec,
)

YAML_SPEC = """\
id: kafka-cpu
topic: cpu
kind: kafka
match: changed() == TRUE AND level() >= WARNING
options:
  cluster: infra
  topic: alerts
  disablePartitionById: false
"""


def test_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "h.yaml"
    path.write_text(YAML_SPEC)
    spec = load_handler_file(path)
    assert spec == HandlerSpec(
        id="kafka-cpu",
        topic="cpu",
        kind="kafka",
        options={"cluster": "infra", "topic": "alerts", "disablePartitionById": False},
        match="changed() == TRUE AND level() >= WARNING",
    )


def test_yml_and_json_files_give_the_same_spec(tmp_path: Path) -> None:
    yml = tmp_path / "h.yml"
    yml.write_text(YAML_SPEC)
    js = tmp_path / "h.JSON"
    js.write_text(json.dumps(load_handler_file(yml).to_dict()))
    assert load_handler_file(js) == load_handler_file(yml)


def test_unknown_extension_lists_valid_ones(tmp_path: Path) -> None:
    path = tmp_path / "h.toml"
    path.write_text("")
    with pytest.raises(HandlerSpecError, match=r"valid: \.yaml, \.yml, \.json"):
        load_handler_file(path)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(HandlerSpecError, match="nope.yaml: cannot read handler file"):
        load_handler_file(tmp_path / "nope.yaml")


def test_unknown_key_names_key_position_and_valid_keys() -> None:
    text = "id: a\ntopic: t\nkind: log\n  \nbogus: 1\n"
    with pytest.raises(HandlerSpecError) as info:
        parse_handler_spec(text, "yaml", "h.yaml")
    assert str(info.value) == (
        "h.yaml:5:1: unknown key 'bogus' (valid keys: id, topic, kind, match, options)"
    )


def test_unknown_key_position_in_json() -> None:
    text = '{\n  "id": "a",\n  "topic": "t",\n  "kind": "log",\n  "extra": 1\n}'
    with pytest.raises(HandlerSpecError, match=r"^h.json:5:3: unknown key 'extra'"):
        parse_handler_spec(text, "json", "h.json")


def test_unknown_kind_lists_kinds() -> None:
    with pytest.raises(HandlerSpecError) as info:
        parse_handler_spec("id: a\ntopic: t\nkind: slack\n", "yaml", "h.yaml")
    assert str(info.value) == (
        "h.yaml:3:1: unknown handler kind 'slack' (valid kinds: kafka, log, post, tcp, exec)"
    )
    assert KINDS == ("kafka", "log", "post", "tcp", "exec")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("id", "has space", "invalid handler id 'has space'"),
        ("id", "a/b", "invalid handler id"),
        ("id", "a:b", "invalid handler id"),
        ("topic", "a/b", "invalid topic 'a/b'"),
        ("topic", "a b", "invalid topic"),
    ],
)
def test_invalid_names(key: str, value: str, message: str) -> None:
    doc = {"id": "h", "topic": "t", "kind": "log", key: value}
    with pytest.raises(HandlerSpecError, match=message):
        parse_handler_spec(json.dumps(doc), "json", "h.json")


def test_unicode_letters_and_punctuation_are_valid_names() -> None:
    spec = HandlerSpec.from_dict({"id": "élan-1.x_y", "topic": "prod:Zürich.cpu-1", "kind": "log"})
    assert (spec.id, spec.topic) == ("élan-1.x_y", "prod:Zürich.cpu-1")


@pytest.mark.parametrize("missing", ["id", "topic", "kind"])
def test_required_keys(missing: str) -> None:
    doc = {"id": "h", "topic": "t", "kind": "log"}
    del doc[missing]
    with pytest.raises(HandlerSpecError, match=f"missing required key '{missing}'"):
        HandlerSpec.from_dict(doc)


def test_yaml_numbers_read_as_text_like_go() -> None:
    spec = parse_handler_spec("id: 123\ntopic: 2024\nkind: log\n", "yaml")
    assert (spec.id, spec.topic) == ("123", "2024")


def test_options_must_be_a_mapping_with_json_values() -> None:
    with pytest.raises(HandlerSpecError, match="h.yaml:4:1: 'options' must be a mapping, got list"):
        parse_handler_spec("id: a\ntopic: t\nkind: log\noptions: [1]\n", "yaml", "h.yaml")
    with pytest.raises(HandlerSpecError, match=r"options\.when: unsupported value"):
        parse_handler_spec(
            "id: a\ntopic: t\nkind: log\noptions:\n  when: 2020-01-01\n", "yaml", "h.yaml"
        )


def test_missing_options_and_match_default_to_empty() -> None:
    spec = parse_handler_spec("id: a\ntopic: t\nkind: log\noptions:\n", "yaml")
    assert spec.options == {}
    assert spec.match == ""


def test_syntax_errors_carry_positions() -> None:
    with pytest.raises(HandlerSpecError, match=r"^h.json:1:12: invalid JSON: Expecting ',' delimiter"):
        parse_handler_spec('{"id": "a" "kind": 1}', "json", "h.json")
    with pytest.raises(HandlerSpecError, match=r"^h.yaml:2:\d+: invalid YAML"):
        parse_handler_spec("id: a\n  - x: [\n", "yaml", "h.yaml")


def test_a_non_mapping_document_is_rejected() -> None:
    with pytest.raises(HandlerSpecError, match="must be a mapping"):
        parse_handler_spec("- a\n- b\n", "yaml")


def test_api_body_topic_comes_from_the_url() -> None:
    body = json.dumps({"id": "h", "topic": "other", "kind": "kafka", "options": {"topic": "x"}})
    spec = handler_spec_from_json(body.encode(), topic="cpu")
    assert spec.topic == "cpu"
    assert spec.to_dict() == {
        "id": "h",
        "topic": "cpu",
        "kind": "kafka",
        "options": {"topic": "x"},
        "match": "",
    }


# --- JSON Patch ------------------------------------------------------------------

DOC: dict[str, Any] = {"id": "h", "options": {"topic": "a", "list": [1, 2]}, "match": ""}


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([{"op": "add", "path": "/options/cluster", "value": "c"}],
         {**DOC, "options": {"topic": "a", "list": [1, 2], "cluster": "c"}}),
        ([{"op": "add", "path": "/options/list/-", "value": 3}],
         {**DOC, "options": {"topic": "a", "list": [1, 2, 3]}}),
        ([{"op": "add", "path": "/options/list/0", "value": 0}],
         {**DOC, "options": {"topic": "a", "list": [0, 1, 2]}}),
        ([{"op": "remove", "path": "/options/list/1"}],
         {**DOC, "options": {"topic": "a", "list": [1]}}),
        ([{"op": "replace", "path": "/options/topic", "value": "b"}],
         {**DOC, "options": {"topic": "b", "list": [1, 2]}}),
        ([{"op": "move", "from": "/options/topic", "path": "/match"}],
         {"id": "h", "options": {"list": [1, 2]}, "match": "a"}),
        ([{"op": "copy", "from": "/options/list", "path": "/copy"}],
         {**DOC, "copy": [1, 2]}),
        ([{"op": "test", "path": "/options/list", "value": [1.0, 2]},
          {"op": "replace", "path": "/id", "value": "x"}],
         {**DOC, "id": "x"}),
        ([{"op": "add", "path": "/a~1b~0c", "value": 1}], {**DOC, "a/b~c": 1}),
        ([{"op": "replace", "path": "", "value": {"x": 1}}], {"x": 1}),
    ],
)
def test_patch_ops(ops: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    before = json.loads(json.dumps(DOC))
    assert apply_json_patch(DOC, ops) == expected
    assert before == DOC  # the input is untouched


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([{"op": "frob", "path": "/id"}],
         r"patch operation 0: unknown op 'frob' \(valid ops: add, remove, replace, move, copy, test\)"),
        ([{"op": "remove", "path": "/nope"}], r"patch operation 0 \(remove '/nope'\): path not found"),
        ([{"op": "replace", "path": "/nope", "value": 1}], "path not found"),
        ([{"op": "add", "path": "/a/b", "value": 1}], "path not found"),
        ([{"op": "add", "path": "/options/list/5", "value": 1}], "index 5 is out of range"),
        ([{"op": "add", "path": "/options/list/01", "value": 1}], "'01' is not an array index"),
        ([{"op": "test", "path": "/id", "value": "x"}], "test failed"),
        ([{"op": "add", "path": "id", "value": 1}], "must start with '/'"),
        ([{"op": "add", "path": "/x"}], "missing 'value'"),
        ([{"op": "move", "path": "/x"}], "missing 'from'"),
        ([{"op": "move", "from": "/options", "path": "/options/x"}], "into itself"),
        ([{"op": "remove", "path": ""}], "cannot remove the whole document"),
        ([{"op": "add", "path": "/id", "value": 1}, {"op": "frob"}], "patch operation 1"),
        ({"op": "add"}, "must be an array"),
    ],
)
def test_patch_errors_name_the_operation(ops: Any, message: str) -> None:
    with pytest.raises(JSONPatchError, match=message):
        apply_json_patch(DOC, ops)


def test_json_equality_distinguishes_booleans_from_numbers() -> None:
    assert json_equal(1, 1.0)
    assert not json_equal(True, 1)
    assert not json_equal({"a": [True]}, {"a": [1]})
    assert json_equal({"a": [None, "x"]}, {"a": [None, "x"]})


def test_patched_spec_is_validated_again() -> None:
    spec = HandlerSpec("h", "cpu", "kafka", {"topic": "a"})
    patched = apply_json_patch(spec.to_dict(), [{"op": "replace", "path": "/kind", "value": "log"}])
    assert HandlerSpec.from_dict(patched, topic="cpu").kind == "log"
    bad = apply_json_patch(spec.to_dict(), [{"op": "replace", "path": "/id", "value": "a b"}])
    with pytest.raises(HandlerSpecError, match="invalid handler id"):
        HandlerSpec.from_dict(bad, topic="cpu")


def test_bad_match_expression_is_rejected_at_define_time() -> None:
    text = "id: a\ntopic: t\nkind: log\nmatch: level() >= WARNNG\n"
    with pytest.raises(HandlerSpecError) as info:
        parse_handler_spec(text, "yaml", "h.yaml")
    message = str(info.value)
    assert message.startswith("h.yaml:4:1: match: invalid match expression 'level() >= WARNNG' at char 12")
    assert "undefined identifier WARNNG" in message
