"""Data-plane benchmark on the cloud in a box: the functional check side by side with
Rally's own VM scenario, and the comprehensive check as the cloud grows.  Medians of N runs
in one process on one machine (it is noisy: compare ratios).

    python bench/functional.py [--repeat 5] [--hosts 1,2,4] [--skip-rally] [--skip-tempest]

(a) the functional check through the API of a warm server (POST, poll until finished):
    network + router, image, key pair + group, two VMs apart, a ping between them over SSH
    through a floating IP, a 1 GiB volume seen inside vm1, everything deleted and checked
(b) `rally task start` of rally-openstack's VMTasks.boot_runcommand_delete: one VM with a
    floating IP, SSH, a ping of its gateway, deleted (Rally's network context makes the
    network and router)
(b') `tempest run` of Tempest's scenario.test_network_basic_ops (tempest_basic_ops)
then, per run of (a): the API requests the box served (its access logs) and the resources
created (POSTs), the box's memory with six instances up, and with --hosts the
comprehensive check through Rally's engine on a box of 1, 2, 4... compute hosts (a cold
start of the box each).  Needs the box: tools/cloudbox/cloudbox.sh up.
"""

import argparse
import configparser
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import requests

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from bench import fixtures  # noqa: E402
from bench.timing import median, timed  # noqa: E402
from cloudpulse import cloud  # noqa: E402
from cloudpulse import conf as cp_conf  # noqa: E402
from cloudpulse import results  # noqa: E402
from cloudpulse_rally import tasks  # noqa: E402
from tests.integration import cloudbox  # noqa: E402

BIN = os.path.dirname(sys.executable)
IMAGE = b"cloudbox instance image\n" * 64
RALLY_CIDR = "198.18.44.0/24"   # not the bed's, nor the checks' own


def start_server(box, state, port, image):
    return fixtures.start_server(box, state, port, (
        "[functional]\nimage_file = %s\nimage_disk_format = raw\nflavor = cbx.tiny\n"
        "external_network = public\nssh_user = root\nboot_timeout = 60\nping_timeout = 30\n"
        % image))


def api_check(url, check_type):
    handle = requests.post(url + "/cpulse/check", json={"type": check_type},
                           timeout=10).json()["handle"]
    while True:
        doc = requests.get(url + "/cpulse/result", params={"handle": handle, "wait": 30},
                           timeout=40).json()
        if doc.get("state") not in ("queued", "running"):
            if doc.get("tests_failed"):
                raise RuntimeError("%s run failed: %s" % (check_type, doc["tests_failed"]))
            return doc


class AccessLogs:
    """Requests the box's APIs served, from their access logs (one line per request)."""

    def __init__(self, box):
        self.files = sorted(glob.glob(str(box.state_dir / "log" / "*-access.log")))

    def lines(self):
        out = {}
        for path in self.files:
            with open(path, errors="replace") as f:
                out[path] = f.readlines()
        return out

    @staticmethod
    def delta(before, after):
        new = [line for path in after for line in after[path][len(before.get(path, [])):]]
        return len(new), sum(1 for line in new if '"POST ' in line)


def box_rss_mib(box):
    """RSS of every process of the box: its daemons (their command lines name its
    directory) and everything in its hosts' and instances' namespaces."""
    pids = set()
    for line in subprocess.run(["ps", "-e", "-o", "pid=,args="], capture_output=True,
                               text=True).stdout.splitlines():
        pid, _, args = line.strip().partition(" ")
        if str(box.state_dir) in args or "cloud-venv" in args:
            pids.add(pid)
    for ns in subprocess.run(["ip", "netns", "list"], capture_output=True,
                             text=True).stdout.split():
        if ns.startswith(("cbx-", "cbh-")):
            pids.update(subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                       text=True).stdout.split())
    total = 0
    for pid in pids:
        try:
            with open("/proc/%s/status" % pid) as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total / 1024.0


def memory_with_instances(box, count=6):
    conn = cloud.connect(box.admin_cloud, box.clouds_yaml, timeout=30)
    before = box_rss_mib(box)
    net = conn.network.create_network(name="cbx-bench-mem")
    servers = []
    image = None
    try:
        conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="198.18.45.0/24")
        image = conn.image.create_image(name="cbx-bench-mem", data=IMAGE, disk_format="raw",
                                        container_format="bare", allow_duplicates=True)
        flavor = conn.compute.find_flavor("cbx.tiny")
        servers = [conn.compute.create_server(name="cbx-bench-mem-%d" % i, image_id=image.id,
                                              flavor_id=flavor.id,
                                              networks=[{"uuid": net.id}])
                   for i in range(count)]
        for server in servers:
            conn.compute.wait_for_server(server, wait=120, interval=1)
        time.sleep(3)
        return before, box_rss_mib(box)
    finally:
        for server in servers:
            conn.compute.delete_server(server, ignore_missing=True)
        for server in servers:
            conn.compute.wait_for_delete(server, wait=120)
        if image is not None:
            conn.image.delete_image(image, ignore_missing=True)
        conn.network.delete_network(net, ignore_missing=True)


