"""Upgrade checks on the cloud in a box (docs/upgrade.md): a snapshot of the demo project's
workload (a VM with a volume and a floating IP, its network, subnet, router, port and
security group), through a `cloudpulse-server` and `cpulse upgrade`, then what an upgrade
can break, each done for real and each named in the verify's diff, the security group's
behaviour probed with packets from the checker.  An untouched cloud verifies healthy.
"""

import json
import os
import re
import secrets
import time

import pytest
import requests
import yaml

from cloudpulse import cloud
from cloudpulse import reach
from cloudpulse import results
from cloudpulse.checks import workload as workload_mod
from cloudpulse.checks.operator import commands
from tests.integration.conftest import FUNCTIONAL_CONF, TIMEOUT, WORKLOAD_TIMEOUT, run_cmd
from tests.integration.controller import CONFIGURED, Controller
from tests.integration.server import Server

CIDR = "198.18.77.0/28"   # the operator bed has 198.18.10.0/24, the functional check .42
NAMES = {"vm": "up-vm", "net": "up-net", "subnet": "up-subnet", "router": "up-router",
         "port": "up-port", "security_group": "up-web", "volume": "up-vol",
         "image": "up-image"}


class Workload:
    """What a tenant runs, made as the demo user; removed, whatever a test broke."""

    def __init__(self, conn):
        self.conn = conn
        try:
            self._make()
        except Exception:
            self.remove()   # what was made before the failure
            raise

    def _make(self):
        conn, net = self.conn, self.conn.network
        self.image = conn.create_image(
            NAMES["image"], data=b"cloudbox instance image\n" * 64, disk_format="raw",
            container_format="bare", wait=True, timeout=60)
        self.net = net.create_network(name=NAMES["net"])
        self.subnet = net.create_subnet(name=NAMES["subnet"], network_id=self.net.id,
                                        ip_version=4, cidr=CIDR)
        public = net.find_network("public")
        self.router = net.create_router(name=NAMES["router"],
                                        external_gateway_info={"network_id": public.id})
        net.add_interface_to_router(self.router, subnet_id=self.subnet.id)
        self.group = net.create_security_group(name=NAMES["security_group"])
        self.rule = net.create_security_group_rule(
            security_group_id=self.group.id, direction="ingress", ethertype="IPv4",
            protocol="tcp", port_range_min=80, port_range_max=80,
            remote_ip_prefix="0.0.0.0/0")
        self.port = net.create_port(name=NAMES["port"], network_id=self.net.id)
        self.volume = conn.block_storage.create_volume(name=NAMES["volume"], size=1)
        flavor = conn.compute.find_flavor("cbx.tiny")
        self.vm = conn.compute.create_server(
            name=NAMES["vm"], image_id=self.image.id, flavor_id=flavor.id,
            networks=[{"uuid": self.net.id}], security_groups=[{"name": self.group.name}])
        self.vm = conn.compute.wait_for_server(self.vm, wait=60)
        vm_port = next(net.ports(device_id=self.vm.id))
        self.floating_ip = net.create_ip(floating_network_id=public.id, port_id=vm_port.id)
        # running, as its users see it: its http answers through the floating IP
        deadline = time.monotonic() + 60
        while reach.tcp(self.floating_ip.floating_ip_address, 80, 1)[0] != reach.TCP.OPEN:
            assert time.monotonic() < deadline, "the VM's http through its floating IP"
            time.sleep(0.5)
        conn.block_storage.wait_for_status(self.volume, "available", wait=60)
        conn.compute.create_volume_attachment(self.vm, volume_id=self.volume.id)
        conn.block_storage.wait_for_status(self.volume, "in-use", wait=60)

    def remove(self):
        """Everything made, in an order neutron and cinder accept; what a test (or a
        failed setup) already removed, or never made, is passed over."""
        conn, net = self.conn, self.conn.network
        made = lambda name: getattr(self, name, None)   # noqa: E731
        if made("floating_ip"):
            net.delete_ip(self.floating_ip, ignore_missing=True)
        if made("vm"):
            conn.compute.delete_server(self.vm, ignore_missing=True)
            conn.compute.wait_for_delete(self.vm, wait=60)
        if made("volume"):
            conn.block_storage.wait_for_status(self.volume, "available", wait=60)
            conn.block_storage.delete_volume(self.volume, ignore_missing=True)
        if made("port"):
            net.delete_port(self.port, ignore_missing=True)
        if made("router"):
            if made("subnet") and any(net.ports(device_id=self.router.id,
                                                device_owner="network:router_interface")):
                net.remove_interface_from_router(self.router, subnet_id=self.subnet.id)
            net.delete_router(self.router, ignore_missing=True)
        for name, delete in (("net", net.delete_network), ("group", net.delete_security_group),
                             ("image", conn.image.delete_image)):
            if made(name):
                delete(getattr(self, name), ignore_missing=True)
        if made("volume"):
            conn.block_storage.wait_for_delete(self.volume, wait=60)


