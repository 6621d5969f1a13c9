"""`kapacity serve` refuses a config whose files or librdkafka features cannot work, before starting."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from kapacity.cli.main import _register, cli


def test_serve_stops_on_a_missing_ca_file_naming_file_and_location(tmp_path: Path) -> None:
    conf = tmp_path / "kapacity.toml"
    missing = tmp_path / "nope" / "ca.pem"
    conf.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        "[http]\n  bind-address = \"127.0.0.1:0\"\n"
        "[[kafka]]\n  enabled = true\n  id = \"infra\"\n  brokers = [\"127.0.0.1:9\"]\n"
        f'  use-ssl = true\n  ssl-ca = "{missing}"\n'
    )
    _register()
    result = CliRunner().invoke(cli, ["serve", "--config", str(conf)])
    assert result.exit_code == 2, result.output
    assert str(missing) in result.output and "kapacity.toml:9:3: kafka[0] (id \"infra\"): ssl-ca" in result.output
    assert not (tmp_path / "data").exists(), "nothing may start (no store created) on a bad config"
