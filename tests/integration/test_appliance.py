"""The appliance's user-data (tools/appliance/make-user-data) run for real: a fresh Debian
12 root made with debootstrap (tools/appliance/debian-root.sh, a stand-in for the cloud
image) boots under systemd-nspawn, on this machine's network, with the user-data as its
NoCloud seed; cloud-init installs the packages, CloudPulse (a wheel of this tree, served
on loopback) and runs cloudpulse-install; the appliance's own `cpulse` then checks the
cloud in a box through the appliance's nginx and uwsgi, started by its systemd."""

import configparser
import hashlib
import json
import os
import pathlib
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

import requests
import yaml

from tests.integration import server as server_mod
from tests.integration.cloudbox import REPO_ROOT

CACHE = "/root/.cache/cloudpulse"
# The appliance's caches, kept between runs: apt's downloaded packages and pip's (its
# own: the host's pip cache holds wheels built against another Python, uWSGI's linked
# to it).
APT_CACHE = os.path.join(CACHE, "appliance-apt")
PIP_CACHE = os.path.join(CACHE, "appliance-pip")
MAKE_USER_DATA = REPO_ROOT / "tools" / "appliance" / "make-user-data"
DEBIAN_ROOT = REPO_ROOT / "tools" / "appliance" / "debian-root.sh"
# What the test, not the user-data, sets in the image: the seed is the only datasource,
# and cloud-init leaves the network alone (the container shares this machine's).
TEST_CLOUD_CFG = {"datasource_list": ["NoCloud"], "network": {"config": "disabled"}}
# ...and sshd stays off: it would listen on this machine's port 22.
MASKED_UNITS = ("ssh.service", "ssh.socket")


def _host_pip_cert():
    """The CA bundle this machine's pip verifies PyPI with, when it sets one (a proxy's
    CA): the container's pip is given the same, read-only."""
    conf = configparser.ConfigParser()
    conf.read("/etc/pip.conf")
    return os.environ.get("PIP_CERT") or conf.get("global", "cert", fallback=None)


INSTANCE_ID = "iid-cloudpulse-appliance-test"
CLOUD_INIT_TIMEOUT = 1200   # cold: every package and wheel downloaded, uWSGI compiled


class Timings(dict):
    def step(self, name, started):
        self[name] = round(time.monotonic() - started, 1)
        return time.monotonic()


def pristine_root(timings):
    """The tarball of a fresh Debian 12 root, made once (minutes) and kept in CACHE, named
    after the script that made it: a changed script makes a new one."""
    started = time.monotonic()
    tarball = os.path.join(CACHE, "debian12-root-%s.tar" % hashlib.sha256(
        DEBIAN_ROOT.read_bytes()).hexdigest()[:12])
    if not os.path.exists(tarball):
        made = subprocess.run(["bash", str(DEBIAN_ROOT), tarball], capture_output=True,
                              text=True, timeout=1800)
        assert made.returncode == 0, made.stderr[-5000:]
        timings.step("debootstrap", started)
    return tarball


def wheel(directory):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(directory), str(REPO_ROOT)], check=True,
                   capture_output=True, timeout=300)
    (built,) = directory.glob("cloudpulse-*.whl")
    return built


def seed(root, user_data):
    """The NoCloud seed cloud-init finds at boot, as a cloud's metadata would give it, and
    the test's own settings (TEST_CLOUD_CFG, MASKED_UNITS, the host's pip CA)."""
    nocloud = root / "var/lib/cloud/seed/nocloud"
    nocloud.mkdir(parents=True)
    (nocloud / "user-data").write_text(user_data)
    (nocloud / "meta-data").write_text(
        "instance-id: %s\nlocal-hostname: cloudpulse\n" % INSTANCE_ID)
    (root / "etc/cloud/cloud.cfg.d/99-cloudpulse-test.cfg").write_text(
        yaml.safe_dump(TEST_CLOUD_CFG))
    for unit in MASKED_UNITS:
        (root / "etc/systemd/system" / unit).symlink_to("/dev/null")
    if _host_pip_cert():
        (root / "etc/pip.conf").write_text("[global]\ncert = /etc/cloudpulse-test-ca.pem\n")
        (root / "etc/cloudpulse-test-ca.pem").touch()   # nspawn binds onto a file