@pytest.fixture(scope="module")
def workload(box):
    conn = cloud.connect(box.demo_cloud, box.clouds_yaml, timeout=30)
    made = Workload(conn)
    yield made
    made.remove()


@pytest.fixture(scope="module")
def admin_server(venv_bin, tmp_path_factory, box):
    """The admin's server (noauth: every caller is admin), judging hosts too, and
    building the sets a snapshot creates with the functional check's image and flavor."""
    state = tmp_path_factory.mktemp("upgrade-server")
    image = state / "image.raw"
    image.write_bytes(b"cloudbox instance image\n" * 64)
    srv = Server(venv_bin, state, box, extra=FUNCTIONAL_CONF % image,
                 timeout=WORKLOAD_TIMEOUT)
    yield srv
    srv.stop()


def _verify(srv, snapshot, http=requests):
    handle = http.post(srv.url + "/cpulse/check", json={
        "type": "upgrade", "snapshot": snapshot}, timeout=TIMEOUT).json()["handle"]
    run = http.get(srv.url + "/cpulse/result", params={"handle": handle, "wait": 60},
                   timeout=70).json()
    assert run["state"] == "finished", run
    return run


def _failed(run):
    return {key: details for failed in run["tests_failed"] for key, details in failed.items()}


def test_a_watch_measures_each_workloads_outages_until_stopped(admin_server, workload,
                                                              admin_conn, box, venv_bin):
    """During an "upgrade": ovn-controller restarted on the VM's host and neutron-server
    restarted (the flows stay: the data plane should keep forwarding through both), then
    the VM's http cut for a few seconds by its security group; the watch, stopped
    through the CLI, names that cut alone, and its length."""
    project = workload.conn.current_project_id
    snap = requests.post(admin_server.url + "/cpulse/snapshot",
                         json={"project_id": project}, timeout=30).json()
    env = dict(os.environ, CPULSE_URL=admin_server.url)
    cpulse = os.path.join(venv_bin, "cpulse")
    res = run_cmd([cpulse, "upgrade", "watch", snap["handle"], "--seconds", "120"], env=env)
    assert res.returncode == 0, res.stderr
    run_handle = res.stdout.strip()
    time.sleep(3)
    host = admin_conn.compute.get_server(workload.vm.id).compute_host
    box.stop(box.host_service("ovn-controller", host))
    box.start(box.host_service("ovn-controller", host))
    box.stop("neutron")
    box.start("neutron")
    net = workload.conn.network
    net.delete_security_group_rule(workload.rule)
    time.sleep(5)
    workload.rule = net.create_security_group_rule(
        security_group_id=workload.group.id, direction="ingress", ethertype="IPv4",
        protocol="tcp", port_range_min=80, port_range_max=80, remote_ip_prefix="0.0.0.0/0")
    time.sleep(4)
    res = run_cmd([cpulse, "upgrade", "stop", run_handle], env=env)
    assert res.returncode == 0, res.stderr
    run = requests.get(admin_server.url + "/cpulse/result",
                       params={"handle": run_handle, "wait": 30}, timeout=40).json()
    assert run["state"] == "finished", run
    watched = [r for r in run["results"] if r["name"] == "upgrade.watch/up-vm"][0]
    match = re.search(r"(\d+) rounds, loss ([\d.]+)% \(tcp/80 (\d+)\), longest outage "
                      r"(\d+) s; outages at (.*)", watched["details"])
    assert match and watched["status"] == "failed", watched   # over 1% lost
    rounds, lost, longest = int(match.group(1)), int(match.group(3)), int(match.group(4))
    assert 3 <= longest <= 12 and lost >= 3 and rounds >= 12, watched["details"]
    assert "(ongoing)" not in watched["details"]
    # stopped by the CLI, not by its 120 s
    assert (results.parse_ts(run["finished_at"]) - results.parse_ts(run["created_at"])) \
        .total_seconds() < 90


