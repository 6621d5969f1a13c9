"""BoundedCaller: blocking client calls with a deadline that holds even when the call does
not return (librdkafka issue #5511), and an interrupt for a stop that cannot wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from kapacity.queue.transactional import BoundedCaller, FatalLoopError, StuckCallError


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of each test: a call blocked on it then returns and its thread ends."""
    event = threading.Event()
    yield event
    event.set()


def test_results_and_exceptions_come_back_to_the_caller() -> None:
    caller = BoundedCaller("t")
    try:
        assert caller.call(lambda: "done", timeout=5) == "done"

        def fail() -> None:
            raise ValueError("broker said no")

        with pytest.raises(ValueError, match="broker said no"):
            caller.call(fail, timeout=5)
        assert caller.stuck is None  # an error is an answer: the caller stays usable
        assert caller.call(lambda: threading.current_thread().name, timeout=5) == "kapacity-call-t"
    finally:
        caller.close()


def test_a_call_that_outlives_its_bound_is_stuck_and_the_caller_refuses_more(release: threading.Event) -> None:
    caller = BoundedCaller("t_engine_a")
    started = time.monotonic()
    with pytest.raises(StuckCallError, match=r"t_engine_a: commit blocked \(no answer within 0.3s\)"):
        caller.call(release.wait, timeout=0.3, what="commit")
    assert 0.3 <= time.monotonic() - started < 3
    assert caller.stuck == "commit blocked (no answer within 0.3s)"
    ran = threading.Event()
    with pytest.raises(StuckCallError):
        caller.call(ran.set, timeout=5)
    assert not ran.is_set()  # never handed to the blocked thread
    assert issubclass(StuckCallError, FatalLoopError) and not StuckCallError.retriable


def test_an_interrupt_ends_the_wait_now_and_every_later_call(release: threading.Event) -> None:
    caller = BoundedCaller("t")
    threading.Timer(0.2, caller.interrupt).start()
    started = time.monotonic()
    with pytest.raises(StuckCallError, match="interrupted"):
        caller.call(release.wait, timeout=60, what="send_offsets")
    assert time.monotonic() - started < 3  # not the 60 s bound


def test_an_interrupt_between_calls_refuses_the_next_one() -> None:
    caller = BoundedCaller("t")
    assert caller.call(lambda: 1, timeout=5) == 1
    caller.interrupt()
    ran = threading.Event()
    with pytest.raises(StuckCallError, match="not started"):
        caller.call(ran.set, timeout=5, what="commit")
    assert not ran.is_set()
    caller.close()
