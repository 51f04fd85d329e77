"""Fixtures over the cloud in a box (tools/cloudbox): real OpenStack services on 127.0.0.1.

The box itself is the session fixture `box` (tests/conftest.py).  Fault tests use
`faults`, which heals everything it broke after the test and waits until the cloud
reports healthy again.
"""

import socket
import subprocess
import time

import pytest

from cloudpulse.checks import endpoint
from cloudpulse import cloud
from cloudpulse import conf as cp_conf
from cloudpulse import results
from cloudpulse_rally import tasks
from tests.integration.postgres import PostgreSQL

TIMEOUT = 3.0   # per API call in the tests: a hung service must fail fast


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def wait_healthy(conn, timeout=120, services=endpoint.SERVICES, horizon_url=None):
    """Until every endpoint check passes (after a fault is healed)."""
    deadline = time.monotonic() + timeout
    while True:
        out = endpoint.run_endpoint_checks(conn, services=services, timeout=TIMEOUT,
                                           horizon_url=horizon_url)
        bad = [r for r in out if not r.ok]
        if not bad:
            return out
        if time.monotonic() > deadline:
            raise AssertionError("cloud not healthy %ss after the fault was healed: %s" % (
                timeout, [(r.name, r.details) for r in bad]))
        time.sleep(1)


@pytest.fixture(scope="session")
def admin_conn(box):
    conn = cloud.connect(box.admin_cloud, box.clouds_yaml, timeout=TIMEOUT)
    wait_healthy(conn, horizon_url=box.horizon_url)
    return conn


@pytest.fixture(scope="module")
def silent_horizon():
    """A listener that never answers: a run's horizon probe lasts one API timeout (so a
    run stays in flight for seconds), and its failure names this address."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield "http://127.0.0.1:%d/dashboard" % listener.getsockname()[1]


@pytest.fixture(scope="module")
def database():
    """A PostgreSQL of the module's own (the shared database of a deployment)."""
    db = PostgreSQL()
    yield db
    db.stop()


@pytest.fixture(scope="session")
def demo_conn(box):
    return cloud.connect(box.demo_cloud, box.clouds_yaml, timeout=TIMEOUT)


@pytest.fixture(scope="session")
def workload_engine(box, tmp_path_factory):
    """Rally's engine with the box's admin as its environment, and the task arguments the
    types that boot VMs (functional, comprehensive) share on the box."""
    state = tmp_path_factory.mktemp("workload-state")
    conf_file = state / "cloudpulse.conf"
    conf_file.write_text("[DEFAULT]\nstate_path = %s\n" % state)
    store = tasks.RallyTasks(cp_conf.load(["--config-file", str(conf_file)]))
    region = cloud.connect(box.admin_cloud, box.clouds_yaml).config
    store.ensure_env(tasks.env_spec(region, is_admin=True))
    image = state / "image.raw"
    image.write_bytes(b"cloudbox instance image\n" * 64)
    return store, {"image_file": str(image), "flavor": "cbx.tiny",
                   "external_network": "public", "ssh_user": "root",
                   "image_disk_format": "raw", "boot_timeout": 60, "ping_timeout": 20,
                   "timeout": 10}


def run_engine(store, check_type, args):
    """One run of `check_type` through Rally's engine: the finished CheckRun."""
    handle = store.create_run([results.CheckType(check_type)])
    store.start_engine(handle, [(results.CheckType(check_type), args)])
    return store.get_run(handle)


class Faults:
    """Inject real faults; everything is healed when the test ends."""

    def __init__(self, box):
        self.box = box
        self.stopped, self.hung = [], []

    def stop(self, service):
        self.stopped.append(service)
        self.box.stop(service)

    def hang(self, service):
        self.hung.append(service)
        self.box.hang(service)

    def heal(self):
        for service in self.hung:
            self.box.resume(service)
        for service in self.stopped:
            self.box.start(service)


@pytest.fixture
def faults(box, admin_conn):
    f = Faults(box)
    yield f
    f.heal()
    if f.stopped or f.hung:
        wait_healthy(admin_conn, timeout=180, horizon_url=box.horizon_url)


def wait_for_result(produce, predicate, timeout, interval=1.0):
    """Re-run `produce` until `predicate(result)`; the last result either way."""
    deadline = time.monotonic() + timeout
    while True:
        value = produce()
        if predicate(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def by_name(check_results):
    return {r.name: r for r in check_results}


def run_cmd(args, timeout=600, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)

