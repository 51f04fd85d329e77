"""Upgrade check benchmark on the cloud in a box: the snapshot and the verify of a project
at 1x, 2x and 4x a unit of resources (10 VMs, 5 networks with a subnet each, 20 ports: the
VMs' and 10 of their own), side by side with the alternative an operator has today, the
openstack client listing the same kinds one command after another.  Medians of N runs
(the machine is noisy), and the API calls each makes.

    python bench/upgrade.py [--repeat 5] [--scales 1,2,4]

(a) CloudPulse's snapshot (cloudpulse.checks.upgrade.take: the listings in parallel, and
    the 10 floating IPs of (d) probed) and (b) its verify (the same, and the diff)
(c) `openstack {server,port,network,subnet,router,security group,floating ip,volume,
    image} list --long`, one after another, as JSON: the listings alone, no diff
(d) the watch's cost per workload: 10 VMs given floating IPs and a group that lets ping,
    ssh and http through, watched for 20 s: the checker's CPU per workload-second, and the
    packets per second it sends each (a ping is 1; a TCP probe, its handshake and close)
Creates what it measures in a project of its own and removes it.  Needs the box up
(tools/cloudbox/cloudbox.sh up).
"""

import argparse
import os
import resource
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from bench.timing import median, timed  # noqa: E402
from cloudpulse.checks import upgrade  # noqa: E402
from cloudpulse import cloud  # noqa: E402
from tests.integration import cloudbox  # noqa: E402

BIN = os.path.dirname(sys.executable)
UNIT = {"vm": 10, "net": 5, "port": 10}   # ports of their own, besides the VMs'
CLI_LISTS = [["server", "list", "--long"], ["port", "list", "--long"], ["network", "list"],
             ["subnet", "list"], ["router", "list", "--long"], ["security", "group", "list"],
             ["floating", "ip", "list"], ["volume", "list", "--long"], ["image", "list"]]


class CallCounter:
    """The HTTP requests a connection's session sends."""

    def __init__(self, conn):
        self.count = 0
        conn.session.session.hooks["response"].append(self._seen)

    def _seen(self, response, *args, **kwargs):
        self.count += 1

    def of(self, func):
        before = self.count
        func()
        return self.count - before


