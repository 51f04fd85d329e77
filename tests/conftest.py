"""Fixtures shared by the integration tests (tests/integration) and the operator bed's
tests (tests/operator): the cloud in a box, and the venv whose console scripts they run."""

import os
import sys

import pytest

from tests.integration import cloudbox as cloudbox_mod


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
