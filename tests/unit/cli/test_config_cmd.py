"""`kapacity config check|show` through Click's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kapacity.cli.config_cmd import config_group, dump_toml, effective_config, runtime_problems
from kapacity.config import load_config, parse_config
from kapacity.kafka.clientconfig import librdkafka_features

GOOD = """\
hostname = "alerts-1"

[[kafka]]
  enabled = true
  id = "infra"
  brokers = ["k1:9092", "k2:9092"]
  batch-size = 0
  sasl-username = "kafka"
  sasl-password = "kafkapassword"
  sasl_extensions = { tenant = "t1" }

[[kafka]]
  id = "spare"
"""

BAD = """\
[[kafka]]
  enabled = true
  id = ""
  brokers = []
  sasl-mechanism = "FOO"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_check_ok(tmp_path: Path) -> None:
    path = write(tmp_path, "kapacity.conf", GOOD)
    result = CliRunner().invoke(config_group, ["check", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}: OK (2 kafka clusters, 1 enabled)\n"


def test_check_reports_every_problem_with_location_and_exits_1(tmp_path: Path) -> None:
    path = write(tmp_path, "kapacity.conf", BAD)
    result = CliRunner().invoke(config_group, ["check", str(path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f'{path}:3:3: kafka[0] (id ""): id: id must not be empty',
        f'{path}:4:3: kafka[0] (id ""): brokers: no brokers specified, must provide at least '
        "one broker URL",
        f'{path}:5:3: kafka[0] (id ""): sasl-mechanism: invalid sasl-mechanism "FOO"; valid '
        "choices: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI, OAUTHBEARER",
        "3 problems found",
    ]
    assert result.stdout == ""


def test_check_runs_the_filesystem_checks(tmp_path: Path) -> None:
    text = GOOD.replace('batch-size = 0', f'use-ssl = true\n  ssl-ca = "{tmp_path}/ca.pem"')
    path = write(tmp_path, "k.conf", text)
    result = CliRunner().invoke(config_group, ["check", str(path)])
    assert result.exit_code == 1
    assert f'ssl-ca: file "{tmp_path}/ca.pem" does not exist' in result.stderr


@pytest.mark.skipif(librdkafka_features("sasl_gssapi"), reason="librdkafka has GSSAPI here")
def test_check_reports_missing_gssapi_support_at_the_mechanism(tmp_path: Path) -> None:
    text = GOOD.replace('batch-size = 0', 'sasl-mechanism = "GSSAPI"')
    path = write(tmp_path, "k.conf", text)
    result = CliRunner().invoke(config_group, ["check", str(path)])
    assert result.exit_code == 1
    assert (
        f'{path}:7:3: kafka[0] (id "infra"): sasl-mechanism: GSSAPI: the installed librdkafka '
        "has no SASL/GSSAPI (Kerberos) support" in result.stderr
    )
    assert "--no-binary confluent-kafka" in result.stderr


def test_runtime_problem_without_mechanism_points_at_username() -> None:
    cfg = parse_config(GOOD, source_name="k.conf")
    (problem,) = runtime_problems(cfg, check=lambda c: ["nope"] if c.enabled else [])
    assert str(problem) == 'k.conf:8:3: kafka[0] (id "infra"): sasl-username: nope'


def test_check_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(config_group, ["check", str(tmp_path / "none.conf")])
    assert result.exit_code == 1
    assert "none.conf: cannot read config file" in result.stderr


def test_show_toml_applies_defaults_masks_secrets_and_round_trips(tmp_path: Path) -> None:
    path = write(tmp_path, "kapacity.conf", GOOD)
    result = CliRunner().invoke(config_group, ["show", str(path)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "kafkapassword" not in out
    assert 'sasl-password = "******"' in out
    assert 'timeout = "10s"' in out and "batch-size = 100" in out and 'batch-timeout = "1s"' in out
    assert 'sasl-extensions = { tenant = "t1" }' in out
    assert '[http]\n  bind-address = ":9092"' in out
    again = parse_config(out)
    original = load_config(path)
    assert again.model_dump(exclude={"kafka"}) == original.model_dump(exclude={"kafka"})
    assert [c.model_dump(exclude={"sasl_password"}) for c in again.kafka] == [
        c.model_dump(exclude={"sasl_password"}) for c in original.kafka
    ]


def test_show_json(tmp_path: Path) -> None:
    path = write(tmp_path, "kapacity.yaml", "kafka:\n  - id: a\n    sasl-access-token: tok\n")
    result = CliRunner().invoke(config_group, ["show", "--json", str(path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["hostname"] == "localhost"
    assert data["logging"] == {"level": "INFO", "format": "text"}
    (cluster,) = data["kafka"]
    assert cluster["sasl-access-token"] == "******"
    assert cluster["sasl-password"] == ""
    assert cluster["sasl-oauth-token-expiry-margin"] == "10s"
    assert cluster["sasl-version"] is None


def test_show_invalid_file_fails_like_check(tmp_path: Path) -> None:
    path = write(tmp_path, "kapacity.conf", BAD)
    result = CliRunner().invoke(config_group, ["show", str(path)])
    assert result.exit_code == 1
    assert "3 problems found" in result.stderr


def test_dump_toml_quotes_odd_keys_and_empty_tables() -> None:
    text = dump_toml({"a": 1, "t": {"odd key": "v\"q", "m": {}}, "arr": [{"x": True}]})
    assert text == 'a = 1\n\n[t]\n  "odd key" = "v\\"q"\n  m = {}\n\n[[arr]]\n  x = true\n'


def test_effective_config_of_empty_file_lists_every_section() -> None:
    assert set(effective_config(parse_config(""))) == {
        "hostname",
        "data_dir",
        "http",
        "kafka",
        "alert",
        "logging",
        "queue",
    }


def test_registered_on_the_root_cli() -> None:
    from kapacity.cli.main import _register, cli

    _register()
    result = CliRunner().invoke(cli, ["config", "--help"])
    assert result.exit_code == 0
    assert "check" in result.stdout and "show" in result.stdout
