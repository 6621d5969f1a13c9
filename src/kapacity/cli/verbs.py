"""Kapacitor's client verbs against a running server: define, enable, list, show, ...

``--url`` (env ``KAPACITY_URL``, default ``http://localhost:9092``) names the server.
Kapacitor's single-dash long flags (``-tick``, ``-dbrp``, ``-vars``, ``-type``) are
accepted next to ``--tick`` etc. Output is an aligned table like Kapacitor's; ``--json``
prints the server's JSON. Exit status: 0 ok, 1 with the server's error message otherwise.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from kapacity.cli.client import Client, ClientError, chunks, default_url

F = TypeVar("F", bound=Callable[..., Any])

#: A write body is sent in pieces of about this size so that a large file shows progress
#: and never makes one huge request (the server caps a body at 25 MB).
WRITE_CHUNK_BYTES = 1024 * 1024


def _url_option(f: F) -> F:
    return click.option("--url", envvar="KAPACITY_URL", default=None, metavar="URL",
                        help="kapacity server URL (env KAPACITY_URL, default http://localhost:9092)")(f)


def _json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")(f)


def _client_errors(f: F) -> F:
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except ClientError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature


def _client(url: str | None) -> Client:
    return Client(url or default_url())


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to the widest cell, like Kapacitor's ``list`` output."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def _dbrps(task: dict[str, Any]) -> str:
    return "[" + ", ".join(f'"{d["db"]}"."{d["rp"]}"' for d in task.get("dbrps") or []) + "]"


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


# ---------------------------------------------------------------------------- tasks
@click.command("define")
@click.argument("task_id")
@click.option("-tick", "--tick", "tick", type=click.Path(exists=True, dir_okay=False), help="TICKscript file")
@click.option("-dbrp", "--dbrp", "dbrps", multiple=True, metavar="DB.RP", help="database.retention_policy")
@click.option("-vars", "--vars", "vars_file", type=click.Path(exists=True, dir_okay=False),
              help="JSON file of task vars")
@click.option("-type", "--type", "task_type", type=click.Choice(["stream", "batch"]), default=None)
@click.option("-no-reload", "--no-reload", "no_reload", is_flag=True, help="accepted for compatibility")
@_url_option
@_json_option
@_client_errors
def define(task_id: str, tick: str | None, dbrps: tuple[str, ...], vars_file: str | None,
           task_type: str | None, no_reload: bool, url: str | None, as_json: bool) -> None:
    """Create or update a task."""
    del no_reload
    body: dict[str, Any] = {"id": task_id}
    if tick:
        body["script"] = Path(tick).read_text()
    if task_type:
        body["type"] = task_type
    if dbrps:
        body["dbrps"] = [_parse_dbrp(d) for d in dbrps]
    if vars_file:
        try:
            body["vars"] = json.loads(Path(vars_file).read_text())
        except ValueError as exc:
            raise ClientError(f"{vars_file}: invalid JSON: {exc}") from None
    with _client(url) as c:
        if c.task_exists(task_id):
            result = c.update_task(task_id, body)
        else:
            if "script" not in body:
                raise ClientError("must provide TICKscript via -tick flag")
            result = c.create_task(body)
    if as_json:
        _echo_json(result)


def _parse_dbrp(text: str) -> dict[str, str]:
    t = text.strip()
    if t.startswith('"'):
        end = t.find('"', 1)
        db, rest = t[1:end], t[end + 1:]
    else:
        db, _, rest = t.partition(".")
        rest = "." + rest if rest else ""
    rp = rest[1:] if rest.startswith(".") else ""
    if not db or not rp:
        raise ClientError(f"invalid dbrp {text!r}: expected db.rp")
    return {"db": db, "rp": rp.strip('"')}


def _set_status(task_ids: tuple[str, ...], status: str, url: str | None) -> None:
    with _client(url) as c:
        for task_id in task_ids:
            task = c.update_task(task_id, {"status": status})
            if task.get("error"):
                raise ClientError(f"task {task_id}: {task['error']}")


@click.command("enable")
@click.argument("task_ids", nargs=-1, required=True)
@_url_option
@_client_errors
def enable(task_ids: tuple[str, ...], url: str | None) -> None:
    """Enable tasks."""
    _set_status(task_ids, "enabled", url)


@click.command("disable")
@click.argument("task_ids", nargs=-1, required=True)
@_url_option
@_client_errors
def disable(task_ids: tuple[str, ...], url: str | None) -> None:
    """Disable tasks."""
    _set_status(task_ids, "disabled", url)


@click.command("list")
@click.argument("what", type=click.Choice(["tasks", "topics", "topic-handlers"]))
@click.argument("patterns", nargs=-1)
@_url_option
@_json_option
@_client_errors
def list_(what: str, patterns: tuple[str, ...], url: str | None, as_json: bool) -> None:
    """List tasks, topics or topic-handlers (optionally matching glob patterns)."""
    pats = patterns or ("",)
    with _client(url) as c:
        if what == "tasks":
            tasks = {t["id"]: t for p in pats for t in c.tasks(p)}
            items: list[Any] = [tasks[k] for k in sorted(tasks)]
            if as_json:
                return _echo_json(items)
            click.echo(table(["ID", "Type", "Status", "Executing", "Databases and Retention Policies"],
                             [[t["id"], t["type"], t["status"], str(t["executing"]).lower(), _dbrps(t)]
                              for t in items]))
        elif what == "topics":
            topics = {t["id"]: t for p in pats for t in c.topics(p)}
            items = [topics[k] for k in sorted(topics)]
            if as_json:
                return _echo_json(items)
            click.echo(table(["ID", "Level", "Collected"], [[t["id"], t["level"], t["collected"]] for t in items]))
        else:
            rows = []
            for t in c.topics():
                for h in c.handlers(t["id"]):
                    rows.append({**h, "topic": t["id"]})
            if patterns:
                import fnmatch
                rows = [h for h in rows if any(fnmatch.fnmatchcase(h["id"], p) for p in patterns)]
            if as_json:
                return _echo_json(rows)
            click.echo(table(["Topic", "ID", "Kind"], [[h["topic"], h["id"], h["kind"]] for h in rows]))
    return None


@click.command("show")
@click.argument("task_id")
@_url_option
@_json_option
@_client_errors
def show(task_id: str, url: str | None, as_json: bool) -> None:
    """Show a task: status, script, DOT graph with node stats."""
    with _client(url) as c:
        t = c.task(task_id)
    if as_json:
        return _echo_json(t)
    lines = [
        f"ID: {t['id']}", f"Error: {t.get('error', '')}", f"Template: {t.get('template-id', '')}",
        f"Type: {t['type']}", f"Status: {t['status']}", f"Executing: {str(t['executing']).lower()}",
        f"Created: {t.get('created', '')}", f"Modified: {t.get('modified', '')}",
        f"LastEnabled: {t.get('last-enabled', '')}", f"Databases Retention Policies: {_dbrps(t)}",
        "TICKscript:", t.get("script", "").rstrip(), "", "DOT:", t.get("dot", "").rstrip(),
    ]
    click.echo("\n".join(lines))
    return None


@click.command("delete")
@click.argument("what", type=click.Choice(["tasks", "topics", "topic-handlers"]))
@click.argument("ids", nargs=-1, required=True)
@_url_option
@_client_errors
def delete(what: str, ids: tuple[str, ...], url: str | None) -> None:
    """Delete tasks or topics by ID, or a handler: ``delete topic-handlers TOPIC ID``."""
    with _client(url) as c:
        if what == "tasks":
            for i in ids:
                c.delete_task(i)
        elif what == "topics":
            for i in ids:
                c.delete_topic(i)
        else:
            if len(ids) != 2:
                raise ClientError("usage: delete topic-handlers TOPIC HANDLER_ID")
            c.delete_handler(ids[0], ids[1])


# ---------------------------------------------------------------------------- topics
@click.command("show-topic")
@click.argument("topic")
@_url_option
@_json_option
@_client_errors
def show_topic(topic: str, url: str | None, as_json: bool) -> None:
    """Show a topic: level, handlers and events."""
    with _client(url) as c:
        t = c.topic(topic)
        handlers = c.handlers(topic)
        events = c.topic_events(topic)
    if as_json:
        return _echo_json({**t, "handlers": handlers, "events": events})
    click.echo(f"ID: {t['id']}\nLevel: {t['level']}\nCollected: {t['collected']}")
    click.echo("Handlers: [" + ", ".join(h["id"] for h in handlers) + "]")
    click.echo("Events:")
    click.echo(table(["Event", "Level", "Message", "Date"],
                     [[e["id"], e["state"]["level"], e["state"]["message"], e["state"]["time"]] for e in events]))
    return None


@click.command("show-topic-handler")
@click.argument("topic")
@click.argument("handler_id")
@_url_option
@_json_option
@_client_errors
def show_topic_handler(topic: str, handler_id: str, url: str | None, as_json: bool) -> None:
    """Show one topic handler."""
    with _client(url) as c:
        h = c.handler(topic, handler_id)
    if as_json:
        return _echo_json(h)
    click.echo(f"ID: {h['id']}\nTopic: {topic}\nKind: {h['kind']}\nMatch: {h.get('match', '')}")
    click.echo("Options: " + json.dumps(h.get("options") or {}, separators=(",", ":"), sort_keys=True))
    return None


def load_handler_file(path: str) -> dict[str, Any]:
    """Read a handler file (YAML or JSON); errors name the file, line:column and the field."""
    from kapacity.alert.handlerspec import HandlerSpecError
    from kapacity.alert.handlerspec import load_handler_file as load

    try:
        return load(path).to_dict()
    except HandlerSpecError as exc:
        raise ClientError(str(exc)) from None


@click.command("define-topic-handler")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@_url_option
@_json_option
@_client_errors
def define_topic_handler(path: str, url: str | None, as_json: bool) -> None:
    """Create or replace a topic handler from a .yaml/.yml/.json file."""
    spec = load_handler_file(path)
    topic = spec.pop("topic")
    with _client(url) as c:
        try:
            result = c.define_handler(topic, spec)
        except ClientError as exc:
            raise ClientError(f"{path}: {exc}", exc.status) from None
    if as_json:
        _echo_json(result)


# ---------------------------------------------------------------------------- misc
def _run_service_tests(names: tuple[str, ...], url: str | None, as_json: bool) -> None:
    results = []
    with _client(url) as c:
        for s in c.service_tests():
            if names and s["name"] not in names:
                continue
            r = c.run_service_test(s["name"], s.get("options") or {})
            results.append({"service": s["name"], **r})
    if as_json:
        _echo_json(results)
    else:
        click.echo(table(["Service", "Success", "Message"],
                         [[r["service"], str(r["success"]).lower(), r["message"]] for r in results]))
    if any(not r["success"] for r in results):
        sys.exit(1)


@click.command("server")
@click.argument("names", nargs=-1)
@_url_option
@_json_option
@_client_errors
def service_tests_server(names: tuple[str, ...], url: str | None, as_json: bool) -> None:
    """Run the running server's service tests (all, or the named ones)."""
    _run_service_tests(names, url, as_json)


