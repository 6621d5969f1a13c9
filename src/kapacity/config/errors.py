"""Configuration errors: every problem found, each with its file, line:column and field.

::

    KapacityError
     ├── ConfigError            a config file (or model) has one or more problems
     └── UnknownClusterError    a handler names a [[kafka]] cluster that is not usable
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kapacity.errors import KapacityError

FieldPath = tuple[str | int, ...]
"""Where a value lives in the document: ``("kafka", 1, "sasl-mechanism")`` (aliases, 0-based)."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One located problem.

    ``where`` is the human field path (``kafka[1] (id "infra"): sasl-mechanism``);
    ``line``/``column`` are 1-based and ``None`` when unknown (e.g. a model built in code).
    """

    message: str
    path: FieldPath = ()
    where: str = ""
    source: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.source is not None:
            pos = self.source
            if self.line is not None:
                pos += f":{self.line}"
                if self.column is not None:
                    pos += f":{self.column}"
            parts.append(pos)
        if self.where:
            parts.append(self.where)
        parts.append(self.message)
        return ": ".join(parts)


class ConfigError(KapacityError):
    """A configuration has problems; ``problems`` lists every one of them, in document order."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems: Sequence[ConfigProblem] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid configuration")


class UnknownClusterError(KapacityError, LookupError):
    """``Config.kafka_cluster(id)`` found no usable cluster; the message names the valid ids."""
