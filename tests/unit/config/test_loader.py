"""Loading: TOML and YAML, defaults, unknown keys, every problem located at file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from kapacity.config import (
    Config,
    ConfigError,
    KafkaClusterConfig,
    UnknownClusterError,
    load_config,
    parse_config,
)

S = 1_000_000_000

SEED_TOML = """\
[[kafka]]
  enabled = true
  id = "infra-monitoring"
  brokers = ["123.45.67.89:9092", "123.45.67.90:9092"]
  timeout = "10s"
  batch-size = 100
  batch-timeout = "1s"
  use-ssl = true
  ssl-ca = "/etc/ssl/certs/ca.crt"
  ssl-cert = "/etc/ssl/certs/cert.crt"
  ssl-key = "/etc/ssl/certs/cert-key.key"
  insecure-skip-verify = true
  sasl-username = "kafka"
  sasl-password = "kafkapassword"
"""


def problems(text: str, fmt: str = "toml") -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, fmt, "kapacity.conf")  # type: ignore[arg-type]
    return [str(p) for p in info.value.problems]


def test_empty_file_gives_documented_defaults() -> None:
    cfg = parse_config("")
    assert cfg.hostname == "localhost"
    assert cfg.data_dir == "./kapacity-data"
    assert cfg.http.bind_address == ":9092"
    assert cfg.kafka == []
    assert cfg.alert.persist_topics is True
    assert (cfg.logging.level, cfg.logging.format) == ("INFO", "text")


def test_seed_sasl_example_loads_with_secret_hidden() -> None:
    cfg = parse_config(SEED_TOML)
    (c,) = cfg.kafka
    assert c.id == "infra-monitoring" and c.enabled and c.use_ssl
    assert c.brokers == ["123.45.67.89:9092", "123.45.67.90:9092"]
    assert (c.timeout, c.batch_size, c.batch_timeout) == (10 * S, 100, S)
    assert c.sasl_password.get_secret_value() == "kafkapassword"
    assert c.sasl_enabled and c.effective_sasl_mechanism == "PLAIN"
    assert "kafkapassword" not in repr(cfg)
    assert "kafkapassword" not in str(cfg.model_dump(mode="json"))


def test_seed_full_block_with_empty_sasl_version_loads() -> None:
    text = """\
[[kafka]]
  enabled = true
  id = "localhost"
  brokers = ["localhost:9092"]
  timeout = "10s"
  batch-size = 100
  batch-timeout = "1s"
  use-ssl = false
  ssl-ca = ""
  ssl-cert = ""
  ssl-key = ""
  insecure-skip-verify = false
  sasl-username = "xxxxx"
  sasl-password = "xxxxxxxx"
  sasl-mechanism = ""
  sasl-version = ""
  sasl-gssapi-service-name = ""
  sasl-gssapi-auth-type = "KRB5_USER_AUTH"
  sasl-gssapi-disable-pafxfast = false
  sasl-gssapi-kerberos-config-path = "/"
  sasl-gssapi-key-tab-path = ""
  sasl-gssapi-realm = "realm"
  sasl-access-token = ""
"""
    c = parse_config(text).kafka[0]
    assert c.sasl_version is None
    assert c.gssapi_auth_type == "KRB5_USER_AUTH"


def test_zero_values_take_documented_defaults() -> None:
    text = '[[kafka]]\nid = "a"\ntimeout = "0s"\nbatch-size = 0\nbatch-timeout = ""\n'
    c = parse_config(text).kafka[0]
    assert (c.timeout, c.batch_size, c.batch_timeout) == (10 * S, 100, S)
    assert c.sasl_oauth_token_expiry_margin == 10 * S


def test_disabled_cluster_is_not_validated() -> None:
    cfg = parse_config('[[kafka]]\nenabled = false\nid = ""\nsasl-mechanism = "FOO"\n')
    assert cfg.kafka[0].enabled is False


def test_problem_names_file_line_column_cluster_and_field() -> None:
    text = (
        '[[kafka]]\n  enabled = true\n  id = "a"\n  brokers = ["k:9092"]\n\n'
        '[[kafka]]\n  enabled = true\n  id = "infra"\n  brokers = ["k:9092"]\n'
        '  sasl-mechanism = "FOO"\n'
    )
    assert problems(text) == [
        'kapacity.conf:10:3: kafka[1] (id "infra"): sasl-mechanism: invalid sasl-mechanism "FOO"; '
        "valid choices: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI, OAUTHBEARER"
    ]


def test_every_problem_is_reported_in_document_order() -> None:
    text = """\
