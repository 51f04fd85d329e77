"""Operator checks against the real bed: healthy first, then every fault of issue 3
injected for real, asserting the exact check, component and node blamed."""

import os
import re

from tests.operator.conftest import SSH_CHECKS, blamed, describe

NODES = ("node1", "node2", "node3")


def start_in_bg(bed, node, command):  # a daemon of the node, detached from this test
    bed.sh(node, "nohup %s >/dev/null 2>&1 &" % command)


def test_healthy_bed_every_check_passes_per_node_and_component(bed):
    out = bed.wait_healthy()
    names = {r.name for r in out}
    assert names == {"operator.ssh"} | {"operator.%s" % c for c in SSH_CHECKS}
    components = {(r.name, r.component) for r in out}
    for n in NODES:
        assert ("operator.ssh", "ssh@%s" % n) in components
        assert ("operator.rabbitmq", "rabbitmq@%s" % n) in components
        assert ("operator.galera", "galera@%s" % n) in components
        assert ("operator.pacemaker", "pacemaker@%s" % n) in components
        assert ("operator.haproxy", "haproxy@%s" % n) in components
        assert ("operator.haproxy", "haproxy/keystone_api/%s" % n) in components
        for svc in ("rabbitmq", "galera", "haproxy", "pacemaker", "corosync", "keystone"):
            assert ("operator.services", "%s@%s" % (svc, n)) in components
    assert all(r.status.value == "passed" for r in out), describe(out)
    # the Galera monitoring password (the nodes' ~/.my.cnf) never shows
    with open(os.path.join(bed.dir, "galera_monitor_password")) as f:
        secret = f.read().strip()
    assert not any(secret in r.details for r in out)


def test_haproxy_backend_dead(healthy_bed):
    bed = healthy_bed
    bed.heal.append(lambda: bed.bed("start-keystone", 2))
    bed.sh(2, "pkill -f '^keystone-wsgi-public'")
    # each HAProxy notices after its own health checks (fall 2, inter 1s)
    out = bed.wait(lambda o: "DOWN (L4CON" in blamed(o).get("haproxy/keystone_api/node2", "")
                   and "node1, node2, node3" in blamed(o)["haproxy/keystone_api/node2"],
                   20, what="haproxy server DOWN on every HAProxy")
    bad = blamed(out, "operator.haproxy")
    assert set(bad) == {"haproxy/keystone_api/node2"}, bad
    assert "DOWN (L4CON" in bad["haproxy/keystone_api/node2"]
    assert "on haproxy of node1, node2, node3" in bad["haproxy/keystone_api/node2"]
    assert "direct connect to 198.18.10.12:5000: connection refused" \
        in bad["haproxy/keystone_api/node2"]
    services = blamed(out, "operator.services")
    assert set(services) == {"keystone@node2"}, services
    assert "port 5000 not listening on node2 (no keystone-wsgi-public" \
        in services["keystone@node2"]


def _haproxy(out):
    return {r.component: r for r in out if r.name == "operator.haproxy"}


def test_haproxy_tls_backends_and_backends_only_the_nodes_reach(healthy_bed):
    bed = healthy_bed
    out = _haproxy(bed.run(checks=("haproxy",)))
    assert all(r.status.value == "passed" for r in out.values()), describe(out.values())
    # glance's servers speak TLS: probed over https, trusted through the bed's CA.
    assert out["haproxy/glance_api/node2"].details == ""
    # placement's servers are on the nodes' internal network: probed from a HAProxy node.
    assert out["haproxy/placement_api/node2"].details == (
        "not reachable from the checker: no route to host; answers GET "
        "http://198.18.11.12:8778/ from node1 (HTTP 200)")


def test_haproxy_tls_backend_with_an_untrusted_ca_and_the_probe_modes(healthy_bed):
    bed = healthy_bed
    bad = blamed(bed.run(checks=("haproxy",), ca_file=None))
    # Without the bed's CA (the system's CAs): each TLS server is refused, by name.
    assert set(bad) == {"haproxy/glance_api/node%d" % i for i in (1, 2, 3)}, bad
    assert bad["haproxy/glance_api/node1"].startswith(
        "haproxy/glance_api/node1 direct GET https://198.18.10.11:9292/: TLS certificate "
        "not trusted"), bad
    # Only from the checker: the internal network's servers cannot be reached.
    bad = blamed(bed.run(checks=("haproxy",), backend_probes="direct"))
    assert set(bad) == {"haproxy/%s/node%d" % (backend, i) for i in (1, 2, 3)
                        for backend in ("placement_api", "galera")}, bad
    assert "not reachable from the checker: no route to host" in \
        bad["haproxy/placement_api/node3"]
    # Probes off: HAProxy's own view only.
    out = bed.run(checks=("haproxy",), backend_probes="off", ca_file=None)
    assert all(r.ok for r in out), describe(out)


