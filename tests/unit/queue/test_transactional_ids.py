"""Producer incarnations of the exactly-once loop: ids and the epoch read from librdkafka."""

from __future__ import annotations

from kapacity.queue.txnids import PREVIOUS_INCARNATIONS, incarnation_ids, parse_epoch


def test_the_epoch_is_read_from_the_acquired_pid_line_and_the_last_one_wins() -> None:
    lines = [
        "Transaction state change Init -> WaitPID",
        "TxnCoordinator/1: Acquiring ProducerId",
        "Acquired PID{Id:1000,Epoch:0}",
        "Acquired PID{Id:1000,Epoch:3}",
    ]
    assert parse_epoch(lines) == 3


def test_no_acquired_pid_line_gives_none() -> None:
    assert parse_epoch([]) is None
    assert parse_epoch(["Acquiring ProducerId", "Acquired PID{Id:-1,Epoch:-1}"]) is None


def test_each_epoch_gets_its_own_working_id_and_initialises_the_previous_ones() -> None:
    working, previous = incarnation_ids("p_engine_a", 7)
    assert working == "p_engine_a.7"
    assert previous == ["p_engine_a.5", "p_engine_a.6"]
    assert len(previous) == PREVIOUS_INCARNATIONS
    assert working not in previous


def test_the_first_incarnations_have_no_or_fewer_predecessors() -> None:
    assert incarnation_ids("x", 0) == ("x.0", [])
    assert incarnation_ids("x", 1) == ("x.1", ["x.0"])


def test_consecutive_incarnations_chain_up() -> None:
    # The incarnation at epoch e+1 fences and cleans up the working id of the one at epoch e.
    for epoch in range(1, 20):
        assert incarnation_ids("x", epoch - 1)[0] in incarnation_ids("x", epoch)[1]