def grow_to(conn, scale, made):
    """The bench project's resources up to `scale` units (VMs booted together)."""
    net = conn.network
    if "image" not in made:
        made["image"] = conn.create_image(
            "cloudpulse-upgrade-bench", data=b"cloudbox instance image\n" * 64,
            disk_format="raw", container_format="bare", wait=True, timeout=60)
    image = made["image"]
    flavor = conn.compute.find_flavor("cbx.tiny")
    while len(made.setdefault("nets", [])) < UNIT["net"] * scale:
        n = len(made["nets"])
        network = net.create_network(name="bench-net-%d" % n)
        # 198.18.100.0 up: clear of the operator bed's .10, the functional check's .42
        net.create_subnet(network_id=network.id, ip_version=4,
                          cidr="198.18.%d.%d/26" % (100 + n // 4, 64 * (n % 4)))
        made["nets"].append(network)
    while len(made.setdefault("ports", [])) < UNIT["port"] * scale:
        n = len(made["ports"])
        made["ports"].append(net.create_port(name="bench-port-%d" % n,
                                             network_id=made["nets"][n % len(made["nets"])].id))
    booting = []
    while len(made.setdefault("vms", [])) + len(booting) < UNIT["vm"] * scale:
        n = len(made["vms"]) + len(booting)
        booting.append(conn.compute.create_server(
            name="bench-vm-%d" % n, image_id=image.id, flavor_id=flavor.id,
            networks=[{"uuid": made["nets"][n % len(made["nets"])].id}]))
    for vm in booting:
        made["vms"].append(conn.compute.wait_for_server(vm, wait=300))


def open_to_the_checker(conn, made, count):
    """`count` VMs reachable from here: a router to the external network, a floating IP
    each, and a group letting ping, ssh and http in."""
    net = conn.network
    public = net.find_network("public")
    router = made["router"] = net.create_router(
        name="bench-router", external_gateway_info={"network_id": public.id})
    for network in made["nets"]:
        for subnet in net.subnets(network_id=network.id):
            net.add_interface_to_router(router, subnet_id=subnet.id)
    group = made["group"] = net.create_security_group(name="bench-open")
    for protocol, port in (("icmp", None), ("tcp", 22), ("tcp", 80)):
        net.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4",
            protocol=protocol, port_range_min=port, port_range_max=port,
            remote_ip_prefix="0.0.0.0/0")
    for vm in made["vms"][:count]:
        conn.compute.add_security_group_to_server(vm, group)
        port = next(net.ports(device_id=vm.id))
        made.setdefault("fips", []).append(
            net.create_ip(floating_network_id=public.id, port_id=port.id))


def watch_cost(admin, scope, seconds):
    """(workloads watched, CPU seconds per workload-second, packets/s per workload)."""
    snapshot = upgrade.take(admin, scope, timeout=30)
    targets = upgrade.watch_targets(snapshot)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    watched = upgrade.watch(targets, seconds)
    wall = time.monotonic() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    # a ping: 1 packet out; a TCP probe: SYN, ACK, FIN, ACK out (its handshake and close)
    sent = sum(r.rounds * sum(1 if p == "icmp" else 4 for p in r.probes)
               for r in watched.values())
    n = max(1, len(watched))
    return len(watched), cpu / wall / n, sent / wall / n


def remove(admin, conn, made, project):
    for fip in made.get("fips", []):
        conn.network.delete_ip(fip, ignore_missing=True)
    if "router" in made:
        for port in conn.network.ports(device_id=made["router"].id,
                                       device_owner="network:router_interface"):
            for ip in port.fixed_ips:
                conn.network.remove_interface_from_router(made["router"],
                                                          subnet_id=ip["subnet_id"])
        conn.network.delete_router(made["router"], ignore_missing=True)
    for vm in made.get("vms", []):
        conn.compute.delete_server(vm, ignore_missing=True)
    for vm in made.get("vms", []):
        conn.compute.wait_for_delete(vm, wait=120)
    for port in made.get("ports", []):
        conn.network.delete_port(port, ignore_missing=True)
    for network in made.get("nets", []):
        conn.network.delete_network(network, ignore_missing=True)
    if "group" in made:
        conn.network.delete_security_group(made["group"], ignore_missing=True)
    if "image" in made:
        conn.image.delete_image(made["image"], ignore_missing=True)
    user = admin.identity.find_user("cloudpulse-bench", domain_id="default")
    if user is not None:
        admin.identity.delete_user(user)
    admin.identity.delete_project(project, ignore_missing=True)


def bench_project(admin, box):
    """A project and user of the bench's own, with the quota its 4x needs (those a
    bench killed before its end left, removed first)."""
    for find, delete in ((admin.identity.find_user, admin.identity.delete_user),
                         (admin.identity.find_project, admin.identity.delete_project)):
        found = find("cloudpulse-bench", domain_id="default")
        if found is not None:
            delete(found)
    project = admin.identity.create_project(name="cloudpulse-bench", domain_id="default")
    user = admin.identity.create_user(name="cloudpulse-bench", password=box.password,
                                      default_project_id=project.id, domain_id="default")
    member = admin.identity.find_role("member")
    admin.identity.assign_project_role_to_user(project, user, member)
    admin.set_compute_quotas(project.id, instances=100, cores=200, ram=204800)
    admin.set_network_quotas(project.id, network=100, subnet=100, port=500)
    auth = cloud.password_auth(admin.session.auth.auth_url, user.name, box.password,
                               project.name, "Default", "Default")
    return project, cloud.connect_with_auth(auth, timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scales", default="1,2,4")
    args = parser.parse_args()
    box = cloudbox.CloudBox()
    box.up()
    admin = cloud.connect(box.admin_cloud, box.clouds_yaml, timeout=30)
    counter = CallCounter(admin)
    project, conn = bench_project(admin, box)
    scope = upgrade.Scope(project.id)
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=box.clouds_yaml)
    osc = [os.path.join(BIN, "openstack"), "--os-cloud", box.admin_cloud]

    def cli_lists():
        for cmd in CLI_LISTS:
            scoped = [] if cmd[0] == "image" else ["--project", project.id]
            subprocess.run(osc + cmd + scoped + ["-f", "json"], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    made, rows, watched_cost = {}, [], None
    try:
        grow_to(conn, 1, made)
        open_to_the_checker(conn, made, UNIT["vm"])
        watched_cost = watch_cost(admin, scope, 20)
        for scale in [int(s) for s in args.scales.split(",")]:
            t0 = time.monotonic()
            grow_to(conn, scale, made)
            built = time.monotonic() - t0
            snapshot = upgrade.take(admin, scope, timeout=30)   # warm
            recorded = sum(map(len, snapshot["resources"].values()))
            take_calls = counter.of(lambda: upgrade.take(admin, scope, timeout=30))
            verify_calls = counter.of(lambda: upgrade.verify(admin, snapshot, "b", timeout=30))
            a = median(timed(lambda: upgrade.take(admin, scope, timeout=30), args.repeat))
            b = median(timed(lambda: upgrade.verify(admin, snapshot, "b", timeout=30),
                             args.repeat))
            c = median(timed(cli_lists, max(1, args.repeat // 2)))
            rows.append((scale, recorded, built, a, take_calls, b, verify_calls, c))
    finally:
        report(rows, watched_cost)
        remove(admin, conn, made, project)


def report(rows, watched_cost):
    print("%-6s %-10s %-9s %-12s %-11s %-12s %-11s %-12s %s" % (
        "scale", "resources", "built s", "snapshot s", "calls", "verify s", "calls",
        "osc lists s", "osc/snapshot"))
    for scale, recorded, built, a, ta, b, tb, c in rows:
        print("%-6s %-10d %-9.1f %-12.3f %-11d %-12.3f %-11d %-12.3f %.1fx" % (
            "%dx" % scale, recorded, built, a, ta, b, tb, c, c / a))
    if watched_cost:
        watched, cpu, pps = watched_cost
        print("watch: %d workloads for 20 s: %.4f CPU s per workload-second (%.2f%% of a "
              "core), %.1f packets/s sent per workload" % (watched, cpu, 100 * cpu, pps))


if __name__ == "__main__":
    main()
