"""The wheel's dependencies are the runtime requirements: an installation from the wheel
alone (the appliance's pip, the image's) lacks nothing requirements.txt names."""

import configparser

from tests.integration.cloudbox import REPO_ROOT


def _lines(text):
    return {line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")}


def test_setup_cfg_install_requires_is_requirements_txt():
    setup = configparser.ConfigParser()
    setup.read(REPO_ROOT / "setup.cfg")
    assert _lines(setup["options"]["install_requires"]) == _lines(
        (REPO_ROOT / "requirements.txt").read_text())
