"""Every parser and check over outputs published by the components' own projects
(data/operator/published, sources in its README.md): none may crash a check, and what an
output shows is what the check judges."""

import glob
import os
import re

import pytest
import yaml

from cloudpulse.checks import operator
from cloudpulse.checks.operator import base
from cloudpulse.checks.operator import haproxy
from cloudpulse.checks.operator import pacemaker
from cloudpulse.checks.operator import parsers
from cloudpulse.checks.operator import rabbitmq
from cloudpulse.checks.operator import servicemap
from cloudpulse import ssh

DATA = os.path.join(os.path.dirname(__file__), "data", "operator")
PUBLISHED = os.path.join(DATA, "published")
SMAP = servicemap.load(os.path.join(DATA, "inventory_bed.yaml"))
NODES = list(SMAP.nodes)


def published(pattern):
    return sorted(glob.glob(os.path.join(PUBLISHED, pattern)))


def read(path):
    with open(os.path.join(PUBLISHED, path) if not os.path.isabs(path) else path) as f:
        return f.read()


def failed(found):
    return {r.component: r.details for r in found.results() if r.status.value == "failed"}


def ids(paths):
    return [os.path.relpath(p, PUBLISHED) for p in paths]


CRM_MON = published("pacemaker/crm_mon/*/*") + published("pacemaker/pcs/*.xml")
HAPROXY = published("haproxy/*.csv")
JUJU = published("juju/*.yaml")


def test_the_corpus_is_there():
    assert len(published("pacemaker/crm_mon/*/*")) == 208
    assert len(HAPROXY) == 4 and len(JUJU) == 7


# -- every output through its parser and its check ---------------------------------------

def _pacemaker_view(path):
    parse = pacemaker.parse_crm_mon_xml if path.endswith(".xml") \
        else pacemaker.parse_crm_mon_text
    try:
        return parse(read(path))
    except parsers.ParseError as exc:
        return "pacemaker status unreadable on node1: %s" % exc


@pytest.mark.parametrize("path", CRM_MON, ids=ids(CRM_MON))
def test_crm_mon_output_parses_and_is_judged(path):
    view = _pacemaker_view(path)
    found = pacemaker.evaluate(SMAP, NODES, {n.name: view for n in NODES})
    results = found.results()
    assert results
    if isinstance(view, pacemaker.PacemakerStatus) and view.quorum:
        # Judged against what it shows: every resource it shows stopped is blamed.
        assert {"pacemaker/%s" % r for r in view.stopped} <= set(failed(found))


@pytest.mark.parametrize("path", HAPROXY, ids=ids(HAPROXY))
def test_haproxy_output_parses_and_is_judged(path):
    rows = haproxy.parse_haproxy_stat(read(path))
    views = {"node1": rows, "node2": rows}
    bad = failed(haproxy.evaluate(NODES[:2], views, {}))
    down = {haproxy.server_component(r.proxy, r.server) for r in rows
            if r.is_server and r.status.startswith(("DOWN", "MAINT", "NOLB"))}
    assert down <= set(bad)
    for address in haproxy.probe_addresses(views):
        assert re.match(r".+:\d+$", address)


def test_haproxy_listener_rows_are_not_taken_for_servers():
    rows = haproxy.parse_haproxy_stat(read(published("haproxy/telegraf-*.csv")[0]))
    names = {(r.proxy, r.server) for r in rows}
    assert ("http-in", "FRONTEND") in names
    assert not {n for n in names if n[1] in ("IPv4-direct", "IPv4-cached", "local")}


@pytest.mark.parametrize("path", JUJU, ids=ids(JUJU))
def test_juju_status_loads_or_names_what_is_missing(path):
    try:
        smap = servicemap.load(path)
    except servicemap.ServiceMapError as exc:
        assert str(exc).startswith("service map %s: " % path)
        return
    pool = ssh.SessionPool(ssh.SSHSettings(strict_host_keys=False))
    for node in smap.nodes:
        if node.address is None:
            with pytest.raises(ssh.NodeUnreachable, match="unit pending"):
                pool.session(node)


# -- pacemaker: bundles ----------------------------------------------------------------------

BUNDLE_ALL_STOPPED = [
    # Pacemaker 2.0.5's test cluster: httpd-bundle's 3 replicas Stopped, target-role Started
    ("Pacemaker-2.0.5/02-xml-output.xml", True),
    ("Pacemaker-2.0.5/20-basic-text-output-with-inactive-resources.txt", True),
    ("Pacemaker-2.0.5/37-basic-text-output-with-inactive-resources-filtered-by-bundle-"
     "resource.txt", True),
    # 2.1.0 and today: 2 of the 3 replicas run, the bundle is up
    ("Pacemaker-2.1.0/02-xml-output.xml", False),
    ("Pacemaker-2.1.0/01-basic-text-output.txt", False),
    ("main-0a519a6e6b16/02-basic-output-xml.xml", False),
    ("main-0a519a6e6b16/20-basic-text-output-with-inactive-resources.txt", False),
]


