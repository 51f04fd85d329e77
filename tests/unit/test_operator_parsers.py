"""Operator parsers on outputs recorded on the operator bed (RabbitMQ 3.10, MariaDB 10.11
Galera 4, pacemaker 2.1.5, HAProxy 2.6) and on older formats (RabbitMQ before 3.8 Erlang
terms, pacemaker 2.0 Master/Slave text)."""

import os

import pytest

from cloudpulse.checks.operator import base
from cloudpulse.checks.operator import commands
from cloudpulse.checks.operator import galera
from cloudpulse.checks.operator import haproxy
from cloudpulse.checks.operator import pacemaker
from cloudpulse.checks.operator import parsers
from cloudpulse.checks.operator import rabbitmq
from cloudpulse.checks.operator import servicemap
from cloudpulse.checks.operator import services
from cloudpulse import ssh

DATA = os.path.join(os.path.dirname(__file__), "data", "operator")


def read(name):
    with open(os.path.join(DATA, name)) as f:
        return f.read()


@pytest.mark.parametrize("fixture", ["rabbit_cluster_status_healthy.json", "rmq_healthy.json",
                                     "rmq_healthy.txt",
                                     "rabbit_cluster_status_3.6_healthy.txt"])
def test_rabbit_healthy_in_every_format(fixture):
    st = rabbitmq.parse_rabbit_cluster_status(read(fixture))
    assert len(st.disk_nodes) == 3
    assert sorted(st.running_nodes) == sorted(st.disk_nodes)
    assert st.partitions == {} and st.alarms == ()


def test_rabbit_json_partition():
    st = rabbitmq.parse_rabbit_cluster_status(read("rmq_partition.json"))
    assert st.running_nodes == ("rabbit@node2", "rabbit@node1")
    assert st.partitions == {"rabbit@node1": ("rabbit@node3",),
                             "rabbit@node2": ("rabbit@node3",)}


def test_rabbit_memory_alarm_json_and_text_with_ansi():
    assert rabbitmq.parse_rabbit_cluster_status(
        read("rabbit_cluster_status_memory_alarm.json")).alarms == (("rabbit@node3", "memory"),)
    text = read("rabbit_cluster_status_memory_alarm.txt")
    assert "\x1b[" in text
    assert rabbitmq.parse_rabbit_cluster_status(text).alarms == (("rabbit@node3", "memory"),)


def test_rabbit_text_partition():
    st = rabbitmq.parse_rabbit_cluster_status("Cluster status of node rabbit@node1 ...\n"
                                             + read("rmq_partition.txt"))
    assert st.partitions == {"rabbit@node1": ("rabbit@node3",),
                             "rabbit@node2": ("rabbit@node3",)}
    assert st.running_nodes == ("rabbit@node1", "rabbit@node2")


def test_rabbit_pre_3_8_erlang_terms_node_down():
    st = rabbitmq.parse_rabbit_cluster_status(read("rabbit_cluster_status_3.6_node_down.txt"))
    assert st.disk_nodes == ("rabbit@node1", "rabbit@node2", "rabbit@node3")
    assert st.running_nodes == ("rabbit@node3", "rabbit@node2")


def test_rabbit_pre_3_8_erlang_terms_ram_nodes_partition_alarm():
    st = rabbitmq.parse_rabbit_cluster_status(
        read("rabbit_cluster_status_3.6_partition_alarm.txt"))
    assert st.disk_nodes == ("rabbit@node1",)
    assert st.ram_nodes == ("rabbit@node3", "rabbit@node2")
    assert st.partitions == {"rabbit@node1": ("rabbit@node3",),
                             "rabbit@node2": ("rabbit@node3",)}
    assert st.alarms == (("rabbit@node2", "memory"),)


def test_rabbit_garbage_is_a_parse_error():
    with pytest.raises(parsers.ParseError):
        rabbitmq.parse_rabbit_cluster_status(read("rabbit_cluster_status_app_stopped_self.err"))