def test_a_snapshot_of_a_project_verifies_healthy_untouched_and_names_each_break(
        admin_server, workload, admin_conn, faults, box):
    project = workload.conn.current_project_id
    answer = requests.post(admin_server.url + "/cpulse/snapshot",
                           json={"create": False, "project_id": project}, timeout=30)
    assert answer.status_code == 201, answer.text
    snap = answer.json()
    assert snap["project_id"] == project and snap["timestamp"]
    for kind, name in NAMES.items():
        assert name in snap["resources"][kind], (kind, snap["resources"])
    assert "compute" in snap["versions"] and snap["versions"]["compute"]["max"]

    untouched = _verify(admin_server, snap["handle"])
    assert untouched["healthy"] and untouched["tests_failed"] == [], untouched
    for kind, name in NAMES.items():
        assert "upgrade.%s/%s" % (kind, name) in untouched["tests_passed"]
    versions = [r for r in untouched["results"] if r["name"] == "upgrade.versions"][0]
    assert "compute 2.1-%s (unchanged)" % snap["versions"]["compute"]["max"] in \
        versions["details"]

    # The security group behaves otherwise: what it allowed is blocked, and what it
    # blocked (ping) is allowed, as the checker's packets to the floating IP find.
    fip = workload.floating_ip.floating_ip_address
    conn, net = workload.conn, workload.conn.network
    net.delete_security_group_rule(workload.rule)
    net.create_security_group_rule(security_group_id=workload.group.id, direction="ingress",
                                   ethertype="IPv4", protocol="icmp",
                                   remote_ip_prefix="0.0.0.0/0")
    want = ("%s icmp was blocked, now allowed (security groups: up-web); %s tcp/80 was "
            "allowed, now blocked (security groups: up-web)" % (fip, fip))
    seen = []   # OVN applies a rule's change within a second or two
    box.wait_for(lambda: seen.append(_failed(_verify(admin_server, snap["handle"])))
                 or seen[-1].get("upgrade.vm/up-vm") == want, timeout=30, interval=1,
                 message="the rules' change seen in packets: %s" % seen[-1:])
    assert seen[-1]["upgrade.security_group/up-web"] == (
        "rule ingress IPv4 tcp/80 from 0.0.0.0/0 removed; "
        "rule ingress IPv4 icmp from 0.0.0.0/0 added")

    # What an upgrade can break, each for real.
    conn.compute.stop_server(workload.vm)
    conn.compute.wait_for_server(workload.vm, status="SHUTOFF", wait=60)
    net.update_port(workload.port, admin_state_up=False)
    net.delete_ip(workload.floating_ip)   # neutron keeps a gateway its floating IPs use
    net.update_router(workload.router, external_gateway_info={})
    conn.compute.delete_volume_attachment(workload.vm, workload.volume)
    conn.block_storage.wait_for_status(workload.volume, "available", wait=60)

    broken = _failed(_verify(admin_server, snap["handle"]))
    assert broken["upgrade.vm/up-vm"].startswith(
        "status ACTIVE -> SHUTOFF; address up-net %s removed; volume up-vol detached; "
        "%s tcp/80 was allowed, now blocked" % (fip, fip)), broken
    assert broken["upgrade.port/up-port"] == "admin state up -> down"
    assert broken["upgrade.volume/up-vol"] == "status in-use -> available; detached from up-vm"
    assert broken["upgrade.floating_ip/%s" % fip] == "gone"
    assert broken["upgrade.router/up-router"].startswith("gateway lost"), broken
    assert "upgrade.net/up-net" not in broken and "upgrade.image/up-image" not in broken

    # The VM started again on a host whose nova-compute then stops.
    conn.compute.start_server(workload.vm)
    conn.compute.wait_for_server(workload.vm, status="ACTIVE", wait=60)
    host = admin_conn.compute.get_server(workload.vm.id).compute_host
    faults.stop(box.host_service("nova-compute", host))
    seen = []
    box.wait_for(lambda: seen.append(_failed(_verify(admin_server, snap["handle"])))
                 or "nova-compute down" in seen[-1].get("upgrade.vm/up-vm", ""),
                 timeout=60, interval=2, message="the VM's host judged down: %s" % seen[-1:])
    assert "its host %s: nova-compute down or disabled" % host in seen[-1]["upgrade.vm/up-vm"]


