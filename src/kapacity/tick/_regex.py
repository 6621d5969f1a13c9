"""Go (RE2) regular expressions as Python ``re`` patterns.

TICKscript regexes are Go's. The common syntax is shared; the differences that
matter in alerting scripts are translated (``\\z``, POSIX classes such as
``[[:digit:]]``) and the rest of what Python cannot express is rejected with a
clear message rather than silently meaning something else.
"""

from __future__ import annotations

import re
import warnings

_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7F",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1F\\x7F",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_POSIX_RE = re.compile(r"\[:(\^?)([a-z]+):\]")


_MULTILINE_FLAG = re.compile(r"\(\?[a-zA-Z]*m")


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    n = len(pattern)
    in_class = False
    # Go's '$' (without the m flag) matches only at the very end; Python's also
    # before a final newline, so it becomes \Z.
    multiline = _MULTILINE_FLAG.search(pattern) is not None
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "z" and not in_class:
                out.append("\\Z")
            elif nxt in "pPC":
                raise ValueError(f"unsupported escape \\{nxt} (Unicode classes are not supported)")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "[" and pattern.startswith("[:", i):
                m = _POSIX_RE.match(pattern, i)
                if m and m.group(2) in _POSIX and not m.group(1):
                    out.append(_POSIX[m.group(2)])
                    i = m.end()
                    continue
                if m:
                    raise ValueError(f"unsupported character class {m.group(0)}")
            if ch == "[":
                # A literal '[' inside a class; escaped so Python does not warn about nested sets.
                out.append("\\[")
                i += 1
                continue
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            # A ']' right after '[' or '[^' is a literal member of the class.
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append("\\]")
                i += 1
            continue
        if ch == "$" and not multiline:
            out.append("\\Z")
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def compile_go_regex(pattern: str) -> re.Pattern[str]:
    """Compile a Go regex; ``ValueError`` names what is wrong."""
    translated = _translate(pattern)
    try:
        with warnings.catch_warnings():
            # "possible nested set" and similar FutureWarnings: the pattern is
            # Go's, so Python's future syntax changes do not concern the user.
            warnings.simplefilter("ignore")
            return re.compile(translated)
    except re.error as exc:
        raise ValueError(f"error parsing regexp: {exc}") from None
    except (OverflowError, RecursionError):
        raise ValueError("error parsing regexp: expression too large") from None
