"""``kapacity cluster status [--url URL] [--json]``: ``GET /kapacitor/v1/cluster`` of a server.

The text form prints the answering instance's own status, then (queue runtime) a table of
every instance of the cluster: state, engine and delivery partitions, lag, restore progress.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Mapping
from typing import Any, Final

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
    members = [m for m in status.get("instances") or () if isinstance(m, Mapping)]
    if members:
        lines.append("")
        lines.append(format_instances(members))
    return "\n".join(lines)


#: Columns of the instances table; the answer's JSON (``--json``) has every detail.
INSTANCE_COLUMNS: Final = ("instance", "host", "state", "engine", "delivery", "lag", "restoring", "seen")
#: Wide enough for a few partitions per stage without wrapping; the table never reads a tty.
TABLE_WIDTH: Final = 120


def _stage(member: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    stages = member.get("stages")
    stage = stages.get(name) if isinstance(stages, Mapping) else None
    return stage if isinstance(stage, Mapping) else {}


def instance_row(member: Mapping[str, Any]) -> tuple[str, ...]:
    """One table row: partitions per stage, total lag ``engine/delivery``, restoring records."""
    engine, delivery = _stage(member, "engine"), _stage(member, "delivery")

    def parts(stage: Mapping[str, Any]) -> str:
        return f"error: {stage['error']}" if "error" in stage else _partitions(stage.get("partitions"))

    def lag(stage: Mapping[str, Any]) -> str:
        return str(stage["lag_total"]) if "lag_total" in stage else "-"

    restoring = engine.get("restoring")
    restore = ",".join(f"{p}:{n}" for p, n in sorted(restoring.items())) if isinstance(restoring, Mapping) else ""
    ago = member.get("last_seen_ago_s")
    return (
        str(member.get("instance", "?")), str(member.get("host", "-")), str(member.get("state", "?")),
        parts(engine), parts(delivery), f"{lag(engine)}/{lag(delivery)}", restore or "-",
        f"{ago:g}s ago" if isinstance(ago, int | float) else "-",
    )


def format_instances(members: list[Mapping[str, Any]]) -> str:
    """The instances as a Rich table (plain text: no colour, fixed width)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="instances", title_justify="left", box=None, pad_edge=False)
    for column in INSTANCE_COLUMNS:
        table.add_column(column.upper(), no_wrap=True)
    for member in members:
        table.add_row(*instance_row(member))
    out = io.StringIO()
    Console(file=out, width=TABLE_WIDTH, color_system=None, force_terminal=False, highlight=False).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


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
    """Show every instance of the cluster: partitions, lag, state-restore progress, state."""
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
