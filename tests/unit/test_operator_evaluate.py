"""Who the operator checks blame, from the views recorded on the bed's nodes during real
faults (cross-checks between nodes)."""

import os

from cloudpulse.checks.operator import galera
from cloudpulse.checks.operator import haproxy
from cloudpulse.checks.operator import pacemaker
from cloudpulse.checks.operator import rabbitmq
from cloudpulse.checks.operator import servicemap
from cloudpulse import ssh

DATA = os.path.join(os.path.dirname(__file__), "data", "operator")
SMAP = servicemap.load(os.path.join(DATA, "inventory_bed.yaml"))
NODES = list(SMAP.nodes)


def read(name):
    with open(os.path.join(DATA, name)) as f:
        return f.read()


def verdicts(found):
    return {r.component: (r.status.value, r.details) for r in found.results()}


def failed(found):
    return {c: d for c, (s, d) in verdicts(found).items() if s == "failed"}


def test_rabbit_partition_blames_the_node_cut_off_from_most_peers():
    view = rabbitmq.parse_rabbit_cluster_status(read("rmq_partition.json"))
    views = {"node1": view, "node2": view,
             "node3": ssh.NodeUnreachable("node3 unreachable over SSH")}
    bad = failed(rabbitmq.evaluate(SMAP, NODES, views))
    assert set(bad) == {"rabbitmq@node3"}
    assert "rabbit@node3 partitioned from rabbit@node1, rabbit@node2" in bad["rabbitmq@node3"]
    assert "rabbit@node3 not running (running 2 of 3 disk nodes, seen from node1, node2)" \
        in bad["rabbitmq@node3"]


def test_rabbit_app_stopped_seen_by_itself_and_its_peers():
    peers = rabbitmq.parse_rabbit_cluster_status(read("rmq_partition.json").replace(
        '"partitions":{"rabbit@node1":["rabbit@node3"],"rabbit@node2":["rabbit@node3"]}',
        '"partitions":{}'))
    views = {"node1": peers, "node2": peers, "node3": "rabbit app not running on node3"}
    bad = failed(rabbitmq.evaluate(SMAP, NODES, views))
    assert bad == {"rabbitmq@node3": "rabbit app not running on node3; rabbit@node3 not running"
                                     " (running 2 of 3 disk nodes, seen from node1, node2)"}


def test_rabbit_memory_alarm_blames_the_alarmed_node():
    view = rabbitmq.parse_rabbit_cluster_status(read("rabbit_cluster_status_memory_alarm.json"))
    bad = failed(rabbitmq.evaluate(SMAP, NODES, {n.name: view for n in NODES}))
    assert bad == {"rabbitmq@node3": "rabbit@node3 memory alarm (publishers blocked)"}


def test_galera_non_primary_node_and_missing_member():
    healthy = galera.parse_wsrep_status(read("wsrep_healthy.txt"))
    two = dict(healthy, wsrep_cluster_size="2",
               wsrep_incoming_addresses="198.18.10.12:0,198.18.10.13:0")
    views = {"node1": galera.parse_wsrep_status(read("galera_nonprimary.txt")),
             "node2": two, "node3": two}
    bad = failed(galera.evaluate(SMAP, NODES, views))
    assert set(bad) == {"galera@node1"}
    assert bad["galera@node1"].startswith(
        "galera@node1 non-Primary (wsrep_cluster_status=non-Primary, wsrep_ready=OFF, "
        "local state Initialized, sees 1 of 3 nodes)")
    assert "not in the Primary component (cluster_size 2 of 3, members node2, node3" \
        in bad["galera@node1"]


def test_haproxy_server_down_and_direct_probe():
    rows = haproxy.parse_haproxy_stat(read("haproxy_stat_healthy.csv").replace(
        "keystone_api,node2,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP",
        "keystone_api,node2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN"))
    direct = {"198.18.10.12:5000": haproxy.ServerProbe(
        False, "direct connect to 198.18.10.12:5000: connection refused"),
              "198.18.10.11:5000": haproxy.ServerProbe(
        True, "not reachable from the checker: no route to host; answers GET "
              "http://198.18.10.11:5000/ from node1 (HTTP 300)")}
    out = haproxy.evaluate(NODES[:2], {"node1": rows, "node2": rows}, direct)
    bad = failed(out)
    assert set(bad) == {"haproxy/keystone_api/node2"}
    assert bad["haproxy/keystone_api/node2"].startswith(
        "haproxy/keystone_api/node2 direct connect to 198.18.10.12:5000: connection refused; "
        "haproxy/keystone_api/node2 DOWN")
    assert "on haproxy of node1, node2" in bad["haproxy/keystone_api/node2"]


