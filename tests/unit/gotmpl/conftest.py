from __future__ import annotations

import pytest

from kapacity.alert.event import AlertData
from tests.unit.gotmpl._data import make_alert


@pytest.fixture
def alert() -> AlertData:
    return make_alert()
