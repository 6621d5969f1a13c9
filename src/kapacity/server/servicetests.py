"""``/service-tests``: named checks that send a test message through a configured service."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kapacity.server.errors import NotFound

#: Runs a test with the merged options; returns (success, message).
TestFn = Callable[[dict[str, Any]], tuple[bool, str]]


@dataclass(frozen=True, slots=True)
class ServiceTest:
    defaults: dict[str, Any]
    run: TestFn


class ServiceTests:
    def __init__(self, tests: Mapping[str, ServiceTest]) -> None:
        self._tests = dict(tests)

    def list(self, pattern: str = "") -> list[tuple[str, dict[str, Any]]]:
        return [(name, dict(t.defaults)) for name, t in sorted(self._tests.items())
                if not pattern or fnmatch.fnmatchcase(name, pattern)]

    def _get(self, name: str) -> ServiceTest:
        test = self._tests.get(name)
        if test is None:
            valid = ", ".join(sorted(self._tests)) or "none"
            raise NotFound(f"service {name!r} not found; services with tests: {valid}")
        return test

    def defaults(self, name: str) -> dict[str, Any]:
        return dict(self._get(name).defaults)

    def run(self, name: str, options: Mapping[str, Any]) -> tuple[bool, str]:
        test = self._get(name)
        merged = {**test.defaults, **options}
        try:
            return test.run(merged)
        except Exception as exc:  # noqa: BLE001 - a failed test is an answer, not a 500
            return False, str(exc)
