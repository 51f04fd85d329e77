"""Fixtures shared by the integration tests (tests/integration) and the operator bed's
tests (tests/operator): the cloud in a box, and the venv whose console scripts they run."""

import os
import sys

import pytest

from tests.integration import cloudbox as cloudbox_mod


def pytest_collection_modifyitems(items):
    """The appliance test last: a whole Debian root booted, with its package and pip
    installs, loads this machine for a while after it too (the box's neutron answered
    in over 10 s to the tests right after it)."""
    items.sort(key=lambda item: "test_appliance.py" in item.nodeid)


@pytest.fixture(scope="session")
def box():
    """The cloud in a box (tools/cloudbox), started once per session (fast when it is
    already up) and stopped at the end unless CLOUDBOX_KEEP=1."""
    b = cloudbox_mod.CloudBox()
    b.up()
    yield b
    if os.environ.get("CLOUDBOX_KEEP") != "1":
        b.down()


@pytest.fixture(scope="session")
def venv_bin():
    return os.path.dirname(sys.executable)
