"""Service map loading: the inventory and juju status formats, and errors naming the key."""

import os

import pytest
import yaml

from cloudpulse.checks.operator import servicemap

DATA = os.path.join(os.path.dirname(__file__), "data", "operator")


def test_inventory_of_the_bed():
    smap = servicemap.load(os.path.join(DATA, "inventory_bed.yaml"))
    assert [n.name for n in smap.nodes] == ["node1", "node2", "node3"]
    n2 = smap.nodes[1]
    assert (n2.address, n2.ssh_user, n2.ssh_port) == ("198.18.10.12", "root", 22)
    assert n2.service("keystone").processes == ("keystone-wsgi-public",)
    assert n2.service("rabbitmq").ports == (5672, 25672)       # role default
    assert n2.service("haproxy").listen == (("198.18.10.100", 5000), ("198.18.10.100", 3306))
    assert [n.name for n in smap.nodes_running("pacemaker")] == ["node1", "node2", "node3"]
    assert smap.node_named("rabbit@node3").name == "node3"
    assert smap.node_at("198.18.10.11").name == "node1"


def test_controller_role_defaults():
    smap = servicemap.from_dict({"hosts": {"c1": {"address": "198.18.10.1",
                                                  "roles": ["controller"]}}})
    ports = {s.name: s.ports for s in smap.nodes[0].services}
    assert ports == {"keystone": (5000,), "glance": (9292,), "nova": (8774,),
                     "neutron": (9696,), "cinder": (8776,), "placement": (8778,),
                     "rabbitmq": (5672, 25672), "galera": (3306, 4567), "memcached": (11211,),
                     "haproxy": ()}


def test_juju_status_1_x():
    smap = servicemap.load(os.path.join(DATA, "juju_status_1.x.yaml"))
    by_name = {n.name: n for n in smap.nodes}
    assert set(by_name) == {"controller1", "compute1"}
    ctl = by_name["controller1"]
    assert ctl.address == "10.20.0.11"
    assert {s.name for s in ctl.services} == {"keystone", "pacemaker", "corosync", "rabbitmq"}
    assert str(ctl.agent_states["rabbitmq"]) == \
        'juju agent-state error (hook failed: "config-changed")'
    assert ctl.agent_states["keystone"].ok
    assert by_name["compute1"].runs("nova-compute")


def test_juju_status_2_9_both_statuses_per_unit():
    smap = servicemap.load(os.path.join(DATA, "juju_status_2.9.yaml"))
    by_name = {n.name: n for n in smap.nodes}
    assert {n: by_name[n].address for n in by_name} == {
        "ctl-a": "198.18.20.11", "ctl-b": "198.18.20.12", "cmp-1": "198.18.20.21"}
    assert {s.name for s in by_name["ctl-a"].services} == {
        "keystone", "pacemaker", "corosync", "rabbitmq"}
    assert {s.name for s in by_name["ctl-b"].services} == {"rabbitmq", "galera"}
    assert {s.name for s in by_name["cmp-1"].services} == {"nova-compute"}   # ntp unchecked
    states = {(n.name, svc): st for n in smap.nodes for svc, st in n.agent_states.items()}
    healthy = {k for k, st in states.items() if st.ok}
    assert healthy == {("ctl-a", "keystone"), ("ctl-a", "pacemaker"), ("ctl-a", "corosync"),
                       ("ctl-a", "rabbitmq")}
    # A failed hook: the agent idles, the workload says error.
    assert str(states["ctl-b", "rabbitmq"]) == \
        'juju workload-status error (hook failed: "config-changed")'
    assert str(states["ctl-b", "galera"]) == \
        "juju workload-status blocked (Insufficient peers to bootstrap cluster)"
    # A lost agent wins over a workload that last said active.
    assert str(states["cmp-1", "nova-compute"]) == \
        "juju agent-state lost (agent lost, see 'juju show-status-log nova-compute/0')"


BAD_MAPS = [
    ({"hosts": {"node1": {"roles": ["rabbitmq"]}}}, "hosts.node1.address: missing"),
    ({"hosts": {"node1": {"address": "198.18.10.1", "roles": ["rabit"]}}},
     "hosts.node1.roles[0]: unknown role 'rabit'"),
    ({"hosts": {"node1": {"address": "198.18.10.1", "roles": []}}}, "hosts.node1.roles: empty"),
    ({"hosts": {"node1": {"address": "198.18.10.1; rm -rf /", "roles": ["galera"]}}},
     "hosts.node1.address: '198.18.10.1; rm -rf /' is not an IP address or host name"),
    ({"hosts": {"node1": {"address": "198.18.10.1", "roles": ["galera"], "ssh_port": 70000}}},
     "hosts.node1.ssh_port: 70000 is not a TCP port"),
    ({"hosts": {"node1": {"address": "198.18.10.1", "role": ["galera"]}}},
     "hosts.node1.role: unknown key"),
    ({"services": {"keystone": {"ports": ["5000"]}}, "hosts": {"n": {"address": "198.18.10.1",
                                                                     "roles": ["keystone"]}}},
     "services.keystone.ports[0]: '5000' is not a TCP port"),
    ({"services": {"rabbitmq": {"manager": "docker", "container": "rabbit$(id)"}},
      "hosts": {"n": {"address": "198.18.10.1", "roles": ["rabbitmq"]}}},
     "services.rabbitmq.container: 'rabbit$(id)' is not a container name"),
    ({"services": {"haproxy": {"listen": ["198.18.10.100"]}},
      "hosts": {"n": {"address": "198.18.10.1", "roles": ["haproxy"]}}},
     "services.haproxy.listen[0]: '198.18.10.100': expected 'address:port'"),
    ({"hosts": {"a": {"address": "198.18.10.1", "roles": ["galera"]},
                "b": {"address": "198.18.10.1", "roles": ["galera"]}}},
     "hosts.b.address: 198.18.10.1 is also hosts.a's"),
    ({"nodes": []}, "hosts: missing"),
    ({"machines": {}, "services": {"keystone": {"units": {"keystone/0": {
        "agent-state": "started", "public-address": "198.18.10.1; id"}}}}},
     "services.keystone.units.keystone/0.public-address: '198.18.10.1; id' is not an IP "
     "address or host name"),
]


@pytest.mark.parametrize("data,message", BAD_MAPS)
def test_bad_map_names_the_key(data, message):
    with pytest.raises(servicemap.ServiceMapError) as err:
        servicemap.from_dict(data)
    assert message in str(err.value)


def test_bad_file_names_the_file(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump({"hosts": {"node1": {"roles": ["galera"]}}}))
    with pytest.raises(servicemap.ServiceMapError) as err:
        servicemap.load(str(path))
    assert str(err.value) == "service map %s: hosts.node1.address: missing" % path
    with pytest.raises(servicemap.ServiceMapError, match="No such file"):
        servicemap.load(str(tmp_path / "absent.yaml"))
