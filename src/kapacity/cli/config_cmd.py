"""``kapacity config check|show PATH``: validate a config file, print the effective config."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any, Final, NoReturn

import click
from pydantic import BaseModel, SecretStr

from kapacity.config import Config, ConfigError, ConfigProblem, load_config
from kapacity.config.base import Issue
from kapacity.config.files import check_files
from kapacity.config.loader import locate_issues
from kapacity.kafka.clientconfig import check_runtime_support

__all__ = ["config_group", "dump_toml", "effective_config", "runtime_problems"]

MASK: Final = "******"

_FORMAT = click.Choice(["toml", "yaml"], case_sensitive=False)


@click.group("config")
def config_group() -> None:
    """Validate and inspect kapacity configuration files."""


@config_group.command("check")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--format", "fmt", type=_FORMAT, default=None, help="Default: from the file suffix.")
def check(path: str, fmt: str | None) -> None:
    """Validate PATH: every problem with its line:column, plus files and librdkafka support."""
    config = _load_or_exit(path, fmt)
    problems = check_files(config) + runtime_problems(config)
    if problems:
        _report(problems)
    enabled = len(config.enabled_kafka_clusters())
    noun = "cluster" if len(config.kafka) == 1 else "clusters"
    click.echo(f"{path}: OK ({len(config.kafka)} kafka {noun}, {enabled} enabled)")


@config_group.command("show")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--format", "fmt", type=_FORMAT, default=None, help="Default: from the file suffix.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
def show(path: str, fmt: str | None, as_json: bool) -> None:
    """Print the effective configuration of PATH (defaults applied, secrets masked)."""
    data = effective_config(_load_or_exit(path, fmt))
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        click.echo(dump_toml(data), nl=False)


def _load_or_exit(path: str, fmt: str | None) -> Config:
    try:
        return load_config(path, fmt.lower() if fmt else None)  # type: ignore[arg-type]  # Choice
    except ConfigError as exc:
        _report(exc.problems)


def _report(problems: Iterable[ConfigProblem]) -> NoReturn:
    items = list(problems)
    for problem in items:
        click.echo(str(problem), err=True)
    noun = "problem" if len(items) == 1 else "problems"
    click.echo(f"{len(items)} {noun} found", err=True)
    raise SystemExit(1)


def runtime_problems(
    config: Config, check: Callable[..., list[str]] = check_runtime_support
) -> list[ConfigProblem]:
    """What the installed librdkafka cannot do for the enabled clusters, located."""
    issues: list[Issue] = []
    for i, cluster in enumerate(config.kafka):
        for message in check(cluster):
            key = "use-ssl" if message.startswith("use-ssl") else "sasl-mechanism"
            # The location names the key already: "sasl-mechanism: GSSAPI: ...".
            message = message.removeprefix(f"{key}: ").removeprefix(f"{key} ")
            if key == "sasl-mechanism" and not cluster.sasl_mechanism:
                key = "sasl-username"
            issues.append((("kafka", i, key), message))
    return locate_issues(issues, config.source)


def effective_config(config: Config) -> dict[str, Any]:
    """The config as file keys and values, defaults applied, every secret shown as ``******``."""
    data: dict[str, Any] = config.model_dump(mode="json", by_alias=True)
    _mask(config, data)
    return data


def _mask(model: BaseModel, data: dict[str, Any]) -> None:
    for name, field in type(model).model_fields.items():
        key = field.serialization_alias or field.alias or name
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            data[key] = MASK if value.get_secret_value() else ""
        elif isinstance(value, BaseModel):
            _mask(value, data[key])
        elif isinstance(value, list):
            for item, dumped in zip(value, data[key], strict=True):
                if isinstance(item, BaseModel):
                    _mask(item, dumped)


# --- a small TOML writer (the config only holds strings, numbers, bools, lists, tables) ---

_BARE_KEY: Final = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if value is None:
        return '""'  # only sasl-version: "" means automatic, as in the documented example
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return "{" + (f" {inner} " if inner else "") + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dump_toml(data: dict[str, Any]) -> str:
    """Top-level keys, then ``[table]`` sections and ``[[array]]`` tables; nested maps inline."""
    lines: list[str] = []
    for key, value in data.items():
        if not _is_table(value) and not _is_table_array(value):
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in data.items():
        if _is_table(value):
            lines.extend(["", f"[{_key(key)}]"])
            lines.extend(f"  {_key(k)} = {_value(v)}" for k, v in value.items())
        elif _is_table_array(value):
            for item in value:
                lines.extend(["", f"[[{_key(key)}]]"])
                lines.extend(f"  {_key(k)} = {_value(v)}" for k, v in item.items())
    return "\n".join(lines) + "\n"
