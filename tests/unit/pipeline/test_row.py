"""Kapacitor's group IDs (``models.ToGroupID``)."""

from __future__ import annotations

import pytest

from kapacity.pipeline.row import group_id, group_label


@pytest.mark.parametrize(("dims", "by_name", "expected"), [
    ((), False, ""),
    ((), True, "cpu"),
    (("host",), False, "host=a"),
    (("host",), True, "cpu\nhost=a"),
    (("dc", "host"), False, "dc=x,host=a"),
    (("missing",), False, "missing="),
    (("dc", "missing"), True, "cpu\ndc=x,missing="),
])
def test_group_id(dims: tuple[str, ...], by_name: bool, expected: str) -> None:
    assert group_id("cpu", {"host": "a", "dc": "x"}, dims, by_name) == expected


def test_nil_group_label() -> None:
    assert group_label("") == "nil" and group_label("host=a") == "host=a"
