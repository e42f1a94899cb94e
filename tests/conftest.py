import pytest

from tests.support.processes import kill_leftovers


@pytest.fixture(autouse=True)
def _no_process_left_behind():
    yield
    kill_leftovers()
