"""Every line-protocol test runs on both implementations of the fast path: the C twin
(``kapacity._native.lineproto``, when built) and the pure-Python one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kapacity.lineprotocol import _parse

_NATIVE = _parse._LINEPROTO


@pytest.fixture(
    scope="module", autouse=True,
    params=["native", "pure"] if _NATIVE is not None else ["pure"],
)
def fast_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Module-scoped (hypothesis refuses function-scoped fixtures around ``@given``)."""
    _parse._LINEPROTO = _NATIVE if request.param == "native" else None
    try:
        yield str(request.param)
    finally:
        _parse._LINEPROTO = _NATIVE