def test_wsrep_healthy_and_non_primary():
    st = galera.parse_wsrep_status(read("wsrep_healthy.txt"))
    assert (st["wsrep_cluster_status"], st["wsrep_ready"], st["wsrep_cluster_size"],
            st["wsrep_local_state_comment"]) == ("Primary", "ON", "3", "Synced")
    assert sorted(galera.wsrep_member_addresses(st)) == [
        "198.18.10.11", "198.18.10.12", "198.18.10.13"]
    bad = galera.parse_wsrep_status(read("galera_nonprimary.txt"))
    assert bad["wsrep_cluster_status"] == "non-Primary" and bad["wsrep_ready"] == "OFF"
    with pytest.raises(parsers.ParseError):
        galera.parse_wsrep_status("")


def test_haproxy_show_stat_full_csv_with_addresses():
    rows = haproxy.parse_haproxy_stat(read("haproxy_stat_healthy.csv"))
    servers = [(r.proxy, r.server, r.status, r.address) for r in rows if r.is_server]
    assert ("keystone_api", "node2", "UP", "198.18.10.12:5000") in servers
    assert len(servers) == 6
    assert {r.status for r in rows if r.server == "FRONTEND"} == {"OPEN"}


def test_haproxy_show_stat_faulty_older_columns():
    rows = haproxy.parse_haproxy_stat(read("stat_faulty.csv"))
    down = [(r.proxy, r.server, r.check_status, r.check_desc) for r in rows
            if r.status == "DOWN"]
    assert down == [("be_api", "web2", "L4CON", "Connection refused"),
                    ("galera", "node2", "L4CON", "Connection refused")]


def test_ss_and_ps_recorded_on_node2():
    listeners = services.parse_ss_listeners(read("ss_listen_node2.txt"))
    assert services.Listener("198.18.10.100", 5000) in listeners
    assert services.Listener("*", 5672) in listeners
    assert services.Listener("::", 4369) in listeners
    names = services.process_names(services.parse_ps(read("ps_node2.txt")))
    assert {"beam.smp", "mariadbd", "pacemakerd", "corosync", "haproxy",
            "keystone-wsgi-public"} <= names


def test_crm_mon_xml_2_1_healthy_and_older_X():
    for fixture in ("crm_mon_healthy_2.1.xml", "crm_mon_healthy.xml"):
        st = pacemaker.parse_crm_mon_xml(read(fixture))
        assert st.connected and st.quorum and st.dc == "node3"
        assert st.online == ["node1", "node2", "node3"]
        assert (st.offline, st.stopped, st.failed, st.failed_actions) == ([], [], [], [])


def test_crm_mon_xml_node_offline_clone_instances_are_not_stopped_resources():
    st = pacemaker.parse_crm_mon_xml(read("crm_mon_node3_offline_2.1.xml"))
    assert st.offline == ["node3"] and st.stopped == []


@pytest.mark.parametrize("fixture", ["crm_mon_pacemaker_down_2.1.xml", "pcmk_down.xml"])
def test_crm_mon_xml_pacemaker_not_running(fixture):
    st = pacemaker.parse_crm_mon_xml(read(fixture))
    assert not st.connected


def test_crm_mon_text_2_1_faults():
    assert pacemaker.parse_crm_mon_text(read("pcmk_nodedown.txt")).offline == ["node3"]
    minority = pacemaker.parse_crm_mon_text(read("pcmk_partition_minority.txt"))
    assert minority.quorum is False and minority.online == ["node1"]
    assert pacemaker.parse_crm_mon_text(read("pcmk_resfail.txt")).failed_actions == [
        ("vip", "node1", "5s-interval monitor returned 'not running'")]
    assert pacemaker.parse_crm_mon_text(read("pcmk_unclean.txt")).unclean == ["node3"]


@pytest.mark.parametrize("fixture", ["pcs_status_healthy.txt", "crm_status_healthy.txt",
                                     "pcmk_healthy.txt"])
