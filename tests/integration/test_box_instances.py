"""The cloud in a box boots instances that carry packets (tools/cloudbox/cbvirt.py): through
nova's and neutron's APIs as a tenant would, then from the host through a floating IP, over
SSH with the instance's key pair, and on port 80; the user-data script's output in the
console log; stop and start act on the instance.  The two instances land on different
compute hosts (an anti-affinity server group), so their packets cross a real geneve tunnel,
whose overhead shows in the path MTU."""

import base64
import contextlib
import subprocess
import time

import paramiko
import pytest
import requests

from cloudpulse import cloud
from tests.integration.conftest import run_cmd

CIDR = "198.18.40.0/24"   # not the operator bed's 198.18.10.0/24


def _wait(predicate, timeout, what, interval=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %s s" % (what, timeout))
        time.sleep(interval)


def _pings(address, count=1):
    return subprocess.run(["ping", "-n", "-c", str(count), "-W", "1", address],
                          capture_output=True).returncode == 0


@pytest.fixture
def keypair(tmp_path):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                   check=True)
    return key


@contextlib.contextmanager
def _tenant_network(conn, admin_conn):
    """A network, subnet, router with a gateway on `public`, and a security group that
    allows ping, ssh and http; all removed on exit."""
    made = []
    try:
        net = conn.network.create_network(name="cbx-test-net")
        made.append(lambda: conn.network.delete_network(net))
        subnet = conn.network.create_subnet(name="cbx-test-subnet", network_id=net.id,
                                            ip_version=4, cidr=CIDR)
        made.append(lambda: conn.network.delete_subnet(subnet))
        public = admin_conn.network.find_network("public")
        router = conn.network.create_router(name="cbx-test-router",
                                            external_gateway_info={"network_id": public.id})
        made.append(lambda: conn.network.delete_router(router))
        conn.network.add_interface_to_router(router, subnet_id=subnet.id)
        made.append(lambda: conn.network.remove_interface_from_router(
            router, subnet_id=subnet.id))
        group = conn.network.create_security_group(name="cbx-test-sg")
        made.append(lambda: conn.network.delete_security_group(group))
        for rule in ({"protocol": "icmp"},
                     {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22},
                     {"protocol": "tcp", "port_range_min": 80, "port_range_max": 80}):
            conn.network.create_security_group_rule(
                security_group_id=group.id, direction="ingress", ethertype="IPv4", **rule)
        yield net, public, group
    finally:
        for undo in reversed(made):
            try:
                undo()
            except Exception:   # the next step may still work; the test reports first
                pass


# Per API call: this tests the box, not how fast it answers (a router's gateway on OVN
# took over 3 s on a loaded 2-core machine).
SETUP_TIMEOUT = 30


def test_instances_carry_packets(box, admin_conn, keypair):
    assert len(box.compute_hosts) >= 2, box.compute_hosts
    # admin_conn (the fixture) waited for a healthy box; these wait longer per call
    conn = cloud.connect(box.demo_cloud, box.clouds_yaml, timeout=SETUP_TIMEOUT)
    admin_conn = cloud.connect(box.admin_cloud, box.clouds_yaml, timeout=SETUP_TIMEOUT)
    image = conn.image.create_image(name="cbx-test-image", data=b"cloudbox instance",
                                    disk_format="raw", container_format="bare",
                                    allow_duplicates=True)
    key = conn.compute.create_keypair(name="cbx-test-key",
                                      public_key=keypair.with_suffix(".pub").read_text())
    flavor = conn.compute.find_flavor("cbx.tiny")
    group = conn.compute.create_server_group(name="cbx-test-apart", policy="anti-affinity")
    made = []   # servers and the floating IP, removed before their network
    try:
        with _tenant_network(conn, admin_conn) as (net, public, sg):
            try:
                _boot_and_reach(conn, admin_conn, image, key, flavor, net, public, sg,
                                group, keypair, made)
            finally:
                _delete(conn, made)
    finally:
        conn.compute.delete_server_group(group, ignore_missing=True)
        conn.compute.delete_keypair(key, ignore_missing=True)
        conn.image.delete_image(image, ignore_missing=True)
    # Deleted instances leave no namespace behind.
    namespaces = run_cmd(["ip", "netns", "list"]).stdout
    assert not [thing.id for thing in made if "cbx-%s" % thing.id in namespaces], namespaces


