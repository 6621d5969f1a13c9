"""The ``exec`` alert handler: run a program with the alert JSON on its stdin.

Options: ``prog`` (required) and ``args`` (list of strings). A non-zero exit status is a
failed delivery, logged with the program's output and counted in ``errors``. In the queued
runtime the child's environment has ``KAPACITY_EVENT_ID`` (stdin unchanged).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kapacity.alert.event import AlertData, encode_alert_json
from kapacity.handlers.base import EVENT_ID_ENV
from kapacity.handlers.errors import HandlerError, HandlerOptionError
from kapacity.handlers.log import BackgroundHandler, option, reject_unknown

#: A handler program gets this long before it is killed: an alert program that hangs
#: must not hold the delivery thread (and the alerts queued behind it) forever.
EXEC_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class ExecOptions:
    prog: str
    args: tuple[str, ...] = field(default_factory=tuple)
    timeout: float = EXEC_TIMEOUT_S


def parse_exec_options(options: Mapping[str, Any]) -> ExecOptions:
    """Validate ``options`` of an ``exec`` handler.

    >>> parse_exec_options({"prog": "/bin/cat", "args": ["-u"]}).args
    ('-u',)
    """
    reject_unknown(options, ("prog", "args"), "exec")
    prog = option(options, "prog")
    if not isinstance(prog, str) or not prog:
        raise HandlerOptionError("exec", "prog", f"must be a non-empty program path, got {prog!r}")
    args = option(options, "args", []) or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise HandlerOptionError("exec", "args", f"must be a list of strings, got {args!r}")
    return ExecOptions(prog=prog, args=tuple(args))


class ExecHandler(BackgroundHandler):
    kind = "exec"

    def __init__(self, options: ExecOptions) -> None:
        self.options = options
        super().__init__()

    def deliver(self, alert: AlertData, event_id: str | None = None) -> None:
        cmd = [self.options.prog, *self.options.args]
        # None inherits our environment, as before; the id only adds one variable.
        env = None if event_id is None else {**os.environ, EVENT_ID_ENV: event_id}
        try:
            done = subprocess.run(  # noqa: S603 - the program is the handler's configured one
                cmd, input=encode_alert_json(alert), capture_output=True,
                timeout=self.options.timeout, check=False, env=env,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise HandlerError(f"exec handler: {cmd[0]}: {exc}") from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode("utf-8", "replace").strip()
            raise HandlerError(f"exec handler: {cmd[0]} exited with status {done.returncode}: {output}")