hostname = "h"
[[kafka]]
  enabled = true
  id = "infra"
  brokers = ["a:9092", "b:x"]
  batch-size = "5"
  sasl-mechanism = "FOO"
  sasl-passwrd = "x"

[[kafka]]
  enabled = true
  id = ""
  brokers = []
  sasl-version = 2

[[kafka]]
  enabled = true
  id = "infra"
  brokers = ["c:1"]
  timeout = 10

[logging]
  level = "verbose"
"""
    got = problems(text)
    assert got == [
        'kapacity.conf:5:24: kafka[0] (id "infra"): brokers[1]: invalid broker address "b:x": '
        "expected host:port with a port 1-65535",
        'kapacity.conf:6:3: kafka[0] (id "infra"): batch-size: input should be a valid integer, '
        'got string "5"',
        'kapacity.conf:7:3: kafka[0] (id "infra"): sasl-mechanism: invalid sasl-mechanism "FOO"; '
        "valid choices: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI, OAUTHBEARER",
        'kapacity.conf:8:3: kafka[0] (id "infra"): sasl-passwrd: unknown key "sasl-passwrd"; '
        'did you mean "sasl-password"?',
        'kapacity.conf:12:3: kafka[1] (id ""): id: id must not be empty',
        'kapacity.conf:13:3: kafka[1] (id ""): brokers: no brokers specified, '
        "must provide at least one broker URL",
        'kapacity.conf:14:3: kafka[1] (id ""): sasl-version: invalid SASL version 2; '
        'valid choices: "" (automatic), 0, 1',
        'kapacity.conf:18:3: kafka[2] (id "infra"): id: duplicate id "infra" for kafka configs '
        "(first used by kafka[0])",
        'kapacity.conf:20:3: kafka[2] (id "infra"): timeout: durations are strings, got the '
        'number 10: write a duration like "10s", "1m30s" or "500ms" (units: ns, us, ms, s, m, h)',
        'kapacity.conf:23:3: logging.level: invalid level "verbose"; '
        "valid choices: DEBUG, INFO, WARN, ERROR",
    ]


def test_unknown_keys_at_every_level_with_suggestions() -> None:
    text = 'hostnme = "x"\n[http]\nbind_adress = ":1"\n[xyzzy]\nx = 1\n'
    got = problems(text)
    assert got[0] == 'kapacity.conf:1:1: hostnme: unknown key "hostnme"; did you mean "hostname"?'
    assert got[1] == (
        'kapacity.conf:3:1: http.bind_adress: unknown key "bind_adress"; '
        'did you mean "bind-address"?'
    )
    assert got[2].startswith('kapacity.conf:4:1: xyzzy: unknown key "xyzzy"; valid keys: hostname')


def test_both_spellings_of_sasl_extensions_accepted_but_not_together() -> None:
    base = '[[kafka]]\nid = "a"\n'
    underscore = parse_config(base + 'sasl_extensions = {a = "1"}\n')
    assert underscore.kafka[0].sasl_extensions == {"a": "1"}
    assert parse_config(base + "[kafka.sasl-extensions]\nb = \"2\"\n").kafka[0].sasl_extensions == {
        "b": "2"
    }
    got = problems(base + 'sasl_extensions = {a = "1"}\nsasl-extensions = {a = "1"}\n')
    assert got == [
        'kapacity.conf:3:1: kafka[0] (id "a"): sasl_extensions: '
        "set only one of sasl-extensions, sasl_extensions"
    ]


def test_secret_values_never_appear_in_type_errors() -> None:
    got = problems('[[kafka]]\nid = "a"\nsasl-password = 12345678\n')
    assert got == [
        'kapacity.conf:3:1: kafka[0] (id "a"): sasl-password: input should be a valid string, '
        "got integer"
    ]


def test_toml_syntax_error_is_located() -> None:
    (got,) = problems('hostname = "x"\n[[kafka]\n')
    assert got.startswith("kapacity.conf:2:")
    assert "invalid TOML" in got


YAML = """\
hostname: h1
kafka:
  - enabled: true
    id: infra
    brokers: ["k:9092"]
    timeout: 5s
  - enabled: true
    id: other
    brokers: ["k:9092"]
    sasl-mechanism: FOO
