"""The cloud in a box's host as an operator reaches a controller node: a real sshd on
127.0.0.1, in a mount namespace of its own where the box's configuration is at
/etc/<service> (an overlay on /etc), the services' `*-status` tools are on the PATH
(/usr/local/bin) and /run is its own, as on a deployed controller.  Nothing outside the namespace changes.
Stopped by PID."""

import os
import subprocess
import time

import yaml

from tests.integration import server as server_mod

# What the box configures, in the directories a controller's tools read by default.
CONFIGURED = ("nova", "cinder", "neutron", "placement", "keystone", "glance")
SSHD = "/usr/sbin/sshd"


class Controller:

    def __init__(self, state, box):
        self.state = state
        state.mkdir()
        self.port = server_mod.free_port()
        self.key = state / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)],
                       check=True)
        host_key = state / "host_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                       check=True)
        (state / "authorized_keys").write_text((state / "id_ed25519.pub").read_text())
        os.chmod(state / "authorized_keys", 0o600)
        self.known_hosts = state / "known_hosts"
        self.known_hosts.write_text("[127.0.0.1]:%d %s" % (
            self.port, (state / "host_ed25519.pub").read_text()))
        config = state / "sshd_config"
        config.write_text("\n".join([
            "Port %d" % self.port, "ListenAddress 127.0.0.1", "HostKey %s" % host_key,
            "AuthorizedKeysFile %s" % (state / "authorized_keys"),
            "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
            "PidFile %s" % (state / "sshd.pid"), ""]))
        etc_upper, etc_work, tools = state / "etc", state / "etc-work", state / "bin"
        for directory in (etc_upper, etc_work, tools):
            directory.mkdir()
        for service in CONFIGURED:
            subprocess.run(["cp", "-r", str(box.state_dir / "etc" / service), str(etc_upper)],
                           check=True)
            # as a package installs it: the tool's #! line names its interpreter
            (tools / ("%s-status" % service)).symlink_to(box.venv / "bin" / ("%s-status"
                                                                         % service))
        script = " && ".join([
            "mount -t overlay overlay -o lowerdir=/etc,upperdir=%s,workdir=%s /etc"
            % (etc_upper, etc_work),
            "mount --bind %s /usr/local/bin" % tools,
            # drop this namespace's copies of the netns mounts: they would keep the box's
            # and the bed's namespaces (and their veths) alive after those are deleted
            "{ umount -l /run/netns 2>/dev/null || true; }",
            # sshd's privilege separation directory, in this namespace's own /run
            "mount -t tmpfs tmpfs /run", "mkdir -m 755 /run/sshd",
            "exec %s -D -e -f %s" % (SSHD, config)])
        self.process = server_mod.Process(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            str(state / "sshd.log"))
        deadline = time.monotonic() + 20
        while subprocess.run(["ssh-keyscan", "-p", str(self.port), "127.0.0.1"],
                             capture_output=True).returncode != 0 or not \
                (state / "sshd.pid").exists():
            assert self.process.proc.poll() is None, self.process.text()
            assert time.monotonic() < deadline, self.process.text()
            time.sleep(0.2)

    def service_map(self):
        """A service map naming this node for the services whose tools it has."""
        path = self.state / "service-map.yaml"
        path.write_text(yaml.safe_dump({
            "defaults": {"ssh_user": "root", "ssh_key": str(self.key),
                         "ssh_port": self.port},
            "roles": {"api": list(CONFIGURED)},
            "hosts": {"ctl1": {"address": "127.0.0.1", "roles": ["api"]}}}))
        return path

    def stop(self):
        self.process.stop()