def container_pid(nspawn):
    """The host PID of the container's init (systemd), nspawn's child."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-P", str(nspawn.proc.pid)], capture_output=True,
                               text=True).stdout.split()
        if found:
            return int(found[0])
        assert nspawn.proc.poll() is None, nspawn.text()
        time.sleep(0.2)
    raise AssertionError("no container init under nspawn:\n" + nspawn.text())


def in_container(pid, argv, env=None, timeout=300):
    """argv run inside the container (its mounts, PIDs and root), as a shell there would."""
    return subprocess.run(["nsenter", "--target", str(pid), "--mount", "--uts", "--ipc",
                           "--pid", "--root", "--wd", "--", "/usr/bin/env", "-i",
                           "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           *["%s=%s" % kv for kv in (env or {}).items()], *argv],
                          capture_output=True, text=True, timeout=timeout)


def wait_for_cloud_init(root, nspawn, timeout):
    """cloud-init's result once its final stage is over.  Read from the host, so by the
    files' real paths in the root (/var/lib/cloud/instance and /run/cloud-init/result.json
    are links meant for the container's view)."""
    cloud = root / "var/lib/cloud"
    finished = cloud / "instances" / INSTANCE_ID / "boot-finished"
    deadline = time.monotonic() + timeout
    while not finished.exists():
        assert nspawn.proc.poll() is None, nspawn.text()[-5000:]
        assert time.monotonic() < deadline, "cloud-init unfinished after %ds:\n%s" % (
            timeout, _tail(root / "var/log/cloud-init-output.log"))
        time.sleep(2)
    return json.loads((cloud / "data/result.json").read_text())


def _tail(path, chars=6000):
    try:
        return path.read_text()[-chars:]
    except OSError as exc:
        return str(exc)


def group_name(root, gid):
    for line in (root / "etc/group").read_text().splitlines():
        name, _, number, _ = line.split(":")
        if int(number) == gid:
            return name
    return None


def wait_for_api(url, token, init, timeout=90):
    """Until the API answers through nginx (uwsgi loads the app after systemd started it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url + "/cpulse/types", headers={"X-Auth-Token": token},
                            timeout=5).ok:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, in_container(
            init, ["journalctl", "-u", "cloudpulse-api", "-o", "cat"]).stdout[-5000:]
        time.sleep(1)


def unmount_under(root):
    """Whatever is still mounted below root (none when nspawn ran: its mounts are its
    namespace's), deepest first, so that removing root never reaches the host."""
    mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True,
                            text=True).stdout.split()
    for target in sorted((m for m in mounts if m.startswith(str(root) + "/")),
                         key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False)