def test_haproxy_internal_backend_dead_is_seen_from_the_node(healthy_bed):
    bed = healthy_bed
    bed.heal.append(lambda: bed.bed("start-placement", 2))
    bed.sh(2, "pkill -f '^placement-api'")
    out = bed.wait(lambda o: "DOWN" in blamed(o).get("haproxy/placement_api/node2", ""),
                   20, checks=("haproxy",), what="placement server DOWN")
    bad = blamed(out)
    assert set(bad) == {"haproxy/placement_api/node2"}, bad
    details = bad["haproxy/placement_api/node2"]
    assert "not reachable from the checker: no route to host; from node1: curl: (7) " \
        "Failed to connect to 198.18.11.12 port 8778" in details, details


def test_galera_node_killed(healthy_bed):
    bed = healthy_bed
    bed.heal.append(lambda: start_in_bg(bed, 3, "/usr/sbin/mariadbd --user=mysql"))
    bed.sh(3, "pkill -KILL -x mariadbd")
    out = bed.wait(lambda o: "galera@node3" in blamed(o, "operator.galera")
                   and "not in the Primary component" in blamed(o)["galera@node3"],
                   30, what="galera node3 out of the cluster")
    bad = blamed(out, "operator.galera")
    assert set(bad) == {"galera@node3"}, bad
    assert "mysql on node3: ERROR 2002" in bad["galera@node3"]
    assert "cluster_size 2 of 3, members node1, node2" in bad["galera@node3"]
    assert set(blamed(out, "operator.services")) == {"galera@node3"}


def test_node_partitioned_galera_non_primary_pacemaker_minority_then_rabbit_partition(
        healthy_bed):
    bed = healthy_bed
    bed.heal.append(lambda: bed.bed("part", 1, "off"))
    bed.bed("part", 1, "on")

    def isolated(o):
        bad = blamed(o)
        return ("non-Primary" in bad.get("galera@node1", "")
                and "WITHOUT quorum" in bad.get("pacemaker@node1", "")
                and "not running" in bad.get("rabbitmq@node1", ""))
    out = bed.wait(isolated, 60, what="node1 isolated")
    galera = blamed(out, "operator.galera")
    assert set(galera) == {"galera@node1"}, galera
    assert "galera@node1 non-Primary (wsrep_cluster_status=non-Primary, wsrep_ready=OFF" \
        in galera["galera@node1"]
    pcmk = blamed(out, "operator.pacemaker")
    assert set(pcmk) == {"pacemaker@node1"}, pcmk
    assert "node1 in a partition WITHOUT quorum (online there: node1)" in pcmk["pacemaker@node1"]
    assert "node1 OFFLINE (seen from node2, node3" in pcmk["pacemaker@node1"]
    rabbit = blamed(out, "operator.rabbitmq")
    assert set(rabbit) == {"rabbitmq@node1"}, rabbit
    assert "rabbit@node1 not running (running 2 of 3 disk nodes, seen from node2, node3)" \
        in rabbit["rabbitmq@node1"]

    # Healing the network leaves RabbitMQ's partition recorded: node1 is blamed.
    bed.bed("part", 1, "off")
    bed.heal.append(lambda: bed.bed("restart-rabbit", 1))
    # node2 and node3 each notice the partition on their own, a moment apart.
    both = "rabbit@node1 partitioned from rabbit@node2, rabbit@node3"
    out = bed.wait(lambda o: both in blamed(o).get("rabbitmq@node1", ""),
                   60, checks=("rabbitmq",), what="rabbit partition recorded by both peers")
    rabbit = blamed(out, "operator.rabbitmq")
    assert set(rabbit) == {"rabbitmq@node1"}, rabbit
    assert both in rabbit["rabbitmq@node1"]


def test_rabbit_app_stopped_and_its_port_not_listening(healthy_bed):
    bed = healthy_bed
    bed.heal.append(lambda: bed.sh(2, "rabbitmqctl -q start_app"))
    bed.sh(2, "rabbitmqctl -q stop_app")
    out = bed.run()
    rabbit = blamed(out, "operator.rabbitmq")
    assert set(rabbit) == {"rabbitmq@node2"}, rabbit
    assert "rabbit app not running on node2" in rabbit["rabbitmq@node2"]
    assert "rabbit@node2 not running (running 2 of 3 disk nodes, seen from node1, node3)" \
        in rabbit["rabbitmq@node2"]
    services = blamed(out, "operator.services")
    assert services == {"rabbitmq@node2": "rabbitmq@node2: port 5672 not listening on node2 "
                                          "(beam.smp alive)"}, services


