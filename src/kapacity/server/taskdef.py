"""Task definitions as the HTTP API sees them: validation of create/update bodies and the
JSON shape of a task (Kapacitor's ``client.Task``). Pure: no I/O, ``now`` is passed in.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from kapacity.gotypes import Time
from kapacity.server.errors import BadRequest
from kapacity.server.links import link, task_href

#: Kapacitor's task ID rule (``^[-\._\p{L}0-9]+$``); ``\w`` covers letters, digits and ``_``.
TASK_ID = re.compile(r"^[-.\w]+$")
ENABLED, DISABLED = "enabled", "disabled"
STREAM, BATCH = "stream", "batch"
VAR_TYPES = ("bool", "int", "float", "string", "duration", "regex", "lambda", "star", "list")
#: Retention policy given to writes and dbrps that name none (InfluxDB's default).
DEFAULT_RP = "autogen"


@dataclass(frozen=True, slots=True)
class DBRP:
    db: str
    rp: str

    def to_json(self) -> dict[str, str]:
        return {"db": self.db, "rp": self.rp}


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """What the store keeps for a task. Times are ns since the epoch (0 = never)."""

    id: str
    script: str
    dbrps: tuple[DBRP, ...]
    type: str = STREAM
    status: str = DISABLED
    vars: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    created: int = 0
    modified: int = 0
    last_enabled: int = 0

    def to_store(self) -> dict[str, Any]:
        return {
            "id": self.id, "script": self.script, "dbrps": [d.to_json() for d in self.dbrps],
            "type": self.type, "status": self.status, "vars": self.vars, "error": self.error,
            "created": self.created, "modified": self.modified, "last-enabled": self.last_enabled,
        }

    @classmethod
    def from_store(cls, data: dict[str, Any]) -> TaskRecord:
        return cls(
            id=data["id"], script=data["script"],
            dbrps=tuple(DBRP(d["db"], d["rp"]) for d in data["dbrps"]),
            type=data.get("type", STREAM), status=data.get("status", DISABLED),
            vars=dict(data.get("vars") or {}), error=data.get("error", ""),
            created=int(data.get("created", 0)), modified=int(data.get("modified", 0)),
            last_enabled=int(data.get("last-enabled", 0)),
        )


def go_time(ns: int) -> str:
    """A Go ``time.Time`` as JSON: RFC3339Nano, the zero time for 'never'."""
    return "0001-01-01T00:00:00Z" if ns == 0 else Time(ns).rfc3339nano()


def task_json(
    rec: TaskRecord, *, executing: bool, dot: str, stats: dict[str, Any], error: str | None = None
) -> dict[str, Any]:
    """Kapacitor's task JSON (field order as in ``client.Task``)."""
    return {
        "link": link(task_href(rec.id)),
        "id": rec.id,
        "template-id": "",
        "type": rec.type,
        "dbrps": [d.to_json() for d in rec.dbrps],
        "script": rec.script,
        "vars": rec.vars,
        "dot": dot,
        "status": rec.status,
        "executing": executing,
        "error": rec.error if error is None else error,
        "stats": stats,
        "created": go_time(rec.created),
        "modified": go_time(rec.modified),
        "last-enabled": go_time(rec.last_enabled),
    }


def parse_dbrps(raw: Any) -> tuple[DBRP, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BadRequest(f"dbrps: expected a list of {{\"db\": ..., \"rp\": ...}}, got {raw!r}")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("db"), str) or not item["db"]:
            raise BadRequest(f"dbrps[{i}]: expected {{\"db\": \"name\", \"rp\": \"name\"}}, got {item!r}")
        rp = item.get("rp") or DEFAULT_RP
        if not isinstance(rp, str):
            raise BadRequest(f"dbrps[{i}].rp: expected a string, got {rp!r}")
        out.append(DBRP(item["db"], rp))
    return tuple(out)


def parse_vars(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest(f"vars: expected an object of {{\"type\": ..., \"value\": ...}}, got {raw!r}")
    for name, var in raw.items():
        if not isinstance(var, dict) or "value" not in var:
            raise BadRequest(f"vars.{name}: expected {{\"type\": ..., \"value\": ...}}, got {var!r}")
        if var.get("type") not in VAR_TYPES:
            raise BadRequest(
                f"vars.{name}.type: invalid type {var.get('type')!r}; valid: {', '.join(VAR_TYPES)}"
            )
    return dict(raw)


def parse_status(raw: Any) -> str:
    if raw in (None, ""):
        return DISABLED
    if raw not in (ENABLED, DISABLED):
        raise BadRequest(f"status: invalid status {raw!r}; valid: enabled, disabled")
    return str(raw)


def infer_type(script: str, given: Any) -> str:
    """Stream or batch, from the script's first source (as Kapacitor ≥1.5 does)."""
    if given not in (None, "", STREAM, BATCH):
        raise BadRequest(f"type: invalid task type {given!r}; valid: stream, batch")
    code = re.sub(r"//[^\n]*", "", script)
    m = re.search(r"(?<![\w.\"'])(stream|batch)\s*\|", code)
    return m.group(1) if m else str(given or STREAM)


def check_id(task_id: str) -> None:
    if not TASK_ID.match(task_id):
        raise BadRequest(f"task ID must contain only letters, numbers, '-', '.' and '_'. {task_id!r}")


def new_record(body: Any, now_ns: int) -> TaskRecord:
    """Validate a ``POST /tasks`` body into a record (the script is compiled later)."""
    if not isinstance(body, dict):
        raise BadRequest("invalid JSON")
    task_id = body.get("id") or str(uuid.uuid4())
    if not isinstance(task_id, str):
        raise BadRequest(f"id: expected a string, got {task_id!r}")
    check_id(task_id)
    if body.get("template-id"):
        raise BadRequest("templates are not supported; send the TICKscript in 'script'")
    script = body.get("script")
    if not isinstance(script, str) or not script.strip():
        raise BadRequest("must provide TICKscript")
    status = parse_status(body.get("status"))
    return TaskRecord(
        id=task_id, script=script, dbrps=parse_dbrps(body.get("dbrps")),
        type=infer_type(script, body.get("type")), status=status, vars=parse_vars(body.get("vars")),
        created=now_ns, modified=now_ns, last_enabled=now_ns if status == ENABLED else 0,
    )


def updated_record(old: TaskRecord, body: Any, now_ns: int) -> TaskRecord:
    """Apply a ``PATCH /tasks/<id>`` body: only the fields it names change."""
    if not isinstance(body, dict):
        raise BadRequest("invalid JSON")
    rec = old
    if body.get("id") and body["id"] != old.id:
        check_id(str(body["id"]))
        rec = replace(rec, id=str(body["id"]))
    if body.get("template-id"):
        raise BadRequest("templates are not supported; send the TICKscript in 'script'")
    if body.get("script"):
        if not isinstance(body["script"], str):
            raise BadRequest("script: expected a string")
        rec = replace(rec, script=body["script"], type=infer_type(body["script"], body.get("type")))
    if body.get("dbrps"):
        rec = replace(rec, dbrps=parse_dbrps(body["dbrps"]))
    if body.get("vars") is not None:
        rec = replace(rec, vars=parse_vars(body["vars"]))
    if body.get("status"):
        status = parse_status(body["status"])
        if status == ENABLED and old.status != ENABLED:
            rec = replace(rec, last_enabled=now_ns)
        rec = replace(rec, status=status)
    return replace(rec, modified=now_ns)
