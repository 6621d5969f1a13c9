"""The base every config section derives from: strict, hyphenated keys, unknown keys refused.

A section validates *types* with pydantic and reports *semantic* problems (rules that
depend on several keys, or that Kapacitor skips for disabled sections) from
:meth:`Section.problems`, so the loader can report every problem at once, each at its key.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from kapacity.config.errors import FieldPath

Issue = tuple[FieldPath, str]
"""A semantic problem: the field path *relative to the section* (aliases) and a message."""


def hyphenate(name: str) -> str:
    """``batch_size`` → ``batch-size``: Kapacitor's spelling of config keys."""
    return name.replace("_", "-")


SECTION_CONFIG = ConfigDict(
    strict=True,  # a file's "5" is not 5, nor is 1 true: the same as Kapacitor's TOML decoder
    extra="forbid",
    frozen=True,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
    alias_generator=hyphenate,
    hide_input_in_errors=True,  # errors may concern secrets; the loader shows safe values itself
)


class Section(BaseModel):
    """A ``[section]`` of the config file. Override :meth:`problems` for cross-key rules."""

    model_config = SECTION_CONFIG

    def problems(self) -> list[Issue]:
        """Semantic problems of this section (empty when valid)."""
        return []