def test_rabbit_memory_alarm(healthy_bed):
    bed = healthy_bed
    bed.heal.append(lambda: bed.sh(3, "rabbitmqctl -q set_vm_memory_high_watermark 0.4"))
    bed.sh(3, "rabbitmqctl -q set_vm_memory_high_watermark 0.0001")
    out = bed.wait(lambda o: "rabbitmq@node3" in blamed(o, "operator.rabbitmq"), 30,
                   checks=("rabbitmq",), what="memory alarm")
    assert blamed(out, "operator.rabbitmq") == {
        "rabbitmq@node3": "rabbit@node3 memory alarm (publishers blocked)"}


def test_pacemaker_resource_failed(healthy_bed):
    bed = healthy_bed
    where = bed.sh(1, "crm_resource --resource vip --locate").stdout
    node = re.search(r"running on: (node\d)", where).group(1)
    bed.heal.append(lambda: bed.sh(1, "crm_resource --cleanup --resource vip"))
    bed.sh(node[-1], "ip addr del 198.18.10.100/24 dev eth0")
    out = bed.wait(lambda o: "pacemaker/vip@%s" % node in blamed(o, "operator.pacemaker"),
                   30, checks=("pacemaker",), what="failed vip monitor")
    bad = blamed(out, "operator.pacemaker")
    # Caught while pacemaker recovers it, the VIP may also be stopped everywhere for a moment:
    # that is blamed on the resource itself, never on another node.
    assert "pacemaker/vip@%s" % node in bad and set(bad) <= {
        "pacemaker/vip@%s" % node, "pacemaker/vip"}, bad
    assert "failed action: vip monitor (every 5s) returned 'not running' on %s" % node \
        in bad["pacemaker/vip@%s" % node]


def test_pacemakerd_stopped(healthy_bed):
    bed = healthy_bed
    bed.heal.append(lambda: bed.bed("start-pacemaker", 2))
    bed.sh(2, "pkill -TERM -x pacemakerd")
    # Until both peers have seen node2 go, and a resource node2 ran has moved (the VIP is
    # "stopped (runs nowhere)" for the moment of its failover), the state is in flux.
    out = bed.wait(lambda o: "node2 OFFLINE (seen from node1, node3"
                   in blamed(o).get("pacemaker@node2", "")
                   and "not running" in blamed(o).get("pacemaker@node2", "")
                   and set(blamed(o, "operator.pacemaker")) == {"pacemaker@node2"},
                   60, checks=("pacemaker",), what="pacemakerd stopped on node2, settled")
    bad = blamed(out, "operator.pacemaker")
    assert set(bad) == {"pacemaker@node2"}, bad
    # While pacemaker's daemons wind down, crm_mon answers an empty <crm_mon/> (exit 0);
    # once they are gone, "Not connected" (exit 102). Both are "not running".
    assert re.search(r"pacemaker not running on node2 \(crm_mon: (Not connected|crm_mon "
                     r"returned no cluster state)", bad["pacemaker@node2"]), bad
    assert "node2 OFFLINE (seen from node1, node3" in bad["pacemaker@node2"]


def test_node_powered_off_ssh_unreachable_and_lost_by_every_cluster(healthy_bed):
    bed = healthy_bed
    bed.heal.append(lambda: bed.bed("boot", 3))
    bed.bed("power-off", 3)

    def lost(o):
        bad = blamed(o)
        return all(k in bad for k in ("ssh@node3", "pacemaker@node3", "rabbitmq@node3",
                                      "galera@node3")) \
            and "node3 OFFLINE (seen from node1, node2" in bad["pacemaker@node3"] \
            and "not running" in bad["rabbitmq@node3"]
    # Both peers must have noticed: corosync on each of them declares node3 lost on its own
    # token timeout, a second or two apart.
    out = bed.wait(lost, 60, what="node3 lost by both of its peers")
    assert blamed(out, "operator.ssh") == {
        "ssh@node3": "node3 (198.18.10.13:22) unreachable over SSH: connection refused"} or \
        "node3 (198.18.10.13:22) unreachable over SSH" in blamed(out)["ssh@node3"]
    assert set(blamed(out, "operator.ssh")) == {"ssh@node3"}
    assert set(blamed(out, "operator.pacemaker")) == {"pacemaker@node3"}
    assert "node3 OFFLINE (seen from node1, node2" in blamed(out)["pacemaker@node3"]
    assert set(blamed(out, "operator.rabbitmq")) == {"rabbitmq@node3"}
    assert "seen from node1, node2" in blamed(out)["rabbitmq@node3"]
    assert set(blamed(out, "operator.galera")) == {"galera@node3"}
    assert "not in the Primary component" in blamed(out)["galera@node3"]
    # every server of node3 is DOWN behind HAProxy, and blamed as node3's
    assert {c for c in blamed(out, "operator.haproxy")} <= {
        "haproxy@node3", "haproxy/keystone_api/node3", "haproxy/galera/node3",
        "haproxy/glance_api/node3", "haproxy/placement_api/node3"}
    assert "haproxy/keystone_api/node3" in blamed(out, "operator.haproxy")