def rally_vmtasks(box, state, repeat):
    rally, rally_dir = fixtures.rally_for(box, state)
    conn = cloud.connect(box.admin_cloud, box.clouds_yaml, timeout=30)
    image = conn.image.create_image(name="cbx-bench-rally", data=IMAGE, disk_format="raw",
                                    container_format="bare", allow_duplicates=True,
                                    visibility="public")
    gateway = RALLY_CIDR.rsplit(".", 1)[0] + ".1"
    task = {"VMTasks.boot_runcommand_delete": [{
        "args": {"flavor": {"name": "cbx.tiny"}, "image": {"name": image.name},
                 "username": "root", "floating_network": "public",
                 "command": {"script_inline": "ping -c 1 -W 2 %s" % gateway,
                             "interpreter": "/bin/sh"}},
        "runner": {"type": "constant", "times": 1, "concurrency": 1},
        # a project and user made for the run, as rally-openstack's own sample of this
        # scenario has it, and as CloudPulse's functional check runs for an operator
        "context": {"users": {"tenants": 1, "users_per_tenant": 1},
                    "network": {"start_cidr": RALLY_CIDR, "networks_per_tenant": 1,
                                "router": {"external": True}}},
        "sla": {"failure_rate": {"max": 0}}}]}
    task_file = os.path.join(rally_dir, "vmtasks.json")
    with open(task_file, "w") as f:
        json.dump(task, f)

    def one():
        res = subprocess.run(rally + ["task", "start", task_file], capture_output=True,
                             text=True)
        if res.returncode != 0 or "SLA failed" in res.stdout or "failed" in res.stdout.lower():
            sla = subprocess.run(rally + ["task", "sla-check"], capture_output=True, text=True)
            if sla.returncode != 0:
                raise RuntimeError("rally VMTasks failed:\n%s" % (res.stdout[-3000:]
                                                                   + res.stderr[-2000:]))
    try:
        return timed(one, repeat)
    finally:
        conn.image.delete_image(image, ignore_missing=True)


def tempest_basic_ops(box, state, repeat):
    """Tempest's own scenario.test_network_basic_ops, configured against the box: a
    project made per run (dynamic credentials), network, router with gateway, key pair,
    security group, one VM, a floating IP pinged and SSHed from the host, pings from the
    VM to the router and the external gateway, everything deleted."""
    conn = cloud.connect(box.admin_cloud, box.clouds_yaml, timeout=30)
    image = conn.image.create_image(name="cbx-bench-tempest", data=IMAGE, disk_format="raw",
                                    container_format="bare", allow_duplicates=True,
                                    visibility="public")
    ws = os.path.join(state, "tempest-ws")
    image_file = os.path.join(state, "image.raw")
    subprocess.run([os.path.join(BIN, "cloudpulse-tempest-init"), "--cloud", box.admin_cloud,
                    "--clouds-file", box.clouds_yaml, "--image-file", image_file,
                    "--flavor", "cbx.tiny", "--external-network", "public",
                    "--ssh-user", "root", "--disk-format", "raw", "--boot-timeout", "60",
                    "--ping-timeout", "30", ws], check=True, stdout=subprocess.DEVNULL)
    conf_path = os.path.join(ws, "etc", "tempest.conf")
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(conf_path)
    auth = conn.config.config["auth"]
    conf["auth"].update({
        "use_dynamic_credentials": "true", "admin_username": auth["username"],
        "admin_password": auth["password"], "admin_project_name": auth["project_name"],
        "admin_domain_name": auth.get("user_domain_name", "Default")})
    del conf["auth"]["test_accounts_file"]
    conf["compute"].update({
        "image_ref": image.id,
        "flavor_ref": conn.compute.find_flavor("cbx.tiny", ignore_missing=False).id})
    conf["network"].update({
        "public_network_id": conn.network.find_network("public", ignore_missing=False).id,
        "project_networks_reachable": "false"})
    conf["network-feature-enabled"] = {"floating_ips": "true"}
    conf["validation"].update({"run_validation": "true", "connect_method": "floating",
                               "auth_method": "keypair", "ssh_timeout": "60",
                               "connect_timeout": "10"})
    with open(conf_path, "w") as f:
        conf.write(f)
    test = "tempest.scenario.test_network_basic_ops.TestNetworkBasicOps.test_network_basic_ops"

    def one():
        res = subprocess.run([os.path.join(BIN, "tempest"), "run", "--serial", "--regex",
                              test], cwd=ws, capture_output=True, text=True)
        if res.returncode != 0 or " - Passed: 1" not in res.stdout:
            raise RuntimeError("tempest %s failed:\n%s" % (test, res.stdout[-3000:]))
    try:
        return timed(one, repeat)
    finally:
        conn.image.delete_image(image, ignore_missing=True)


