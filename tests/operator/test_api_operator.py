"""type=operator through the facade and the CLI: `cloudpulse-server` with the bed's service
map and the cloud in a box as its cloud (control plane), a fault injected on the bed."""

import json
import os

import requests

from tests.integration.conftest import run_cmd
from tests.integration.server import Server
from tests.operator.conftest import MAP


def _operator_server(venv_bin, tmp_path, box, bed):
    return Server(venv_bin, tmp_path, box, extra=(
        "[operator]\nservice_map = %s\nknown_hosts_file = %s\nssh_key_file = %s\n"
        "connect_timeout = 3\ncommand_timeout = 15\nca_file = %s\n"
        % (MAP, bed.settings.known_hosts_file, bed.settings.key_file, bed.ca_file)))


def _failed(doc):
    return {name: details for f in doc["tests_failed"] for name, details in f.items()}


def test_operator_and_all_through_the_api_and_cli(healthy_bed, box, venv_bin, tmp_path):
    bed = healthy_bed
    server = _operator_server(venv_bin, tmp_path, box, bed)
    try:
        types = requests.get(server.url + "/cpulse/types", timeout=5).json()["types"]
        assert "operator" in types and "endpoint" in types

        # Healthy: every SSH check per node, and the control plane read from the box.
        cpulse = os.path.join(venv_bin, "cpulse")
        env = dict(os.environ, CPULSE_URL=server.url)
        res = run_cmd([cpulse, "check", "operator", "--wait", "-f", "json"], env=env)
        assert res.returncode == 0, res.stdout + res.stderr
        doc = json.loads(res.stdout)
        assert doc["healthy"] and doc["state"] == "finished", doc["tests_failed"]
        components = {r["component"] for r in doc["results"]}
        assert {"rabbitmq@node1", "galera@node2", "pacemaker@node3",
                "haproxy/keystone_api/node2"} <= components, components
        assert {r["check_type"] for r in doc["results"]} == {"operator"}
        assert any(r["name"] == "operator.control_plane" and r["status"] == "passed"
                   for r in doc["results"]), doc["results"]

        # A fault on the bed: the API answers with the node blamed, the CLI exits 1.
        bed.heal.append(lambda: bed.sh(2, "rabbitmqctl -q start_app"))
        bed.sh(2, "rabbitmqctl -q stop_app")
        handle = requests.post(server.url + "/cpulse/check", json={"type": "all"},
                               timeout=5).json()["handle"]
        doc = requests.get(server.url + "/cpulse/result",
                           params={"handle": handle, "wait": 120}, timeout=130).json()
        assert doc["state"] == "finished" and not doc["healthy"]
        failed = _failed(doc)
        # Keyed by what failed: the check and the component, unique in the run.
        assert set(failed) == {"operator.rabbitmq@node2",
                               "operator.services/rabbitmq@node2"}, failed
        assert "rabbit app not running on node2" in failed["operator.rabbitmq@node2"]
        assert "port 5672 not listening on node2" in failed["operator.services/rabbitmq@node2"]
        # type=all ran the endpoint checks too, in the same handle: the cloud is healthy.
        assert {"endpoint.keystone", "endpoint.nova", "endpoint.horizon"} <= set(
            doc["tests_passed"]), doc["tests_passed"]
        res = run_cmd([cpulse, "result", handle], env=env)
        assert res.returncode == 1, res.stdout + res.stderr
        line = [ln for ln in res.stdout.splitlines() if ln.startswith("operator.rabbitmq")
                and "rabbitmq@node2" in ln][0]
        assert "failed" in line
    finally:
        server.stop()
    key_body = "".join(open(bed.settings.key_file).read().splitlines()[1:-1])
    assert key_body[:40] not in server.log_text()