@pytest.mark.parametrize("name,stopped", BUNDLE_ALL_STOPPED)
def test_bundle_with_every_replica_stopped_fails(name, stopped):
    view = _pacemaker_view("pacemaker/crm_mon/" + name)
    assert view.quorum and ("httpd-bundle" in view.stopped) is stopped
    bad = failed(pacemaker.evaluate(SMAP, NODES, {n.name: view for n in NODES}))
    if stopped:
        assert bad["pacemaker/httpd-bundle"] == \
            "resource httpd-bundle is stopped (runs nowhere)"
    else:
        assert "pacemaker/httpd-bundle" not in bad


def test_crm_mon_text_and_xml_agree_on_the_same_cluster():
    """The text with inactive resources and the XML of one CTS cluster: same verdicts
    (the text names resources that are disabled, unmanaged or clone instances too)."""
    for label in ("Pacemaker-2.0.5", "Pacemaker-2.1.0"):
        text = _pacemaker_view("pacemaker/crm_mon/%s/20-basic-text-output-with-inactive-"
                               "resources.txt" % label)
        xml = _pacemaker_view("pacemaker/crm_mon/%s/02-xml-output.xml" % label)
        assert (text.quorum, text.stopped, text.failed) == (xml.quorum, xml.stopped, xml.failed)
    text = _pacemaker_view("pacemaker/crm_mon/main-0a519a6e6b16/60-output-of-partially-active-"
                           "resources-with-inactive-resources.txt")
    xml = _pacemaker_view("pacemaker/crm_mon/main-0a519a6e6b16/59-output-of-partially-active-"
                          "resources-xml.xml")
    assert text.stopped == xml.stopped == ["dummy-4", "smart-mon"]
    assert text.failed == xml.failed == [("httpd", "httpd-bundle-1"), ("dummy-2", "cluster02")]


def test_crm_mon_text_disabled_and_clone_instances_are_not_stopped_resources():
    # "Stopped (disabled)" is the target role; a clone's "Stopped: [ cluster02 ]" beside
    # "Started: [ cluster01 ]" is an instance; both passed by the XML path already.
    st = _pacemaker_view("pacemaker/crm_mon/Pacemaker-2.1.0/59-text-output-of-partially-"
                         "active-resources-with-inactive-resources.txt")
    assert st.stopped == []


# -- pacemaker: no DC -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["crm_mon.minimal.xml", "crm_mon.all_resources.xml"])
def test_no_dc_fails_in_xml_as_in_text(name):
    xml = _pacemaker_view("pacemaker/pcs/" + name)
    assert 'current_dc present="false"' in read("pacemaker/pcs/" + name)
    text = pacemaker.parse_crm_mon_text(
        "Cluster Summary:\n  * Stack: corosync\n  * Current DC: NONE\n\nNode List:\n"
        "  * Online: [ node1 ]\n")
    assert (xml.dc, xml.quorum) == (text.dc, text.quorum) == (None, False)
    bad = failed(pacemaker.evaluate(SMAP, NODES[:1], {"node1": xml}))
    assert bad["pacemaker@node1"] == \
        "node1 in a partition WITHOUT quorum (no DC; online there: none)"


# -- HAProxy: a server on a unix socket -------------------------------------------------------

def test_haproxy_unix_socket_server_is_not_probed_and_down_servers_stay_reported():
    # The bed's recorded output, one server on a unix socket (HAProxy prints its addr as
    # "unix") and one DOWN: none of the published fixtures has the addr column and a
    # unix server at once.
    text = open(os.path.join(DATA, "haproxy_stat_healthy.csv")).read()
    assert ",198.18.10.13:5000," in text
    text = text.replace(",198.18.10.13:5000,", ",unix,").replace(
        "keystone_api,node2,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP",
        "keystone_api,node2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN")
    rows = haproxy.parse_haproxy_stat(text)
    unix = [r for r in rows if r.socket]
    assert [(r.proxy, r.server, r.address) for r in unix] == [("keystone_api", "node3", "")]
    views = {"node1": rows, "node2": rows}
    addresses = haproxy.probe_addresses(views)
    assert addresses and all(re.match(r"[\d.]+:\d+$", a) for a in addresses)
    direct = {a: haproxy.ServerProbe(True) for a in addresses}
    found = haproxy.evaluate(NODES[:2], views, direct)
    bad = failed(found)
    assert set(bad) == {"haproxy/keystone_api/node2"}
    assert bad["haproxy/keystone_api/node2"].startswith("haproxy/keystone_api/node2 DOWN")
    details = {r.component: r.details for r in found.results()}
    assert details["haproxy/keystone_api/node3"] == \
        "haproxy/keystone_api/node3 not probed directly (a unix socket server)"