def test_pacemaker_minority_partition_and_not_installed():
    minority = pacemaker.parse_crm_mon_text(read("pcmk_partition_minority.txt"))
    majority = pacemaker.parse_crm_mon_text(read("pcmk_partition_majority.txt"))
    views = {"node1": minority, "node2": majority, "node3": majority}
    bad = failed(pacemaker.evaluate(SMAP, NODES, views))
    assert set(bad) == {"pacemaker@node1"}
    assert "node1 in a partition WITHOUT quorum (online there: node1)" in bad["pacemaker@node1"]
    assert "node1 OFFLINE (seen from node2, node3; DC node2)" in bad["pacemaker@node1"]
    skipped = verdicts(pacemaker.evaluate(SMAP, NODES, {
        n.name: pacemaker.NotInstalled("no crm_mon, pcs or crm on %s" % n.name) for n in NODES}))
    assert {s for s, _ in skipped.values()} == {"skipped"}


def test_pacemaker_failed_action_blames_resource_on_node():
    healthy = pacemaker.parse_crm_mon_xml(read("crm_mon_healthy_2.1.xml"))
    resfail = pacemaker.parse_crm_mon_text(read("pcmk_resfail.txt"))
    resfail.quorum = True
    bad = failed(pacemaker.evaluate(SMAP, NODES, {"node1": resfail, "node2": healthy,
                                                  "node3": healthy}))
    assert set(bad) == {"pacemaker/vip@node1"}
    assert bad["pacemaker/vip@node1"].startswith(
        "failed action: vip 5s-interval monitor returned 'not running' on node1")


def _galera_on_its_own_network(node, size=3, members=(1, 2, 3)):
    """node's view as recorded on the bed, where Galera replicates and serves on the
    internal network (198.18.11.0/24): members list themselves by those addresses."""
    text = read("wsrep_internal_network_node2.txt")
    text = text.replace("198.18.11.12\n", "198.18.11.1%d\n" % node).replace(
        "node2\n", "node%d\n" % node)
    view = galera.parse_wsrep_status(text)
    view["wsrep_cluster_size"] = str(size)
    view["wsrep_incoming_addresses"] = ",".join("198.18.11.1%d:0" % i for i in members)
    return view


def test_galera_members_named_by_their_own_network_are_matched():
    views = {"node%d" % i: _galera_on_its_own_network(i) for i in (1, 2, 3)}
    assert views["node2"]["wsrep_node_address"] == "198.18.11.12"   # the recorded view
    assert failed(galera.evaluate(SMAP, NODES, views)) == {}


def test_galera_nodes_named_by_host_name_are_matched():
    by_name = servicemap.from_dict({"hosts": {
        "db%d" % i: {"address": "db%d.cloud.example" % i, "hostname": "node%d" % i,
                     "roles": ["galera"]} for i in (1, 2, 3)}})
    views = {"db%d" % i: _galera_on_its_own_network(i) for i in (1, 2, 3)}
    for view in views.values():   # members listed by host name
        view["wsrep_incoming_addresses"] = "node1:3306,node2:3306,node3:3306"
    for view in views.values():
        view.pop("wsrep_node_address")
    assert failed(galera.evaluate(by_name, list(by_name.nodes), views)) == {}


def test_galera_missing_member_is_named_on_its_own_network():
    views = {"node%d" % i: _galera_on_its_own_network(i, size=2, members=(1, 2))
             for i in (1, 2)}
    views["node3"] = "mysql on node3: ERROR 2002 (HY000): Can't connect to local server"
    bad = failed(galera.evaluate(SMAP, NODES, views))
    assert set(bad) == {"galera@node3"}
    assert "galera@node3 not in the Primary component (cluster_size 2 of 3, members node1, " \
        "node2, seen from node1, node2)" in bad["galera@node3"]


def test_galera_node_without_own_view_is_not_blamed_when_members_may_name_it():
    # node3 is out of SSH reach, but the cluster counts 3: the member 198.18.11.13 that no
    # node of the map claims is probably node3.  Not a Galera failure; said as such.
    views = {"node%d" % i: _galera_on_its_own_network(i) for i in (1, 2)}
    views["node3"] = ssh.NodeUnreachable("node3 unreachable over SSH")
    out = verdicts(galera.evaluate(SMAP, NODES, views))
    assert out["galera@node3"] == ("error", "not checked: node3 unreachable over SSH")
    assert not failed(galera.evaluate(SMAP, NODES, views))
    # The same with the cluster short of a node: who is missing cannot be pinned.
    views = {"node%d" % i: _galera_on_its_own_network(i, size=2, members=(1, 9))
             for i in (1, 2)}
    views["node3"] = ssh.NodeUnreachable("node3 unreachable over SSH")
    bad = failed(galera.evaluate(SMAP, NODES, views))
    assert bad["galera"] == ("cluster_size 2 of 3: node3 not found among the members; member "
                             "addresses matching no node of the map: 198.18.11.19")