def test_cpulse_upgrade_snapshot_list_verify_delete(admin_server, workload, venv_bin):
    env = dict(os.environ, CPULSE_URL=admin_server.url)
    cpulse = os.path.join(venv_bin, "cpulse")
    project = workload.conn.current_project_id
    res = run_cmd([cpulse, "upgrade", "snapshot", "--project-id", project, "-f", "json"],
                  env=env)
    assert res.returncode == 0, res.stderr
    handle = json.loads(res.stdout)["handle"]
    res = run_cmd([cpulse, "upgrade", "list"], env=env)
    assert res.returncode == 0 and handle in res.stdout and project in res.stdout
    res = run_cmd([cpulse, "upgrade", "verify", handle, "--wait"], env=env)
    assert res.returncode == 0, res.stdout + res.stderr   # nothing changed since
    assert "HEALTHY" in res.stdout.splitlines()[0]
    assert any(line.startswith("upgrade.vm") and "up-vm" in line
               for line in res.stdout.splitlines()), res.stdout
    res = run_cmd([cpulse, "upgrade", "delete", handle], env=env)
    assert res.returncode == 0, res.stderr
    res = run_cmd([cpulse, "upgrade", "verify", handle], env=env)
    assert res.returncode == 2 and "no snapshot" in res.stderr


def test_a_member_snapshots_and_verifies_their_own_project_only(
        venv_bin, tmp_path, box, workload, admin_conn):
    demo = workload.conn.current_project_id
    tokens = {who: secrets.token_hex(20) for who in ("a", "b", "admin")}
    token_file = tmp_path / "tokens"
    token_file.write_text("%s %s member\n%s %s member\n%s ops admin\n" % (
        tokens["a"], demo, tokens["b"], admin_conn.current_project_id, tokens["admin"]))
    token_file.chmod(0o600)
    image = tmp_path / "image.raw"
    image.write_bytes(b"cloudbox instance image\n" * 64)
    srv = Server(venv_bin, tmp_path, box, auth="token_file",
                 extra="[api]\ntoken_file = %s\n" % token_file + FUNCTIONAL_CONF % image)

    def call(method, path, who, **kwargs):
        return requests.request(method, srv.url + path, timeout=30,
                                headers={"X-Auth-Token": tokens[who]}, **kwargs)
    try:
        answer = call("POST", "/cpulse/snapshot", "a", json={})
        assert answer.status_code == 201, answer.text
        snap = answer.json()
        assert snap["project_id"] == demo and NAMES["vm"] in snap["resources"]["vm"]
        handle = snap["handle"]
        # member b: a's snapshot reads as none, and a's project is not b's to snapshot
        assert call("GET", "/cpulse/snapshot", "b", params={"handle": handle}).status_code \
            == 404
        refused = call("POST", "/cpulse/check", "b", json={"type": "upgrade",
                                                          "snapshot": handle})
        assert refused.status_code == 404 and refused.json()["message"].startswith(
            "snapshot: "), refused.text
        refused = call("POST", "/cpulse/snapshot", "b", json={"project_id": demo})
        assert refused.status_code == 403 and "cloudpulse:snapshot:all_projects" in \
            refused.json()["message"]
        assert call("GET", "/cpulse/snapshots", "b").json()["snapshots"] == []
        assert call("DELETE", "/cpulse/snapshot", "b", params={"handle": handle}) \
            .status_code == 404
        assert [s["handle"] for s in call("GET", "/cpulse/snapshots", "admin")
                .json()["snapshots"]] == [handle]
        # member a's upgrade run verifies a's newest snapshot, hosts masked
        run_handle = call("POST", "/cpulse/check", "a", json={"type": "upgrade"}).json()[
            "handle"]
        run = call("GET", "/cpulse/result", "a", params={"handle": run_handle,
                                                          "wait": 60}).json()
        assert run["healthy"] and "upgrade.vm/up-vm" in run["tests_passed"], run
        assert "host" not in call("GET", "/cpulse/snapshot", "a", params={
            "handle": handle}).json()["records"]["vm"][0]
        assert call("DELETE", "/cpulse/snapshot", "a", params={"handle": handle}) \
            .status_code == 204
        bad = call("POST", "/cpulse/snapshot", "a", json={"create": "yes"})
        assert bad.status_code == 400 and bad.json()["message"].startswith("create: ")
        # a set in a's project is made through a keystone trust from a: a token of the
        # token file is not keystone's
        refused = call("POST", "/cpulse/snapshot", "a", json={"create": True,
                                                             "resources": SET})
        assert refused.status_code == 400 and refused.json()["message"] == (
            "create: a set in project %s (not the server's own, %s) is made through a "
            "keystone trust from the caller: it needs [api] auth_strategy = keystone"
            % (demo, admin_conn.current_project_id)), refused.text
    finally:
        srv.stop()
    assert not any(token in srv.log_text() for token in tokens.values())