def comprehensive_on(hosts, repeat, state):
    """Cold start a box of `hosts` compute hosts; medians of the comprehensive check
    through Rally's engine (in-process, warm)."""
    env = dict(os.environ, CLOUDBOX_COMPUTE_HOSTS=str(hosts))
    subprocess.run([os.path.join(TOP, "tools", "cloudbox", "cloudbox.sh"), "up"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    box = cloudbox.CloudBox()
    sub = os.path.join(state, "comprehensive-%d" % hosts)
    os.makedirs(sub)
    conf_file = os.path.join(sub, "cloudpulse.conf")
    with open(conf_file, "w") as f:
        f.write("[DEFAULT]\nstate_path = %s\n" % sub)
    store = tasks.RallyTasks(cp_conf.load(["--config-file", conf_file]))
    region = cloud.connect(box.admin_cloud, box.clouds_yaml).config
    store.ensure_env(tasks.env_spec(region, is_admin=True))
    image = os.path.join(sub, "image.raw")
    with open(image, "wb") as f:
        f.write(IMAGE)
    args = {"image_file": image, "flavor": "cbx.tiny", "external_network": "public",
            "ssh_user": "root", "image_disk_format": "raw", "boot_timeout": 60,
            "ping_timeout": 30, "probe_timeout": 10, "timeout": 10}

    def one():
        handle = store.create_run([results.CheckType.COMPREHENSIVE])
        store.start_engine(handle, [(results.CheckType.COMPREHENSIVE, args)])
        run = store.get_run(handle)
        if not run.healthy:
            raise RuntimeError("comprehensive on %d hosts: %s" % (
                hosts, run.to_api()["tests_failed"]))
        return run
    return timed(one, repeat)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hosts", default="", help="e.g. 1,2,4: comprehensive per box size")
    parser.add_argument("--skip-rally", action="store_true")
    parser.add_argument("--skip-tempest", action="store_true")
    parser.add_argument("--only-tempest", action="store_true",
                        help="just (b'), to try the Tempest configuration")
    args = parser.parse_args()
    box = cloudbox.CloudBox()
    box.up()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cpulse-bench-") as state:
        image = os.path.join(state, "image.raw")
        with open(image, "wb") as f:
            f.write(IMAGE)
        if args.only_tempest:
            print("(b') tempest test_network_basic_ops: median %.2f s" % median(
                tempest_basic_ops(box, state, args.repeat)))
            return
        proc, url = start_server(box, state, 18431, image)
        try:
            logs = AccessLogs(box)
            counts = []

            def functional():
                before = logs.lines()
                api_check(url, "functional")
                counts.append(AccessLogs.delta(before, logs.lines()))
            a = timed(functional, args.repeat)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        rows.append(("(a) functional check via the API (2 VMs, ping, volume)", a))
        if not args.skip_rally:
            b = rally_vmtasks(box, state, args.repeat)
            rows.append(("(b) rally VMTasks.boot_runcommand_delete (1 VM, ping)", b))
        if not args.skip_tempest:
            t = tempest_basic_ops(box, state, args.repeat)
            rows.append(("(b') tempest test_network_basic_ops (1 VM, pings, SSH)", t))
        mem_before, mem_after = memory_with_instances(box)
        comp = {}
        for hosts in [int(h) for h in args.hosts.split(",") if h]:
            comp[hosts] = comprehensive_on(hosts, args.repeat, state)
        if comp:   # back to the default box
            subprocess.run([os.path.join(TOP, "tools", "cloudbox", "cloudbox.sh"), "up"],
                           env=dict(os.environ, CLOUDBOX_COMPUTE_HOSTS="3"), check=True,
                           stdout=subprocess.DEVNULL)

    print("\n%-60s %10s %6s" % ("path", "median s", "runs"))
    for name, samples in rows:
        print("%-60s %10.2f %6d" % (name, median(samples), len(samples)))
    for hosts, samples in comp.items():
        print("%-60s %10.2f %6d" % ("(c) comprehensive via Rally's engine, %d compute host%s"
                                    % (hosts, "s" if hosts > 1 else ""), median(samples),
                                    len(samples)))
    for name, samples in rows[1:]:
        print("(a)/%s = %.2f (goal <= 0.5 with more verified)" % (
            name.split()[0], median(rows[0][1]) / median(samples)))
    if len(comp) > 1:
        low, high = min(comp), max(comp)
        print("(c) %d hosts / %d host = %.2f (goal <= 2)" % (
            high, low, median(comp[high]) / median(comp[low])))
    print("per functional run: %s API requests served by the box, %s of them POSTs "
          "(creations and actions)" % (
              "/".join(str(c[0]) for c in counts), "/".join(str(c[1]) for c in counts)))
    print("box memory: %.0f MiB idle, %.0f MiB with 6 instances up" % (mem_before, mem_after))


if __name__ == "__main__":
    main()
