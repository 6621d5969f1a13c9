"""Key positions in TOML and YAML text (tomllib keeps none)."""

from __future__ import annotations

from kapacity.config.locate import toml_positions, yaml_positions

TOML = '''\
# comment with key = value
hostname = "h"
text = """
fake = 1
"""
"quoted key" = 1
a.b = 2

[http]
  bind-address = ":1"

[[kafka]]
  id = "x"
  brokers = [
    "a:1",  # fake = 2
    "b:1",
  ]
  timeout = "1s"

[[kafka]]
  id = "y"

[kafka.sasl-extensions]
  k = "v"
'''


def test_toml_positions() -> None:
    pos = toml_positions(TOML)
    assert pos[("hostname",)] == (2, 1)
    assert ("fake",) not in pos  # inside a multi-line string
    assert pos[("quoted key",)] == (6, 1)
    assert pos[("a", "b")] == (7, 1)
    assert pos[("http",)] == (9, 1)
    assert pos[("http", "bind-address")] == (10, 3)
    assert pos[("kafka",)] == (12, 1)
    assert pos[("kafka", 0)] == (12, 1)
    assert pos[("kafka", 0, "brokers")] == (14, 3)
    assert ("kafka", 0, "fake") not in pos  # inside a multi-line array
    assert pos[("kafka", 0, "brokers", 0)] == (15, 5)
    assert pos[("kafka", 0, "brokers", 1)] == (16, 5)
    assert ("kafka", 0, "brokers", 2) not in pos
    assert pos[("kafka", 0, "timeout")] == (18, 3)
    assert pos[("kafka", 1, "id")] == (21, 3)
    assert pos[("kafka", 1, "sasl-extensions")] == (23, 1)
    assert pos[("kafka", 1, "sasl-extensions", "k")] == (24, 3)


def test_yaml_positions() -> None:
    text = "hostname: h\nkafka:\n  - id: x\n    brokers:\n      - a:1\n"
    pos = yaml_positions(text)
    assert pos[("hostname",)] == (1, 1)
    assert pos[("kafka", 0)] == (3, 5)
    assert pos[("kafka", 0, "id")] == (3, 5)
    assert pos[("kafka", 0, "brokers", 0)] == (5, 9)
    assert yaml_positions("a: [") == {}


def test_toml_array_items_on_one_line_with_tricky_strings_and_nesting() -> None:
    pos = toml_positions('brokers = ["a:1", "b,]:2", [1, 2], {x = 1}]  # ,c\nx = 1\n')
    assert [pos[("brokers", i)] for i in range(4)] == [(1, 12), (1, 19), (1, 28), (1, 36)]
    assert ("brokers", 4) not in pos
    assert pos[("x",)] == (2, 1)
