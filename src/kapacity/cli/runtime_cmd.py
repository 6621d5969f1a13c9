"""``kapacity engine run|status``: the queue-based runtime without HTTP (tests, scale-out).

``run`` prints one line ``kapacity engine ready instance=NAME queue=TYPE`` once the stages
run, keeps ``<data-dir>/runtime-status/<instance>.json`` up to date every second, and on
SIGTERM/SIGINT stops cleanly (drains, commits, writes state checkpoints).
``status`` prints the status files of the instances of a data dir as JSON.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Final

import click

__all__ = ["engine_group"]

#: How often a running engine rewrites its status file.
STATUS_INTERVAL_S: Final = 1.0


def _config(path: str | None, data_dir: str | None) -> Any:
    from kapacity.config import ConfigError, load_config
    from kapacity.config.model import Config

    try:
        config = load_config(path) if path else Config()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if data_dir:
        config = config.model_copy(update={"data_dir": data_dir})
    return config


def _status_dir(config: Any) -> Path:
    return Path(config.data_dir) / "runtime-status"


@click.group("engine")
def engine_group() -> None:
    """Run or inspect the queue-based engine (no HTTP API)."""


@engine_group.command("run")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help="config file (TOML or YAML)")
@click.option("--instance", default=None, help="stable instance name (transactional ids, state dir); default: host name")
@click.option("--data-dir", default=None, help="overrides data_dir of the config")
def run(config_path: str | None, instance: str | None, data_dir: str | None) -> None:
    """Run the engine and delivery stages until SIGTERM/SIGINT."""
    from kapacity.errors import KapacityError
    from kapacity.runtime.app import Runtime

    config = _config(config_path, data_dir)
    runtime = Runtime(config, instance=instance)
    try:
        runtime.start()
    except KapacityError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    stop = threading.Event()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1`: where is it stuck?
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    status_dir = _status_dir(config)
    status_dir.mkdir(parents=True, exist_ok=True)
    status_file = status_dir / f"{runtime.instance}.json"
    click.echo(f"kapacity engine ready instance={runtime.instance} queue={config.queue.type}")
    sys.stdout.flush()
    while not stop.wait(STATUS_INTERVAL_S):
        tmp = status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({**runtime.status(), "pid": os.getpid()}))
        tmp.replace(status_file)
    ok = runtime.stop(30.0)
    status_file.unlink(missing_ok=True)
    sys.exit(0 if ok else 1)


@engine_group.command("status")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help="config file (TOML or YAML)")
@click.option("--data-dir", default=None, help="overrides data_dir of the config")
def status(config_path: str | None, data_dir: str | None) -> None:
    """Print the status of the engines running on this data dir (JSON)."""
    config = _config(config_path, data_dir)
    instances = []
    for path in sorted(_status_dir(config).glob("*.json")):
        try:
            instances.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    click.echo(json.dumps({"instances": instances}, indent=2))