def _boot_and_reach(conn, admin_conn, image, key, flavor, net, public, sg, group, keypair,
                    made):
    t0 = time.monotonic()
    vm2 = conn.compute.create_server(
        name="cbx-test-vm2", image_id=image.id, flavor_id=flavor.id,
        networks=[{"uuid": net.id}], key_name=key.name,
        security_groups=[{"name": sg.name}], scheduler_hints={"group": group.id})
    made.append(vm2)
    vm2 = conn.compute.wait_for_server(vm2, wait=60, interval=0.5)
    boot_seconds = time.monotonic() - t0
    vm2_ip = next(iter(vm2.addresses.values()))[0]["addr"]
    # a guest's first packets may go before its port's flows reach the other host, so
    # the script tries a few times, as a real guest's would
    script = ("#!/bin/sh\necho hello from user-data\n"
              "for i in 1 2 3 4 5; do ping -c 1 -W 1 %s && break; done\n" % vm2_ip)
    vm1 = conn.compute.create_server(
        name="cbx-test-vm1", image_id=image.id, flavor_id=flavor.id,
        networks=[{"uuid": net.id}], key_name=key.name,
        security_groups=[{"name": sg.name}], user_data=_b64(script),
        scheduler_hints={"group": group.id})
    made.append(vm1)
    vm1 = conn.compute.wait_for_server(vm1, wait=60, interval=0.5)
    hosts = {admin_conn.compute.get_server(vm.id).compute_host for vm in (vm1, vm2)}
    assert len(hosts) == 2 and hosts <= set(box_hosts(admin_conn)), hosts
    port = next(conn.network.ports(device_id=vm1.id))
    fip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    made.append(fip)
    address = fip.floating_ip_address

    # From the host, through br-ex, the router's NAT and the tenant network.
    _wait(lambda: _pings(address), 30, "ping of the floating IP %s" % address)
    client = _ssh(address, keypair)
    try:
        out = _exec(client, "ip -o -4 addr show dev eth0; ping -n -c 2 -W 2 %s"
                    % vm2_ip)
        # geneve takes 58 bytes of the 1500-byte underlay: neutron gives the network an
        # MTU of 1442, and a 1414-byte ICMP payload (+28) is the most that passes with DF
        mtu = _exec(client, "cat /sys/class/net/eth0/mtu")
        largest = _exec(client, "ping -n -c 1 -W 2 -M do -s 1414 %s" % vm2_ip)
        too_big = _exec(client, "ping -n -c 1 -W 2 -M do -s 1415 %s" % vm2_ip)
    finally:
        client.close()
    assert out[0] == 0, out
    assert "2 received" in out[1] or "2 packets received" in out[1], out
    assert mtu[1].strip() == "1442" == str(conn.network.get_network(net.id).mtu), mtu
    assert largest[0] == 0, largest
    assert too_big[0] != 0 and "mtu=1442" in too_big[1] + too_big[2], too_big
    page = requests.get("http://%s/" % address, timeout=5)
    assert page.status_code == 200 and vm1.id in page.text, page.text
    console = _wait(lambda: (lambda c: c if "user-data finished" in c else None)(
        conn.compute.get_server_console_output(vm1)["output"]), 30, "user-data")
    assert "hello from user-data" in console
    assert "1 packets received" in console or "1 received" in console, console
    assert "DHCP bound on eth0: ip=198.18.40." in console, console

    # Stop: the instance no longer answers; start: it answers again.
    conn.compute.stop_server(vm1)
    conn.compute.wait_for_server(vm1, status="SHUTOFF", wait=60, interval=0.5)
    assert not _pings(address)
    conn.compute.start_server(vm1)
    conn.compute.wait_for_server(vm1, status="ACTIVE", wait=60, interval=0.5)
    _wait(lambda: _pings(address), 30, "ping after start")
    assert boot_seconds < 30, boot_seconds


def box_hosts(admin_conn):
    return [s.host for s in admin_conn.compute.services() if s.binary == "nova-compute"]


def _delete(conn, made):
    for thing in reversed(made):
        if hasattr(thing, "floating_ip_address"):
            conn.network.delete_ip(thing, ignore_missing=True)
        else:
            conn.compute.delete_server(thing, ignore_missing=True)
    for thing in made:
        if not hasattr(thing, "floating_ip_address"):
            conn.compute.wait_for_delete(thing, wait=60)


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def _ssh(address, key_file):
    def connect():
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(address, username="root", key_filename=str(key_file),
                           allow_agent=False, look_for_keys=False, timeout=3,
                           banner_timeout=3, auth_timeout=3)
            return client
        except Exception:
            client.close()
            return None
    return _wait(connect, 30, "ssh to %s" % address, interval=1)


def _exec(client, command):
    _, stdout, stderr = client.exec_command(command, timeout=15)
    return stdout.channel.recv_exit_status(), stdout.read().decode(), stderr.read().decode()

