"""Fixtures over the cloud in a box (tools/cloudbox): real OpenStack services on 127.0.0.1.

The box itself is the session fixture `box` (tests/conftest.py).  Fault tests use
`faults`, which heals everything it broke after the test and waits until the cloud
reports healthy again.
"""

import json
import os
import socket
import subprocess
import time

import pytest
import requests

from cloudpulse.checks import endpoint
from cloudpulse import cloud
from cloudpulse import conf as cp_conf
from cloudpulse import results
from cloudpulse_rally import tasks
from tests.integration.postgres import PostgreSQL

TIMEOUT = 5.0   # per API call in the tests: a hung service must fail fast, a loaded box not
# A VM-booting run makes calls that take seconds on a loaded box (a router's interface on
# OVN, while three VMs' ports bind on the box's one neutron worker): the API timeout of a
# real deployment, not the tests' fail-fast one.
WORKLOAD_TIMEOUT = 30.0


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
                   "timeout": WORKLOAD_TIMEOUT}


# [functional] of a server whose data-plane types boot VMs on the box (image_file: %s)
FUNCTIONAL_CONF = (
    "[functional]\nimage_file = %s\nflavor = cbx.tiny\nexternal_network = public\n"
    "ssh_user = root\nimage_disk_format = raw\nboot_timeout = 60\nping_timeout = 30\n")


@pytest.fixture(scope="session")
def all_through_the_cli(venv_bin, tmp_path_factory, box):
    """One run of type=all (endpoint, functional and comprehensive: one Rally task for the
    two that boot VMs) through a `cloudpulse-server` and `cpulse check all --wait -f
    json`, on the healthy box: the data plane that test_api_cli (the server and the CLI),
    test_functional and test_comprehensive (each type's steps) judge, booted once for
    them all.  (the types the server offered, the CLI's CompletedProcess)"""
    from tests.integration.server import Server   # it imports this module
    state = tmp_path_factory.mktemp("all-run")
    image = state / "image.raw"
    image.write_bytes(b"cloudbox instance image\n" * 64)
    srv = Server(venv_bin, state, box,
                 extra=FUNCTIONAL_CONF % image + "[comprehensive]\nprobe_timeout = 10\n",
                 timeout=WORKLOAD_TIMEOUT)
    try:
        types = requests.get(srv.url + "/cpulse/types", timeout=5).json()["types"]
        env = dict(os.environ, CPULSE_URL=srv.url)
        res = run_cmd([os.path.join(venv_bin, "cpulse"), "check", "all", "--wait",
                       "--timeout", "400", "-f", "json"], env=env, timeout=450)
    finally:
        srv.stop()
    return types, res


def healthy_data_plane_run(all_through_the_cli, check_type):
    """The CheckRun of one type's results in the all_through_the_cli run, as the CLI
    printed it (the one result model, read back from its JSON)."""
    _, res = all_through_the_cli
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    run = results.CheckRun.from_api(json.loads(res.stdout))
    return results.CheckRun(run.handle, [check_type], run.state, run.created_at,
                            run.finished_at, [r for r in run.results
                                              if r.check_type == check_type])


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