def test_the_user_data_turns_a_debian_root_into_a_cloudpulse_appliance(tmp_path, box):
    timings, started = Timings(), time.monotonic()
    tarball = pristine_root(timings)
    # The root in memory: written on disk, its 350 MB and the pip install, then deleted,
    # slowed the box's MariaDB (and so neutron) for the tests after this one.
    root = pathlib.Path(tempfile.mkdtemp(prefix="cpulse-appliance-", dir="/dev/shm"))
    root.chmod(0o755)   # the container's "/": its service users must traverse it
    served, logs = tmp_path / "served", tmp_path / "logs"
    for directory in (served, logs, APT_CACHE, PIP_CACHE):
        os.makedirs(directory, exist_ok=True)
    started = timings.step("root tarball ready", started)
    token = secrets.token_hex(20)
    (tmp_path / "tokens").write_text("%s cloudpulse-test admin\n" % token)
    password = yaml.safe_load(open(box.clouds_yaml))["clouds"][box.admin_cloud]["auth"][
        "password"]
    http_port, nginx_port, uwsgi_port = (server_mod.free_port() for _ in range(3))
    url = "http://127.0.0.1:%d" % nginx_port
    processes = []
    try:
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-xf", tarball],
                       check=True, timeout=300)
        started = timings.step("root extracted", started)
        built = wheel(served)
        started = timings.step("wheel built", started)
        made = subprocess.run(
            [sys.executable, str(MAKE_USER_DATA),
             "--source", "http://127.0.0.1:%d/%s" % (http_port, built.name),
             "--clouds-yaml", str(box.clouds_yaml), "--cloud", box.admin_cloud,
             "--tokens", str(tmp_path / "tokens"), "--",
             "--listen", "127.0.0.1:%d" % nginx_port,
             "--uwsgi-socket", "127.0.0.1:%d" % uwsgi_port,
             "--set", "cloud.horizon_url=%s" % box.horizon_url,
             # a shared box on 2 cores, while the container settles: slow, not down
             "--set", "cloud.timeout=10",
             "--set", "periodic.endpoint_interval=-1"],
            capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        seed(root, made.stdout)
        processes.append(server_mod.Process(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
             str(served), str(http_port)], str(logs / "http.log")))
        # No --private-network: the container is on this machine's loopback, as the box.
        # No machined nor systemd here (a container): nspawn registers nothing and stays
        # in this process's cgroup; it is stopped by its PID, not machinectl.
        nspawn = server_mod.Process(
            ["systemd-nspawn", "--boot", "--directory", str(root), "--register=no",
             "--keep-unit", "--machine", "cloudpulse-%d" % nginx_port, "--console=read-only",
             "--resolv-conf=copy-host", "--bind", "%s:/var/cache/apt/archives" % APT_CACHE,
             "--bind", "%s:/root/.cache/pip" % PIP_CACHE,
             *(["--bind-ro", "%s:/etc/cloudpulse-test-ca.pem" % _host_pip_cert()]
               if _host_pip_cert() else [])],
            str(logs / "nspawn.log"))
        processes.append(nspawn)
        init = container_pid(nspawn)
        result = wait_for_cloud_init(root, nspawn, CLOUD_INIT_TIMEOUT)
        started = timings.step("booted, cloud-init done", started)
        output = _tail(root / "var/log/cloud-init-output.log", 100000)
        assert result["v1"]["errors"] == [], output[-6000:]

        # the secrets reached their files only: not cloud-init's logs, nor the world
        for log in ("var/log/cloud-init.log", "var/log/cloud-init-output.log"):
            text = (root / log).read_text()
            assert password not in text and token not in text, log
        for path, mode in (("etc/cloudpulse/clouds.yaml", 0o640),
                           ("etc/cloudpulse/tokens", 0o640),
                           ("etc/cloudpulse/cloudpulse.conf", 0o640)):
            stat = (root / path).stat()
            assert (stat.st_mode & 0o777, group_name(root, stat.st_gid)) == (
                mode, "cloudpulse"), path
        active = in_container(init, ["systemctl", "is-active", "nginx",
                                     "cloudpulse-api.service", "cloudpulse-runner.service"])
        assert active.stdout.split() == ["active"] * 3, active.stdout + active.stderr
        wait_for_api(url, token, init)

        checked = in_container(
            init, ["/opt/cloudpulse/bin/cpulse", "--url", url, "check", "endpoint", "--wait",
                   "--timeout", "120", "-f", "json"],
            env={"OS_TOKEN": token}, timeout=180)
        started = timings.step("cpulse check endpoint", started)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        run = json.loads(checked.stdout)
        assert run["state"] == "finished" and run["check_types"] == ["endpoint"]
        assert run["results"] and run["healthy"] is True, run["tests_failed"]
        runner_log = in_container(init, ["journalctl", "-u", "cloudpulse-runner", "-o", "cat"])
        assert run["handle"] in runner_log.stdout   # its runner executed the run
    finally:
        for process in reversed(processes):
            # nspawn: SIGTERM is an orderly shutdown of the container (its systemd)
            process.stop(timeout=90)
        unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)
        timings.step("stopped and removed", started)
        print("appliance test timings (s): %s" % timings)