def _sshd_accepted(bed, node):
    with open(os.path.join(bed.dir, "n%d" % node, "sshd.log")) as f:
        return f.read().count("Accepted publickey")


def test_unknown_host_key_fails_and_does_not_authenticate(bed, tmp_path):
    known = open(bed.settings.known_hosts_file).read().splitlines()
    missing = tmp_path / "known_hosts_without_node2"
    missing.write_text("\n".join(l for l in known if not l.startswith("198.18.10.12 ")) + "\n")
    before = _sshd_accepted(bed, 2)
    out = bed.run(checks=("rabbitmq",), settings=bed.ssh_settings(
        known_hosts_file=str(missing)))
    ssh = blamed(out, "operator.ssh")
    assert ssh == {"ssh@node2": "node2 (198.18.10.12:22): host key not in %s; refusing to "
                                "connect" % missing}, ssh
    assert _sshd_accepted(bed, 2) == before   # no login happened on node2
    # node2's own view is missing; its peers still vouch that its rabbit runs
    rabbit2 = next(r for r in out if r.component == "rabbitmq@node2")
    assert (rabbit2.status.value, rabbit2.details) == (
        "passed", "rabbit@node2 running as seen from node1, node3 (own view unavailable)")

    # A changed key (another node's key under node2's address) is refused the same way.
    node1_key = next(l for l in known if l.startswith("198.18.10.11 ")).split(" ", 1)[1]
    changed = tmp_path / "known_hosts_changed_node2"
    changed.write_text("\n".join(l if not l.startswith("198.18.10.12 ")
                                 else "198.18.10.12 " + node1_key for l in known) + "\n")
    out = bed.run(checks=(), settings=bed.ssh_settings(known_hosts_file=str(changed)))
    assert "host key CHANGED" in blamed(out, "operator.ssh")["ssh@node2"]
    assert _sshd_accepted(bed, 2) == before


def test_a_node_that_accepts_tcp_but_never_speaks_ssh(bed, capfd):
    """A listener that accepts on port 22's stand-in and stays silent: the node is named
    with what happened, the other nodes are reported as usual and on time, and paramiko's
    own traceback reaches neither stderr nor the logs."""
    import dataclasses
    import socket
    import threading
    import time

    from cloudpulse.checks import operator
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: [accepted.append(listener.accept()) for _ in range(3)],
                     daemon=True).start()
    silent = operator.servicemap.Node(name="node4", address="127.0.0.1", ssh_port=port,
                                      services=bed.service_map.nodes[0].services[:1])
    smap = dataclasses.replace(bed.service_map, nodes=bed.service_map.nodes + (silent,))
    t0 = time.monotonic()
    try:
        out = operator.run_operator_checks(smap, bed.settings, checks=("rabbitmq",),
                                           api_timeout=3.0)
    finally:
        listener.close()
    elapsed = time.monotonic() - t0
    ssh = {r.component: r for r in out if r.name == "operator.ssh"}
    assert ssh["ssh@node4"].details == (
        "node4: 127.0.0.1:%d accepted the connection but sent no SSH banner within %s s"
        % (port, bed.settings.connect_timeout)), ssh["ssh@node4"]
    assert [ssh["ssh@node%d" % i].status.value for i in (1, 2, 3)] == ["passed"] * 3
    rabbit = {r.component: r.status.value for r in out if r.name == "operator.rabbitmq"}
    assert [rabbit["rabbitmq@node%d" % i] for i in (1, 2, 3)] == ["passed"] * 3
    # The silent node costs its banner timeout, once, alongside the others.
    assert elapsed < bed.settings.connect_timeout + 5, elapsed
    time.sleep(1)   # paramiko's transport thread gives up after we do
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error reading SSH protocol banner" not in err, err
