"""Go (RE2) regex syntax translated to Python's re."""

from __future__ import annotations

import pytest

from kapacity.tick._regex import compile_go_regex


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("^cpu[0-9]+$", "cpu12", True),
        ("abc$", "abc\n", False),  # Go's $ is end of text, not before a final newline
        ("(?m)^b$", "a\nb\nc", True),
        ("[[:digit:]]+\\z", "x12", True),
        ("^[[:alpha:]_]+$", "ab_c", True),
        ("^[[:alpha:]_]+$", "ab-c", False),
        ("[]a]", "]", True),
        ("[^]a]", "]", False),
        ("[a[]", "[", True),
        ("(?i)HOST", "my-host", True),
        ("(?P<name>web)-\\d+", "web-1", True),
    ],
)
def test_go_semantics(pattern: str, text: str, matches: bool) -> None:
    assert (compile_go_regex(pattern).search(text) is not None) is matches


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("[a", "error parsing regexp"),
        ("\\pL", "Unicode classes are not supported"),
        ("[[:nope:]]", "unsupported character class [:nope:]"),
    ],
)
def test_invalid(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", "\\[").replace("]", "\\]")):
        compile_go_regex(pattern)
