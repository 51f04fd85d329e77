"""The operator area's own route (cloudpulse_api/operator.py): the service map's nodes,
for an admin only, and a 404 naming the option on a server without a service map."""

import os
from types import SimpleNamespace

import pytest

from cloudpulse import conf as cp_conf
from cloudpulse.checks.operator import servicemap
from cloudpulse_api import app as app_mod
from cloudpulse_api import service as service_mod

INVENTORY = os.path.join(os.path.dirname(__file__), "data", "operator", "inventory_bed.yaml")
ADMIN_TOKEN, MEMBER_TOKEN = "a" * 24, "m" * 24


class Service:
    """What the route asks of a CheckService: its configuration and its one cloud's
    service map."""

    types = ()
    cloud = service_mod.CheckService.cloud

    def __init__(self, conf, operator_map):
        self.conf = conf
        self.clouds = {"box": SimpleNamespace(name="box", operator_map=operator_map)}


def _client(tmp_path, operator_map):
    tokens = tmp_path / "tokens"
    tokens.write_text("%s ops admin\n%s vnf-1 member\n" % (ADMIN_TOKEN, MEMBER_TOKEN))
    os.chmod(tokens, 0o600)
    conf_file = tmp_path / "cloudpulse.conf"
    conf_file.write_text("[DEFAULT]\nstate_path = %s\n[api]\nauth_strategy = token_file\n"
                         "token_file = %s\n" % (tmp_path, tokens))
    conf = cp_conf.load(["--config-file", str(conf_file)], default_config_files=[])
    return app_mod.create_app(Service(conf, operator_map)).test_client()


def _nodes(client, token):
    return client.get("/cpulse/operator/nodes", headers={"X-Auth-Token": token})


def test_an_admin_reads_the_nodes_and_what_each_should_run(tmp_path):
    answer = _nodes(_client(tmp_path, servicemap.load(INVENTORY)), ADMIN_TOKEN)
    assert answer.status_code == 200, answer.text
    body = answer.get_json()
    assert body["source"] == INVENTORY
    assert [(n["name"], n["address"]) for n in body["nodes"]] == [
        ("node1", "198.18.10.11"), ("node2", "198.18.10.12"), ("node3", "198.18.10.13")]
    services = {s["name"]: s for s in body["nodes"][0]["services"]}
    assert services["keystone"]["ports"] == [5000]
    assert services["keystone"]["processes"] == ["keystone-wsgi-public"]
    assert {"address": "198.18.10.100", "port": 3306} in services["haproxy"]["listen"]


def test_a_member_is_refused_naming_the_rule(tmp_path):
    answer = _nodes(_client(tmp_path, servicemap.load(INVENTORY)), MEMBER_TOKEN)
    assert answer.status_code == 403
    assert "cloudpulse:operator:nodes:list" in answer.get_json()["message"]


@pytest.mark.parametrize("token,code", [(ADMIN_TOKEN, 404), ("x" * 24, 401)])
def test_without_a_service_map_404_names_the_option(tmp_path, token, code):
    answer = _nodes(_client(tmp_path, None), token)
    assert answer.status_code == code
    if code == 404:
        assert answer.get_json()["message"].startswith("[operator] service_map: not set")


def test_an_unknown_cloud_is_400_naming_it(tmp_path):
    client = _client(tmp_path, servicemap.load(INVENTORY))
    answer = client.get("/cpulse/operator/nodes?cloud=elsewhere",
                        headers={"X-Auth-Token": ADMIN_TOKEN})
    assert answer.status_code == 400
    assert answer.get_json()["message"].startswith("cloud: 'elsewhere' is not a cloud")