def test_pcs_and_crm_status_healthy(fixture):
    st = pacemaker.parse_crm_mon_text(read(fixture))
    assert st.quorum and st.online == ["node1", "node2", "node3"] and not st.failed_actions


def test_crm_mon_text_pacemaker_2_0_master_slave_wording():
    st = pacemaker.parse_crm_mon_text(read("crm_mon_2.0_master_slave.txt"))
    assert st.dc == "node1" and st.quorum
    assert st.offline == ["node3"]
    assert st.failed_actions == [("galera", "node2", "monitor (every 10s) returned 'not running'")]
    nq = pacemaker.parse_crm_mon_text(read("crm_mon_2.0_no_quorum.txt"))
    assert nq.quorum is False and nq.unclean == ["node3"] and "node2" in nq.offline


# -- containers and systemd units, recorded for real (podman 4.3.1 on Debian 12, see
# data/operator/podman4.3_README.txt; systemd 252.39 booted by systemd-nspawn in a
# debootstrapped bookworm with stand-in units: cinder-volume ExecStart=/bin/false (failed),
# nova-compute sleep (running), nova-api enabled then stopped (inactive), neutron-ovs-cleanup
# oneshot RemainAfterExit (active/exited)) --------------------------------------------------

def _judge_all(smap, views):
    """The services check's verdict per component for one node's parsed views."""
    found = base.Findings(services.CHECK)
    node = smap.nodes[0]
    for svc in node.services:
        services._judge(found, node, svc, views, services._component(svc, node))
    return {r.component: (r.status.value, r.details) for r in found.results()}


def _views(**parsed):
    views = {"processes": set(), "systemd": {}, "docker": {}, "podman": {}, "listeners": []}
    views.update(parsed)
    return views


def test_podman_4_3_ps_prints_the_status_not_the_state():
    # podman 4.3's {{.State}} is "Up 43 seconds ago" / "Exited (0) ..." / "Paused" / "Created".
    assert services.parse_container_states(read("podman4.3_ps_all.txt")) == {
        "nova_compute": "running", "cinder_volume": "exited", "glance_api": "paused",
        "neutron_server": "created", "placement_api": "exited"}
    assert services.parse_container_states("nova_compute\trunning\n") == {
        "nova_compute": "running"}    # docker's one-word state


def test_services_podman_containers_blamed_by_state():
    smap = servicemap.from_dict({
        "services": {name: {"manager": "podman", "ports": []} for name in (
            "nova-compute", "cinder-volume", "glance", "neutron", "placement", "cinder")},
        "hosts": {"node1": {"address": "198.18.10.11", "services": [
            "nova-compute", "cinder-volume", "glance", "neutron", "placement", "cinder"]}}})
    verdicts = _judge_all(smap, _views(
        podman=services.parse_container_states(read("podman4.3_ps_all.txt"))))
    assert verdicts == {
        "nova-compute@node1": ("passed", ""),
        "cinder-volume@node1": (
            "failed", "cinder-volume@node1: podman container cinder_volume is exited on node1"),
        "glance@node1": ("failed", "glance@node1: podman container glance_api is paused on node1"),
        "neutron@node1": (
            "failed", "neutron@node1: podman container neutron_server is created on node1"),
        "placement@node1": (
            "failed", "placement@node1: podman container placement_api is exited on node1"),
        "cinder@node1": ("failed", "cinder@node1: podman container cinder_api is absent on node1"),
    }