logging:
  format: json
"""


def test_yaml_with_the_same_keys() -> None:
    cfg = parse_config(YAML.replace("FOO", "SCRAM-SHA-512"), "yaml")
    assert cfg.hostname == "h1"
    assert [c.id for c in cfg.kafka] == ["infra", "other"]
    assert cfg.kafka[0].timeout == 5 * S
    assert cfg.logging.format == "json"


def test_yaml_problems_are_located_by_node_marks() -> None:
    assert problems(YAML, "yaml") == [
        'kapacity.conf:10:5: kafka[1] (id "other"): sasl-mechanism: invalid sasl-mechanism '
        '"FOO"; valid choices: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI, OAUTHBEARER'
    ]


def test_yaml_syntax_error_is_located() -> None:
    (got,) = problems("kafka:\n  - id: [a\n", "yaml")
    assert got.startswith("kapacity.conf:")
    assert "invalid YAML" in got


def test_load_config_picks_format_by_suffix_and_names_missing_file(tmp_path: Path) -> None:
    (tmp_path / "k.conf").write_text(SEED_TOML)
    (tmp_path / "k.yaml").write_text(YAML.replace("FOO", "PLAIN"))
    assert load_config(tmp_path / "k.conf").kafka[0].id == "infra-monitoring"
    loaded = load_config(tmp_path / "k.yaml")
    assert loaded.hostname == "h1"
    assert loaded.source is not None and loaded.source.name.endswith("k.yaml")
    with pytest.raises(ConfigError, match=r"nope\.conf: cannot read config file"):
        load_config(tmp_path / "nope.conf")


def _clusters(*specs: tuple[str, bool]) -> Config:
    return Config(
        kafka=[KafkaClusterConfig(id=i, enabled=e, brokers=["k:9092"]) for i, e in specs]
    )


def test_kafka_cluster_lookup_by_id() -> None:
    cfg = _clusters(("a", True), ("b", True))
    assert cfg.kafka_cluster("b").id == "b"


def test_kafka_cluster_default_is_the_only_enabled_one() -> None:
    cfg = _clusters(("a", False), ("b", True))
    assert cfg.kafka_cluster(None).id == "b"
    assert cfg.kafka_cluster("").id == "b"


@pytest.mark.parametrize(
    ("specs", "wanted", "message"),
    [
        ((("a", True), ("b", True)), "x", 'unknown cluster "x"; configured clusters: a, b'),
        ((("a", True), ("b", True)), None, "several kafka clusters are enabled (a, b)"),
        ((("a", False),), None, "no [[kafka]] cluster is enabled"),
        ((("a", False), ("b", True)), "a", 'kafka cluster "a" is disabled'),
    ],
)
def test_kafka_cluster_lookup_errors_name_the_ids(
    specs: tuple[tuple[str, bool], ...], wanted: str | None, message: str
) -> None:
    with pytest.raises(UnknownClusterError) as info:
        _clusters(*specs).kafka_cluster(wanted)
    assert message in str(info.value)


def test_models_can_be_built_in_code_with_python_names_and_int_durations() -> None:
    c = KafkaClusterConfig(id="a", enabled=True, brokers=["k:1"], batch_timeout=5, timeout=0)
    assert (c.batch_timeout, c.timeout) == (5, 10 * S)
    assert c.problems() == []


def test_validate_config_built_in_code_reports_unlocated_problems() -> None:
    from kapacity.config import validate_config

    cfg = Config(kafka=[KafkaClusterConfig(enabled=True, id="a")])
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    assert [str(p) for p in info.value.problems] == [
        'kafka[0] (id "a"): brokers: no brokers specified, must provide at least one broker URL'
    ]
    ok = Config(kafka=[KafkaClusterConfig(enabled=True, id="a", brokers=["k:1"])])
    assert validate_config(ok) is ok


def test_python_field_names_are_not_file_keys() -> None:
    assert problems('[[kafka]]\nid = "a"\nbatch_size = 7\n') == [
        'kapacity.conf:3:1: kafka[0] (id "a"): batch_size: unknown key "batch_size"; '
        'did you mean "batch-size"?'
    ]
