"""Pure helpers of the client verbs: dbrp flags, chunked writes, tables."""

from __future__ import annotations

import pytest

from kapacity.cli.client import ClientError, chunks
from kapacity.cli.verbs import _parse_dbrp, _shift_lines, table


@pytest.mark.parametrize(("text", "db", "rp"), [
    ("telegraf.autogen", "telegraf", "autogen"),
    ('"telegraf"."autogen"', "telegraf", "autogen"),
    ('"my.db"."rp"', "my.db", "rp"),
])
def test_dbrp_flag_spellings(text: str, db: str, rp: str) -> None:
    assert _parse_dbrp(text) == {"db": db, "rp": rp}


def test_dbrp_without_rp_is_refused() -> None:
    with pytest.raises(ClientError, match="expected db.rp"):
        _parse_dbrp("telegraf")


def test_chunks_split_on_line_boundaries_and_keep_every_byte() -> None:
    data = b"".join(f"cpu v={i} {i}\n".encode() for i in range(1000))
    parts = list(chunks(data, 100))
    assert b"".join(parts) == data
    assert all(p.endswith(b"\n") for p in parts) and max(len(p) for p in parts) <= 100
    assert list(chunks(b"x" * 50 + b"\n", 10)) == [b"x" * 50 + b"\n"]  # one long line stays whole


def test_errors_of_later_chunks_are_renumbered() -> None:
    assert _shift_lines("line 2:5: bad\nline 7:1: worse", 100) == ["line 102:5: bad", "line 107:1: worse"]


def test_table_aligns_columns() -> None:
    assert table(["ID", "Level"], [["cpu", "OK"], ["memory", "CRITICAL"]]).splitlines() == [
        "ID      Level", "cpu     OK", "memory  CRITICAL"]