# What a snapshot creates (create true): two VMs on two networks behind one router, and
# the connection between them, which must ping both ways.
SET = {"net": ["up-a", {"name": "up-b", "cidr": "198.18.51.0/24"}],
       "router": [{"name": "up-r", "nets": ["up-a", "up-b"]}],
       "vm": [{"name": "up-1", "net": "up-a"}, {"name": "up-2", "net": "up-b"}],
       "connections": [["up-1", "up-2"]]}


@pytest.fixture(scope="module")
def keystone_server(venv_bin, tmp_path_factory, box):
    """A server whose callers are keystone's (a member acts in their own project),
    building sets as admin_server does."""
    state = tmp_path_factory.mktemp("upgrade-keystone-server")
    image = state / "image.raw"
    image.write_bytes(b"cloudbox instance image\n" * 64)
    srv = Server(venv_bin, state, box, auth="keystone", extra=FUNCTIONAL_CONF % image,
                 timeout=WORKLOAD_TIMEOUT)
    yield srv
    srv.stop()


def test_a_members_set_is_made_in_their_project_proven_spared_by_the_sweeper_verified_and_removed_on_request(
        keystone_server, admin_conn, demo_conn, box, venv_bin, tmp_path):
    """A member (the box's demo) has a set made in their own project, through a keystone
    trust that lives as long as the creation; the server verifies, watches and removes it
    with its own credentials."""
    server = keystone_server
    member = requests.Session()
    member.headers["X-Auth-Token"] = demo_conn.session.get_token()
    demo, demo_user = demo_conn.current_project_id, demo_conn.current_user_id
    refused = member.post(server.url + "/cpulse/snapshot", json={
        "create": True, "resources": dict(SET, vm=[{"name": "up-1", "net": "up-c"}])},
        timeout=TIMEOUT)
    assert refused.status_code == 400 and refused.json()["message"] == \
        "resources.vm[0].net: no network 'up-c' in resources.net", refused.text
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(CPULSE_URL=server.url, OS_CLIENT_CONFIG_FILE=str(box.clouds_yaml),
               OS_CLOUD=box.demo_cloud)
    cpulse = os.path.join(venv_bin, "cpulse")
    (tmp_path / "set.yaml").write_text(yaml.safe_dump(SET))
    res = run_cmd([cpulse, "upgrade", "create", "--resources", str(tmp_path / "set.yaml"),
                   "--wait", "--timeout", "240", "-f", "json"], env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    made = json.loads(res.stdout)
    handle = made["handle"]   # the run's, and the snapshot's
    try:
        assert {"upgrade.create.network", "upgrade.create.boot", "upgrade.create.connections",
                "upgrade.create.snapshot"} <= {r["name"] for r in made["results"]
                                              if r["status"] == "passed"}, made["results"]
        # the set stays: no cleanup
        assert "upgrade.create.cleanup" not in {r["name"] for r in made["results"]}

        shown = member.get(server.url + "/cpulse/snapshot", params={"handle": handle},
                             timeout=TIMEOUT)
        snap = shown.json()
        assert snap["resources"]["vm"] == ["up-1", "up-2"]
        assert snap["resources"]["net"] == ["up-a", "up-b"] and snap["resources"]["router"] \
            == ["up-r"]
        # only what the run made: no network or VM of the project besides
        assert len(snap["resources"]["floating_ip"]) == 2 and len(snap["resources"]["image"]) == 1
        assert "PRIVATE KEY" not in shown.text and "PRIVATE KEY" not in server.log_text()
        # a sweeper (the next workload run's, the server's at start) leaves a live set alone
        registry = workload_mod.RunRegistry(str(server.state / "runs"))
        assert workload_mod.sweep(admin_conn, registry) == []
        vms = {s.name: s for s in admin_conn.compute.servers(
            tags="cloudpulse-run:" + handle, all_projects=True)}
        assert sorted(vms) == ["up-1", "up-2"]
        assert all("cloudpulse" in s.tags for s in vms.values())
        # the member's, made on their behalf: in their project, their key pair; the
        # trust it was made through is gone with the creation run
        assert {s.project_id for s in vms.values()} == {demo}
        assert demo_conn.compute.find_keypair("cloudpulse-%s-key" % handle[:8]) is not None
        assert list(admin_conn.identity.trusts(trustor_user_id=demo_user)) == []
        assert snap["project_id"] == demo

        untouched = _verify(server, handle, member)
        assert untouched["healthy"], _failed(untouched)
        assert {"upgrade.connection/up-1-up-2", "upgrade.vm/up-1", "upgrade.vm/up-2",
                "upgrade.router/up-r"} <= set(untouched["tests_passed"]), untouched

        # the set's security group stops letting ping in, during a watch: each way fails,
        # named, and so does the checker's own ping of each VM
        res = run_cmd([cpulse, "upgrade", "watch", handle, "--seconds", "120"], env=env)
        assert res.returncode == 0, res.stderr
        watch_handle = res.stdout.strip()
        time.sleep(4)
        [group] = admin_conn.network.security_groups(tags="cloudpulse-run:" + handle)
        [icmp] = [r for r in group.security_group_rules if r["protocol"] == "icmp"]
        admin_conn.network.delete_security_group_rule(icmp["id"])
        seen = []
        box.wait_for(lambda: seen.append(_failed(_verify(server, handle, member)))
                     or "upgrade.connection/up-1-up-2" in seen[-1], timeout=60, interval=2,
                     message="the connection cut: %s" % seen[-1:])
        cut = seen[-1]["upgrade.connection/up-1-up-2"]
        # a member's view: the VMs' addresses are operator detail
        assert re.match(r"up-1 -> up-2 \(<address>\): no reply in .*; "
                        r"up-2 -> up-1 \(<address>\): no reply in ", cut), cut
        assert "icmp was allowed, now blocked" in seen[-1]["upgrade.vm/up-1"]
        res = run_cmd([cpulse, "upgrade", "stop", watch_handle], env=env)
        assert res.returncode == 0, res.stderr
        watch = member.get(server.url + "/cpulse/result", params={
            "handle": watch_handle, "wait": 30}, timeout=40).json()
        watched = {r["name"]: r for r in watch["results"]}
        for way in ("up-1->up-2", "up-2->up-1"):   # pinged from inside, over SSH
            seen_way = watched["upgrade.watch/%s" % way]
            assert seen_way["status"] == "failed" and "(ongoing)" in seen_way["details"], \
                seen_way
            assert re.match(r"%s \(<address>\): (\d+) rounds, loss" % way,
                            seen_way["details"]), seen_way
            # it pinged until the rule went, 4 s in: the cut is the only outage
            started = re.search(r"outages at \+(\d+) s for \d+ s \(ongoing\)",
                                seen_way["details"])
            assert started and int(started.group(1)) >= 3, seen_way["details"]
        assert "icmp" in watched["upgrade.watch/up-1"]["details"] and \
            watched["upgrade.watch/up-1"]["status"] == "failed"

        res = run_cmd([cpulse, "upgrade", "delete", handle, "--wait", "--timeout", "240",
                       "-f", "json"], env=env, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        [removed] = json.loads(res.stdout)["results"]
        assert removed["name"] == "upgrade.remove" and removed["status"] == "passed", removed
        assert "server" in removed["details"] and "snapshot %s deleted" % handle in \
            removed["details"]
        assert member.get(server.url + "/cpulse/snapshot", params={"handle": handle},
                            timeout=TIMEOUT).status_code == 404
        assert workload_mod.leftovers(admin_conn, handle) == []
        assert demo_conn.compute.find_keypair("cloudpulse-%s-key" % handle[:8]) is None
    finally:   # what a failure above left, as the sweeper would take it
        for _, _, delete in workload_mod.tagged(
                admin_conn, handle, notes={"keypair": ["cloudpulse-%s-key" % handle[:8]],
                                           workload_mod.OWNER: [demo_user]}):
            delete()
        for trust in admin_conn.identity.trusts(trustor_user_id=demo_user):
            admin_conn.identity.delete_trust(trust)


def test_an_operators_snapshot_records_the_control_planes_own_upgrade_checks(
        venv_bin, tmp_path, box, faults):
    """The *-status tools run over SSH on a controller (the box's host, configured as
    one): before the upgrade as the snapshot's readiness, and after, beside it; placement
    down in between stops nova-status's Placement API check, for real."""
    controller = Controller(tmp_path / "ctl", box)
    srv = None
    try:   # a controller left running would pin the box's namespaces (cloudbox.sh down)
        (tmp_path / "srv").mkdir()
        srv = Server(venv_bin, tmp_path / "srv", box, extra=(
            "[operator]\nservice_map = %s\nknown_hosts_file = %s\nssh_key_file = %s\n"
            % (controller.service_map(), controller.known_hosts, controller.key)))
        answer = requests.post(srv.url + "/cpulse/snapshot", json={}, timeout=120)
        assert answer.status_code == 201, answer.text
        ready = answer.json()["readiness"]
        assert sorted(ready) == sorted("%s@ctl1" % s for s in CONFIGURED)
        verdicts = {key: r["verdict"] for key, r in ready.items()}
        # nova-status has no --json: read from its table (a warning when an earlier
        # test's stopped nova-compute is still listed down)
        assert verdicts["nova@ctl1"] in ("success", "warning"), ready["nova@ctl1"]
        assert ready["nova@ctl1"]["checks"][0] == ["Cells v2", "success", ""]
        assert verdicts["neutron@ctl1"] == "warning" and any(
            c[0] == "Worker counts configured" and c[1] == "warning"
            for c in ready["neutron@ctl1"]["checks"])
        # the box's glance-status crashes on its configuration: the tool's own error
        assert verdicts["glance@ctl1"] == "error" and "NoSuchOptError" in \
            ready["glance@ctl1"]["note"]
        assert {verdicts[k] for k in ("cinder@ctl1", "placement@ctl1", "keystone@ctl1")} \
            == {"success"}
        # the release of each service's code, as its tool's interpreter has it installed:
        # the box's pins
        pinned = dict(line.strip().split("==") for line in
                      open(box.script.parent / "constraints.txt") if "==" in line)
        assert {key: r["release"] for key, r in ready.items()} == {
            "%s@ctl1" % s: pinned[commands.DISTRIBUTIONS[s]] for s in CONFIGURED}

        faults.stop("placement")
        run = _verify(srv, answer.json()["handle"])
        found = {r["name"]: r for r in run["results"]}
        # nova-status cannot finish its Placement API check: the tool's exit 255, and
        # the reason it printed
        nova = found["upgrade.readiness/nova@ctl1"]
        assert nova["status"] == "error", nova["details"]
        assert nova["details"].endswith("(release %s)" % pinned["nova"])
        assert re.match(r"now error: exit status 255: keystoneauth1\.exceptions\."
                        r"connection\.ConnectFailure: Unable to establish connection to "
                        r"http://127\.0\.0\.1:8778/.*; before the upgrade (success|warning)",
                        nova["details"]), nova["details"]
        assert found["upgrade.readiness/neutron@ctl1"]["status"] == "passed"
        assert found["upgrade.readiness/glance@ctl1"]["status"] == "error"
    finally:
        if srv is not None:
            srv.stop()
        controller.stop()
