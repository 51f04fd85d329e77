"""Fixtures shared by the unit tests."""

import pytest

from cloudpulse import conf as cp_conf
from cloudpulse_rally import tasks


@pytest.fixture(scope="session")
def rally_plugins():
    """Rally's plugins, loaded once: each environment is then made in this process
    (a server makes its first in a child process, tested by the integration tests)."""
    tasks.load_plugins()


@pytest.fixture
def rally_store(tmp_path, rally_plugins):
    """The server's Rally store on a fresh SQLite Rally DB in tmp_path, with its
    environment made (as the server does at start)."""
    conf_file = tmp_path / "cloudpulse.conf"
    conf_file.write_text("[DEFAULT]\nstate_path = %s\n" % tmp_path)
    store = tasks.RallyTasks(cp_conf.load(["--config-file", str(conf_file)]))
    store.ensure_env({})
    return store