class ServiceTestsGroup(click.Group):
    """``service-tests``: Kapacitor's ``service-tests [NAME...]`` asks the running server.

    Local variants registered as sub-commands (``service-tests kafka --config F``) run
    only when one of their own options is given; ``service-tests kafka`` alone means what
    it means to Kapacitor: the server's ``kafka`` test. ``service-tests server NAME...``
    is the explicit spelling.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not self._local(args) and not (args and args[0] in ("server", "--help", "-h")):
            args = ["server", *args]
        return super().parse_args(ctx, args)

    def _local(self, args: list[str]) -> bool:
        """True when ``args`` name a local sub-command together with one of its options."""
        names = [a for a in args if a in self.commands and a != "server"]
        if not names:
            return False
        cmd = self.commands[names[0]]
        own = {o for p in cmd.params if isinstance(p, click.Option) for o in p.opts + p.secondary_opts}
        own -= {"--json", "--help", "-h"}
        return any(a.split("=", 1)[0] in own for a in args) or "--help" in args


@click.group("service-tests", cls=ServiceTestsGroup, invoke_without_command=True)
def service_tests() -> None:
    """Run the server's service tests: ``service-tests [NAME...] [--url URL] [--json]``.

    Exit status 1 when a test fails. ``service-tests kafka --config FILE`` tests a cluster
    of a config file directly, without a server.
    """


service_tests.add_command(service_tests_server)


@click.command("stats")
@click.argument("what", type=click.Choice(["general", "ingress", "tasks", "kafka", "all"]), default="all")
@_url_option
@_json_option
@_client_errors
def stats(what: str, url: str | None, as_json: bool) -> None:
    """Server statistics from /debug/vars."""
    with _client(url) as c:
        v = c.debug_vars()
    if as_json:
        return _echo_json(v)
    groups = v.get("kapacitor") or {}
    if what in ("general", "all"):
        click.echo(f"ClusterID: {v.get('cluster_id', '')}\nServerID: {v.get('server_id', '')}\n"
                   f"Host: {v.get('host', '')}\nTasks: {v.get('num_tasks', 0)}\n"
                   f"Enabled Tasks: {v.get('num_enabled_tasks', 0)}\nVersion: {v.get('version', '')}")
    if what in ("ingress", "all"):
        w = (groups.get("write") or {}).get("values") or {}
        click.echo(table(["Stat", "Value"], sorted(w.items())))
    if what in ("tasks", "all"):
        rows = [[g["tags"].get("task", ""), g["tags"].get("node", ""), k, val]
                for g in groups.values() if g.get("name") == "nodes" for k, val in sorted(g["values"].items())]
        click.echo(table(["Task", "Node", "Stat", "Value"], rows))
    if what in ("kafka", "all"):
        rows = [[g["tags"].get("cluster", ""), g["tags"].get("topic", ""), k, val]
                for g in groups.values() if g.get("name") == "kafka" for k, val in sorted(g["values"].items())]
        click.echo(table(["Cluster", "Topic", "Stat", "Value"], rows))
    return None


@click.command("write")
@click.argument("path", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--db", "-db", "db", required=True, help="database")
@click.option("--rp", "-rp", "rp", default="", help="retention policy")
@click.option("--precision", "-precision", "precision", default="n",
              type=click.Choice(["n", "ns", "u", "ms", "s", "m", "h"]))
@_url_option
@_client_errors
def write(path: str | None, db: str, rp: str, precision: str, url: str | None) -> None:
    """Write line protocol from PATH (or stdin) to the server."""
    if precision == "ns":
        precision = "n"
    data = sys.stdin.buffer.read() if path in (None, "-") else Path(str(path)).read_bytes()
    pieces = list(chunks(data, WRITE_CHUNK_BYTES))
    line_offset = 0
    errors: list[str] = []
    from rich.progress import Progress

    with _client(url) as c, Progress(transient=True, disable=len(pieces) < 4 or not sys.stderr.isatty()) as bar:
        task = bar.add_task("writing", total=len(data))
        for piece in pieces:
            try:
                c.write(piece, db, rp, precision)
            except ClientError as exc:
                if exc.status != 400:
                    raise
                errors.extend(_shift_lines(str(exc), line_offset))
            line_offset += piece.count(b"\n")
            bar.advance(task, len(piece))
    if errors:
        raise ClientError("\n".join(errors), 400)


def _shift_lines(message: str, offset: int) -> list[str]:
    """Renumber ``line N:`` of a chunk's errors to the line numbers of the whole file."""
    import re

    def fix(m: re.Match[str]) -> str:
        return f"line {int(m.group(1)) + offset}"

    return [re.sub(r"^line (\d+)", fix, line) for line in message.splitlines() if line.strip()]


COMMANDS = [define, enable, disable, list_, show, delete, show_topic, show_topic_handler,
            define_topic_handler, stats, write]


def register(group: click.Group) -> None:
    """Add the client verbs to ``group``. ``service-tests``: when another module already
    registered a group of that name, its sub-commands join :class:`ServiceTestsGroup`,
    which takes its place."""
    from kapacity.cli.kafkatail import kafka_group, tail

    for cmd in COMMANDS:
        group.add_command(cmd)
    kafka = group.commands.get("kafka")
    if isinstance(kafka, click.Group):
        kafka.add_command(tail)
    else:
        group.add_command(kafka_group)
    existing = group.commands.get("service-tests")
    if isinstance(existing, click.Group) and existing is not service_tests:
        for name, cmd in existing.commands.items():  # e.g. the local `kafka --config`
            if name not in service_tests.commands:
                service_tests.add_command(cmd, name)
    group.add_command(service_tests)
