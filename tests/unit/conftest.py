"""Fixtures shared by the unit tests."""

import pytest

from cloudpulse import conf as cp_conf
from cloudpulse_rally import tasks


@pytest.fixture
def rally_store(tmp_path):
    """The server's Rally store on a fresh SQLite Rally DB in tmp_path, with its
    environment made (as the server does at start)."""
    conf_file = tmp_path / "cloudpulse.conf"
    conf_file.write_text("[DEFAULT]\nstate_path = %s\n" % tmp_path)
    store = tasks.RallyTasks(cp_conf.load(["--config-file", str(conf_file)]))
    store.ensure_env({})
    return store
