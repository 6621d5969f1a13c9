"""``kapacity cluster status [--url URL] [--json]``: ``GET /kapacitor/v1/cluster`` of a server."""

from __future__ import annotations

import json
import sys
from typing import Any

import click


@click.group("cluster")
def cluster_group() -> None:
    """The queue cluster seen by a running server (``[queue] type = "kafka"``)."""


def format_status(status: dict[str, Any]) -> str:
    """A human-readable summary of ``GET /kapacitor/v1/cluster``."""
    lines = [f"mode:     {status.get('mode', '?')}",
             f"instance: {status.get('instance', '?')}",
             f"queue:    {status.get('queue', '?')}"]
    if "accepting" in status:
        lines.append(f"accepting writes: {'yes' if status['accepting'] else 'no'}")
    if "pending_points" in status:
        lines.append(f"points pending: {status['pending_points']}, refused: {status.get('refused_points', 0)}")
    for name, stage in sorted((status.get("stages") or {}).items()):
        if not isinstance(stage, dict):
            continue
        if "error" in stage:
            lines.append(f"stage {name}: error: {stage['error']}")
            continue
        parts = [f"partitions={_partitions(stage.get('partitions'))}"]
        for key in ("lag", "restoring", "handled", "errors"):
            if key in stage:
                parts.append(f"{key}={_compact(stage[key])}")
        lines.append(f"stage {name}: " + " ".join(parts))
    for key in ("tasks", "enabled_tasks", "points_received", "points_processed"):
        if key in status and "stages" not in status:
            lines.append(f"{key.replace('_', ' ')}: {status[key]}")
    return "\n".join(lines)


def _partitions(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(_compact(v) for v in value) or "-"
    return _compact(value) if value is not None else "-"


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


@cluster_group.command("status")
@click.option("--url", envvar="KAPACITY_URL", default=None, metavar="URL",
              help="server URL (env KAPACITY_URL; default http://localhost:9092)")
@click.option("--json", "as_json", is_flag=True, help="print the server's JSON as is")
def status(url: str | None, as_json: bool) -> None:
    """Show this server's instance, its partitions, lag and state-restore progress."""
    from kapacity.cli.client import BASE, Client, ClientError, default_url

    try:
        with Client(url or default_url()) as client:
            body = client.request("GET", f"{BASE}/cluster")
    except ClientError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if not isinstance(body, dict):
        click.echo(f"error: unexpected answer from {url or default_url()}: {body!r}", err=True)
        sys.exit(1)
    click.echo(json.dumps(body, indent=2, sort_keys=True) if as_json else format_status(body))
