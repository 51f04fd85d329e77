"""Drive the "cloud in a box" (tools/cloudbox/cloudbox.sh) from integration tests.

Plain Python (subprocess only, no pytest import), so conftest.py fixtures can wrap it:

    box = CloudBox()
    box.up()                      # no-op in ~2 s when the box is already up and healthy
    env = box.openstack_env()     # OS_CLIENT_CONFIG_FILE=<state dir>/clouds.yaml
    with box.hung("neutron"):     # SIGSTOP the whole process group, SIGCONT on exit
        ...
    box.stop("nova-compute@compute-1"); box.wait_for(lambda: ..., timeout=20); box.start(...)
    if not box.keep: box.down()   # CLOUDBOX_KEEP=1 leaves it running

The box has a controller (host `cloudbox`: the APIs, neutron, cinder-volume), a network
node (`network`: the router gateways on br-ex) and compute hosts compute-1..N
(CLOUDBOX_COMPUTE_HOSTS, default 3), each an OVN chassis in a namespace of its own.
Service names for the fault hooks: the controller's (CloudBox.SERVICES) and the infrastructure
(CloudBox.INFRA) as they are, a host's as SERVICE@HOST (box.host_service("nova-compute"),
"ovn-controller@network", "ovs-vswitchd@compute-2").
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCRIPT = REPO_ROOT / "tools" / "cloudbox" / "cloudbox.sh"


class CloudBoxError(RuntimeError):
    """cloudbox.sh failed; the message carries its output."""


class CloudBox:
    admin_cloud = "cloudbox-admin"
    demo_cloud = "cloudbox-demo"
    SERVICES = ("keystone", "glance", "neutron", "placement", "nova-api", "nova-conductor",
                "nova-scheduler", "cinder-api", "cinder-scheduler", "cinder-volume", "horizon")
    HOST_SERVICES = ("nova-compute", "ovn-controller", "ovs-vswitchd", "ovsdb-server")
    INFRA = ("mariadb", "rabbitmq", "ovn-nb", "ovn-sb", "ovn-northd")
    controller_host = "cloudbox"
    gateway_host = "network"

    def __init__(self, script: Optional[os.PathLike | str] = None,
                 state_dir: Optional[os.PathLike | str] = None,
                 venv: Optional[os.PathLike | str] = None) -> None:
        self.script = Path(script or os.environ.get("CLOUDBOX_SCRIPT") or DEFAULT_SCRIPT)
        self.state_dir = Path(state_dir or os.environ.get("CLOUDBOX_DIR") or "/tmp/cpulse-box")
        self.venv = Path(venv or os.environ.get("CLOUDBOX_VENV")
                         or "/root/.cache/cloudpulse/cloud-venv")
        self.env = dict(os.environ, CLOUDBOX_DIR=str(self.state_dir), CLOUDBOX_VENV=str(self.venv))

    # ------------------------------------------------------------ plumbing
    def run(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        """Run `cloudbox.sh ARGS...`; stdout+stderr captured (services never hold the pipe)."""
        proc = subprocess.run([str(self.script), *args], env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise CloudBoxError("cloudbox.sh %s failed (rc=%s):\n%s"
                                % (" ".join(args), proc.returncode, proc.stdout[-4000:]))
        return proc

    # ----------------------------------------------------------- lifecycle
    def install(self, timeout: float = 1800) -> str:
        return self.run("install", timeout=timeout).stdout

    def up(self, timeout: float = 900) -> str:
        """Start the box; returns at once (about 2 s) when it is already up and healthy."""
        return self.run("up", timeout=timeout).stdout

    def down(self, timeout: float = 300) -> str:
        return self.run("down", timeout=timeout).stdout

    def status(self) -> str:
        return self.run("status", timeout=120, check=False).stdout

    def is_healthy(self) -> bool:
        return self.run("status", timeout=120, check=False).returncode == 0

    @property
    def keep(self) -> bool:
        """CLOUDBOX_KEEP=1: tests leave the box running."""
        return os.environ.get("CLOUDBOX_KEEP", "") == "1"

    # --------------------------------------------------------- fault hooks
    def stop(self, service: str) -> str:
        """SIGTERM the service's process group, SIGKILL after 10 s."""
        return self.run("stop", service, timeout=120).stdout

    def start(self, service: str, wait: bool = True, timeout: float = 180) -> str:
        """Start it again with the same command; by default wait until it answers."""
        env_before = self.env
        if not wait:
            self.env = dict(self.env, CLOUDBOX_NO_WAIT="1")
        try:
            return self.run("start", service, timeout=timeout).stdout
        finally:
            self.env = env_before

    def hang(self, service: str) -> str:
        """SIGSTOP the whole process group (the service stops answering, sockets stay open)."""
        return self.run("hang", service, timeout=60).stdout

    def resume(self, service: str) -> str:
        """SIGCONT the process group."""
        return self.run("resume", service, timeout=60).stdout

    @contextlib.contextmanager
    def cut(self, host: str) -> Iterator[None]:
        """A host's uplink to the tunnel network down for the duration."""
        self.run("cut", host, timeout=60)
        try:
            yield
        finally:
            self.run("heal", host, timeout=60)

    @contextlib.contextmanager
    def external_down(self) -> Iterator[None]:
        """The host's link to the external network down: floating IPs unreachable."""
        self.run("external", "down", timeout=60)
        try:
            yield
        finally:
            self.run("external", "up", timeout=60)

    @contextlib.contextmanager
    def underlay_mtu(self, host: str, mtu: int) -> Iterator[None]:
        """A host's underlay MTU lowered for the duration (1500 again after)."""
        self.run("underlay-mtu", host, str(mtu), timeout=60)
        try:
            yield
        finally:
            self.run("underlay-mtu", host, "1500", timeout=60)

    @contextlib.contextmanager
    def hung(self, service: str) -> Iterator[None]:
        self.hang(service)
        try:
            yield
        finally:
            self.resume(service)

    @contextlib.contextmanager
    def stopped(self, service: str) -> Iterator[None]:
        self.stop(service)
        try:
            yield
        finally:
            self.start(service)

    # ---------------------------------------------------------- the cloud
    @property
    def compute_hosts(self) -> list:
        """The compute hosts (nova's host names, also their OVN chassis names)."""
        return (self.state_dir / "compute_hosts").read_text().split()

    @property
    def compute_host(self) -> str:
        """The first compute host."""
        return self.compute_hosts[0]

    def host_service(self, service: str, host: Optional[str] = None) -> str:
        """SERVICE@HOST of a per-host service; the first compute host by default."""
        return "%s@%s" % (service, host or self.compute_host)

    def chassis_ns(self, host: str) -> str:
        """The network namespace of a host's OVN chassis."""
        return "cbh-" + host

    @property
    def clouds_yaml(self) -> str:
        return str(self.state_dir / "clouds.yaml")

    @property
    def horizon_url(self) -> str:
        return (self.state_dir / "horizon_url").read_text().strip()

    @property
    def password(self) -> str:
        """The box's one generated password (admin, demo, service users)."""
        return (self.state_dir / "password").read_text().strip()

    @property
    def openstack_cli(self) -> str:
        return str(self.venv / "bin" / "openstack")

    def openstack_env(self, cloud: Optional[str] = None) -> dict:
        env = dict(os.environ, OS_CLIENT_CONFIG_FILE=self.clouds_yaml)
        if cloud:
            env["OS_CLOUD"] = cloud
        return env

    def openstack(self, *args: str, cloud: Optional[str] = None, timeout: float = 60,
                  check: bool = True) -> subprocess.CompletedProcess:
        """Run the venv's `openstack` CLI against the box (admin cloud by default)."""
        cmd = [self.openstack_cli, "--os-cloud", cloud or self.admin_cloud, *args]
        proc = subprocess.run(cmd, env=self.openstack_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise CloudBoxError("%s failed (rc=%s): %s" % (" ".join(args), proc.returncode,
                                                           proc.stderr[-2000:]))
        return proc

    def horizon_login(self, user: str = "admin") -> bool:
        """Real Horizon login (GET form, POST with csrfmiddlewaretoken, expect 302 away)."""
        return self.run("horizon-login", user, timeout=120, check=False).returncode == 0

    # --------------------------------------------------------------- utils
    @staticmethod
    def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 1.0,
                 message: str = "") -> Any:
        """Call predicate until it returns something truthy (returned); exceptions count
        as falsy.  Raises TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last_exc: Optional[BaseException] = None
        while True:
            try:
                value = predicate()
                if value:
                    return value
            except Exception as exc:  # noqa: BLE001 - predicate may fail while a service is down
                last_exc = exc
            if time.monotonic() >= deadline:
                raise TimeoutError("%s not true after %.0f s%s" % (
                    message or getattr(predicate, "__name__", "predicate"), timeout,
                    " (last error: %r)" % last_exc if last_exc else ""))
            time.sleep(interval)