def test_podman_exec_outputs():
    # ps inside the running container, through commands.in_container (exit status 0)
    # (busybox's ps shows its own applet as "{ps}" beside "ps")
    assert {"sleep", "ps"} <= services.process_names(
        services.parse_ps(read("podman4.3_exec_ps_running.txt")))
    # a tool missing from the image: podman exits 127, read as "not installed" like a shell's
    missing = ssh.CommandResult(commands.COMMAND_NOT_FOUND, "",
                                      read("podman4.3_exec_not_found.txt"))
    assert not pacemaker._usable(missing)
    # exited, paused (255) and absent (125) containers: the error line names why
    for fixture, status, line in [
            ("podman4.3_exec_exited.txt", 255, "Error: can only create exec sessions on "
             "running containers: container state improper"),
            ("podman4.3_exec_paused.txt", 255, "Error: can only create exec sessions on "
             "running containers: container state improper"),
            ("podman4.3_exec_no_such_container.txt", 125,
             'Error: no container with name or ID "cinder_api" found: no such container')]:
        assert ssh.CommandResult(status, "", read(fixture)).first_error_line == line
    # the HAProxy socket loop is a compound command: it runs under the container's sh -c,
    # so a container without a stats socket answers with the loop's own message (exit 3),
    # not with the outer shell's syntax error
    assert ssh.CommandResult(3, "", read("podman4.3_exec_haproxy_show_stat.txt")) \
        .first_error_line.startswith("no HAProxy stats socket (/run/haproxy/admin.sock")


def test_systemd_252_list_units():
    units = services.parse_systemctl_units(read("systemd252_list_units.txt"))
    assert len(units) == 69
    assert units["cinder-volume.service"] == ("failed", "failed")
    assert units["nova-compute.service"] == ("active", "running")
    assert units["nova-api.service"] == ("inactive", "dead")
    assert units["neutron-ovs-cleanup.service"] == ("active", "exited")
    assert units["NetworkManager.service"] == ("inactive", "dead")    # LOAD not-found


def test_services_systemd_units_blamed_by_state():
    smap = servicemap.from_dict({
        "services": {
            "nova-compute": {"manager": "systemd"},
            "cinder-volume": {"manager": "systemd"},
            "neutron-agent": {"manager": "systemd", "unit": "neutron-ovs-cleanup.service"},
            "nova": {"manager": "systemd", "ports": []},
            "glance": {"manager": "systemd", "ports": []}},
        "hosts": {"node1": {"address": "198.18.10.11", "services": [
            "nova-compute", "cinder-volume", "neutron-agent", "nova", "glance"]}}})
    verdicts = _judge_all(smap, _views(
        systemd=services.parse_systemctl_units(read("systemd252_list_units.txt"))))
    assert verdicts == {
        "nova-compute@node1": ("passed", ""),
        "neutron-agent@node1": ("passed", ""),     # oneshot, active/exited
        "cinder-volume@node1": (
            "failed", "cinder-volume@node1: unit cinder-volume.service is failed/failed on node1"),
        "nova@node1": ("failed", "nova@node1: unit nova-api.service is inactive/dead on node1"),
        "glance@node1": ("failed", "glance@node1: unit glance-api.service is not-found on node1"),
    }


def test_services_juju_unit_state_fails_the_service_even_when_it_listens():
    # Port open and process alive, but juju says the charm's last hook failed.
    smap = servicemap.load(os.path.join(DATA, "juju_status_2.9.yaml"))
    node = next(n for n in smap.nodes if n.name == "ctl-b")
    listeners = services.parse_ss_listeners(
        "LISTEN 0 128 0.0.0.0:5672 0.0.0.0:*\nLISTEN 0 128 0.0.0.0:25672 0.0.0.0:*\n"
        "LISTEN 0 80 0.0.0.0:3306 0.0.0.0:*\nLISTEN 0 80 0.0.0.0:4567 0.0.0.0:*\n")
    found = base.Findings(services.CHECK)
    views = _views(processes={"beam.smp", "mysqld", "mariadbd"}, listeners=listeners)
    for svc in node.services:
        services._judge(found, node, svc, views, services._component(svc, node))
    assert {r.component: (r.status.value, r.details) for r in found.results()} == {
        "rabbitmq@ctl-b": ("failed", 'rabbitmq@ctl-b: juju workload-status error '
                                     '(hook failed: "config-changed")'),
        "galera@ctl-b": ("failed", "galera@ctl-b: juju workload-status blocked "
                                   "(Insufficient peers to bootstrap cluster)"),
    }