def test_haproxy_published_down_servers():
    rows = haproxy.parse_haproxy_stat(read("haproxy/datadog-mock_data_evil.csv"))
    bad = failed(haproxy.evaluate(NODES[:1], {"node1": rows}, {}))
    assert set(bad) == {"haproxy/b/i-4", "haproxy/b/i-5",
                        "haproxy/be_edge_http_sre-production_elk-kibana/i-2"}
    rows = haproxy.parse_haproxy_stat(read("haproxy/octavia-STATS_SOCKET_SAMPLE.csv"))
    bad = failed(haproxy.evaluate(NODES[:1], {"node1": rows}, {}))
    assert set(bad) == {"haproxy/http-servers:listener-id/id-34821",
                        "haproxy/http-servers:listener-id/id-34824",
                        "haproxy/http-servers:listener-id",
                        "haproxy/tcp-servers:listener-id/id-34842"}
    rows = haproxy.parse_haproxy_stat(read("haproxy/telegraf-sample_output.csv"))
    assert failed(haproxy.evaluate(NODES[:1], {"node1": rows}, {})) == {}


# -- juju --------------------------------------------------------------------------------------

def test_juju_pending_unit_is_judged_not_the_whole_map():
    # mysql/1 on machine 3: agent-state not-started, public-address null
    smap = servicemap.load(os.path.join(PUBLISHED, "juju/openstack-installer-service-"
                                                   "pending.yaml"))
    (node,) = smap.nodes
    assert (node.name, node.address, node.pending) == (
        "slave2.local", None, "unit pending (no public-address)")
    assert str(node.agent_states["galera"]) == "juju agent-state not-started"
    pool = ssh.SessionPool(ssh.SSHSettings(strict_host_keys=False))
    with pytest.raises(ssh.NodeUnreachable) as err:
        pool.session(node)
    assert str(err.value) == "slave2.local not reachable: unit pending (no public-address)"
    # the checks judge that node unreachable and go on with the others
    ctx = base.OperatorContext(smap, pool)
    found = {r.component: (r.status.value, r.details) for r in operator.ssh_results(ctx)}
    assert found == {"ssh@slave2.local": (
        "failed", "slave2.local not reachable: unit pending (no public-address)")}


def test_juju_units_in_containers_are_named_by_their_container():
    # openstack-installer's lxc-controller-deployed: every OpenStack unit in a container
    # of machine 1, all pending; with one deployed (its address and instance-id filled in
    # as juju 1.x prints them), the node is the container, not its IP.
    data = yaml.safe_load(read("juju/openstack-installer-lxc-controller-deployed.yaml"))
    data["machines"]["1"]["containers"]["1/lxc/4"]["instance-id"] = "juju-machine-1-lxc-4"
    unit = data["services"]["rabbitmq-server"]["units"]["rabbitmq-server/0"]
    unit.update({"agent-state": "started", "public-address": "10.0.3.9"})
    smap = servicemap.from_dict(data)
    by_name = {n.name: n for n in smap.nodes}
    assert by_name["juju-machine-1-lxc-4"].address == "10.0.3.9"
    assert by_name["machine-1-lxc-3"].pending == "unit pending (no public-address)"
    node = by_name["juju-machine-1-lxc-4"]
    view = rabbitmq.RabbitClusterStatus(
        disk_nodes=("rabbit@juju-machine-1-lxc-4",), ram_nodes=(),
        running_nodes=("rabbit@juju-machine-1-lxc-4",), partitions={}, alarms=())
    assert failed(rabbitmq.evaluate(smap, [node], {node.name: view})) == {}


def test_juju_1_25_workload_status_is_judged_beside_the_legacy_agent_state():
    excerpt = read("juju/juju-docs-1.25-release-notes-status-excerpt.txt")
    status = yaml.safe_load("\n".join(re.sub(r"\s*<--.*", "", line) for line in
                                      excerpt.splitlines() if line.strip() != "..."))
    uspec = status["services"]["wordpress"]["units"]["wordpress/0"]
    assert uspec["agent-state"] == "started"
    state = servicemap._unit_state(uspec, "services.wordpress.units.wordpress/0")
    assert str(state) == "juju workload-status blocked (Waiting for database)"
    # the same unit as a keystone unit in a map: its service is judged blocked
    smap = servicemap.from_dict({"machines": {"1": {"instance-id": "ctl1"}}, "services": {
        "keystone": {"charm": "cs:trusty/keystone-1", "units": {"keystone/0": uspec}}}})
    assert not smap.nodes[0].agent_states["keystone"].ok
