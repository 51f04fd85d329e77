"""A test-only nova virt driver for the cloud in a box: instances that carry packets.

Built on nova's fake driver (its bookkeeping and resource claims), an instance here is a
network namespace plugged into OVN the way a libvirt guest's tap is: a veth pair whose
outer end joins br-int as an OVS port with the neutron port's iface-id, MAC and MTU.
Each compute host of the box is an OVN chassis in a namespace of its own (cbh-<host>, its
own ovsdb-server, ovs-vswitchd and ovn-controller): the outer end goes there.
Inside, a small "guest" (cbvirt_guest.sh) takes its address from OVN's DHCP, runs sshd with
the instance's key pair in authorized_keys and an http server on port 80, runs the
instance's user-data as cloud-init would, and writes all that to the console log that
`openstack console log show` returns.  Stop, start, reboot and delete act on the
namespace.  A boot waits for neutron's network-vif-plugged events, as on a real cloud.
A volume attached to an instance is a loop device over a sparse file of the volume's size,
whose node appears at the device path nova reports (/dev/vdb...) in the guest's own /dev.

Never installed with CloudPulse: nova-compute of the box loads it from tools/cloudbox
(compute_driver = cbvirt.NamespaceDriver).  Every path and name it uses is under
$CLOUDBOX_DIR, and its namespaces are named cbx-<instance uuid> (cloudbox.sh down removes
what a killed nova-compute left behind).
"""

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import time

from oslo_log import log as logging

import nova.conf
from nova.compute import power_state
from nova import exception
from nova.virt import fake
from nova.volume import cinder

LOG = logging.getLogger(__name__)
CONF = nova.conf.CONF

BOX = os.environ.get("CLOUDBOX_DIR", "/tmp/cpulse-box")
HERE = os.path.dirname(os.path.abspath(__file__))
GUEST = os.path.join(HERE, "cbvirt_guest.sh")
DHCP_SCRIPT = os.path.join(HERE, "cbvirt_udhcpc.sh")
NS_PREFIX = "cbx-"
GUEST_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}


def _run(*cmd, check=True, **kwargs):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          **kwargs)
    if check and proc.returncode != 0:
        raise RuntimeError("%s failed (%s): %s" % (" ".join(cmd), proc.returncode,
                                                   proc.stderr.strip()[-500:]))
    return proc


def _host_ns():
    """The namespace of this compute host's chassis (nova-compute's own `host`)."""
    return "cbh-" + CONF.host


def _vsctl(*args, check=True):
    return _run("ovs-vsctl", "--db=unix:%s/hosts/%s/run/db.sock" % (BOX, CONF.host),
                "--timeout=10", *args, check=check)


def _host_ip(*args, check=True):
    return _run("ip", "-n", _host_ns(), *args, check=check)


class Guest:
    """One instance's namespace and files (instances_path/<uuid>)."""

    def __init__(self, uuid):
        self.uuid = uuid
        self.ns = NS_PREFIX + uuid
        self.dir = os.path.join(CONF.instances_path, uuid)
        self.console = os.path.join(self.dir, "console.log")

    # -- the namespace and its ports -------------------------------------------------
    def exists(self):
        return os.path.exists("/run/netns/%s" % self.ns)

    def pids(self):
        if not self.exists():
            return []
        out = _run("ip", "netns", "pids", self.ns, check=False).stdout
        return [int(p) for p in out.split()]

    def create(self, instance, network_info):
        os.makedirs(os.path.join(self.dir, "www"), exist_ok=True)
        if not self.exists():
            _run("ip", "netns", "add", self.ns)
        for index, vif in enumerate(network_info or []):
            self.plug(vif, "eth%d" % index, instance)
        self._write_files(instance)

    def plug(self, vif, inner, instance):
        """The veth pair of one port: outer end on br-int (iface-id = the port), inner
        end in the namespace with the port's MAC and the network's MTU on both ends."""
        tap = vif["devname"]
        mtu = str(vif["network"]["meta"].get("mtu") or 1500)
        if _host_ip("link", "show", tap, check=False).returncode != 0:
            _run("ip", "link", "add", tap, "mtu", mtu, "netns", _host_ns(), "type", "veth",
                 "peer", "name", inner, "netns", self.ns)
        _host_ip("link", "set", tap, "up")
        _run("ip", "netns", "exec", self.ns, "sh", "-c",
             "ip link set lo up; ip link set %s address %s mtu %s; "
             # Userspace OVS: a packet still carrying checksum offload is dropped at a
             # tunnel and a TCP SYN goes out with a bad checksum; the guest computes them.
             "ethtool -K %s tx off >/dev/null 2>&1; ip link set %s up"
             % (inner, vif["address"], mtu, inner, inner))
        _vsctl("--", "--may-exist", "add-port", "br-int", tap, "--", "set", "Interface", tap,
               "mtu_request=%s" % mtu,
               "external_ids:iface-id=%s" % vif["id"],
               "external_ids:attached-mac=%s" % vif["address"],
               "external_ids:iface-status=active",
               "external_ids:vm-uuid=%s" % instance.uuid)

    def unplug_all(self):
        for tap in self._taps():
            _vsctl("--if-exists", "del-port", "br-int", tap, check=False)
            _host_ip("link", "del", tap, check=False)

    def _taps(self):
        out = _vsctl("--columns=name,external_ids", "--format=csv", "--data=bare",
                     "--no-headings", "find", "Interface",
                     "external_ids:vm-uuid=%s" % self.uuid, check=False).stdout
        return [line.split(",", 1)[0] for line in out.splitlines() if line.strip()]

    def _write_files(self, instance):
        key = instance.key_data or ""
        with open(os.path.join(self.dir, "authorized_keys"), "w") as f:
            f.write(key + ("\n" if key else ""))
        user_data = instance.user_data
        path = os.path.join(self.dir, "user-data")
        if user_data:
            with open(path, "wb") as f:
                f.write(base64.b64decode(user_data))
        elif os.path.exists(path):
            os.remove(path)
        with open(os.path.join(self.dir, "www", "index.html"), "w") as f:
            f.write("%s %s\n" % (instance.hostname or instance.display_name, instance.uuid))
        hostkey = os.path.join(self.dir, "ssh_host_ed25519_key")
        if not os.path.exists(hostkey):
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", instance.uuid,
                 "-f", hostkey)
        with open(os.path.join(self.dir, "sshd_config"), "w") as f:
            f.write("Port 22\nListenAddress 0.0.0.0\nHostKey %s\nPidFile %s/sshd.pid\n"
                    "AuthorizedKeysFile %s/authorized_keys\nPermitRootLogin prohibit-password\n"
                    "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                    "StrictModes no\nUseDNS no\n" % (hostkey, self.dir, self.dir))
        hostname = (instance.hostname or "instance")[:63]
        with open(os.path.join(self.dir, "hostname"), "w") as f:
            f.write(hostname + "\n")
        with open(os.path.join(self.dir, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n127.0.1.1 %s\n" % hostname)
        open(os.path.join(self.dir, "resolv.conf"), "a").close()

    # -- power ------------------------------------------------------------------------
    def start(self):
        """Boot: the guest script in the namespace, in mount and UTS namespaces of its
        own (a private /run for sshd, its own host name), detached from nova-compute."""
        with open(self.console, "a") as log:
            subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "unshare", "--mount", "--uts",
                 "--propagation", "private", "sh", GUEST, self.dir, DHCP_SCRIPT],
                env=GUEST_ENV,   # nothing of nova-compute's own environment
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, close_fds=True)

    def stop(self):
        """Power off: every process in the namespace ends and its links go down (the
        kernel would still answer a ping); the ports stay plugged, as a VM's taps do."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            for _ in range(20):
                if not self.pids():
                    break
                time.sleep(0.1)
        if self.exists():
            _run("ip", "netns", "exec", self.ns, "sh", "-c",
                 "for dev in $(ls /sys/class/net); do ip link set $dev down; done",
                 check=False)

    # -- volumes --------------------------------------------------------------------------
    def attach(self, volume_id, size_gib, mountpoint):
        """A loop device over a sparse file of the volume's size, its node at `mountpoint`
        in the guest's /dev (now if it runs, and at every boot)."""
        name = os.path.basename(mountpoint)
        backing = os.path.join(self.dir, "volumes", volume_id + ".img")
        os.makedirs(os.path.dirname(backing), exist_ok=True)
        with open(backing, "ab") as f:
            f.truncate(size_gib * 1024 ** 3)
        loop = _run("losetup", "--find", "--show", backing).stdout.strip()
        rdev = os.stat(loop).st_rdev
        os.makedirs(os.path.join(self.dir, "devices"), exist_ok=True)
        with open(os.path.join(self.dir, "devices", name), "w") as f:
            f.write("%d %d\n" % (os.major(rdev), os.minor(rdev)))
        self._in_guest("rm -f /dev/{0}; mknod -m 660 /dev/{0} b {1} {2}".format(
            name, os.major(rdev), os.minor(rdev)))

    def detach(self, volume_id, mountpoint):
        name = os.path.basename(mountpoint)
        self._in_guest("rm -f /dev/%s" % name)
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.dir, "devices", name))
        backing = os.path.join(self.dir, "volumes", volume_id + ".img")
        for loop in self._loops(backing):
            _run("losetup", "--detach", loop, check=False)
        with contextlib.suppress(FileNotFoundError):
            os.remove(backing)

    def detach_all(self):
        for loop in self._loops(os.path.join(self.dir, "volumes") + "/"):
            _run("losetup", "--detach", loop, check=False)

    @staticmethod
    def _loops(backing_prefix):
        out = _run("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE",
                   check=False).stdout
        return [line.split(None, 1)[0] for line in out.splitlines()
                if len(line.split(None, 1)) == 2
                and line.split(None, 1)[1].strip().startswith(backing_prefix)]

    def _in_guest(self, command):
        """Run a command in the running guest's mount namespace (no-op when it is off)."""
        try:
            with open(os.path.join(self.dir, "guest.pid")) as f:
                pid = int(f.read())
        except (FileNotFoundError, ValueError):
            return
        if pid in self.pids():
            _run("nsenter", "-t", str(pid), "-m", "--", "sh", "-c", command)

    def delete(self):
        self.stop()
        self.detach_all()
        self.unplug_all()
        if self.exists():
            _run("ip", "netns", "del", self.ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def console_output(self):
        try:
            with open(self.console, "rb") as f:
                return f.read()[-100000:].decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


class NamespaceDriver(fake.FakeDriverWithoutFakeNodes):
    """FakeDriverWithoutFakeNodes whose instances are plugged namespaces."""

    def init_host(self, host):
        super().init_host(host)
        # After a restart, the instances still running are this host's again.
        os.makedirs(CONF.instances_path, exist_ok=True)
        for uuid in os.listdir(CONF.instances_path):
            guest = Guest(uuid)
            if guest.exists():
                state = power_state.RUNNING if guest.pids() else power_state.SHUTDOWN
                self.instances[uuid] = fake.FakeInstance(uuid, state, uuid)

    def spawn(self, context, instance, image_meta, injected_files, admin_password,
              allocations, network_info=None, block_device_info=None, power_on=True,
              accel_info=None):
        super().spawn(context, instance, image_meta, injected_files, admin_password,
                      allocations, network_info, block_device_info, power_on, accel_info)
        guest = Guest(instance.uuid)
        try:
            self._plug_and_wait(instance, guest, network_info)
            if power_on:
                guest.start()
        except Exception:
            guest.delete()
            self.instances.pop(instance.uuid, None)
            raise

    def _plug_and_wait(self, instance, guest, network_info):
        """Plug the ports and wait for neutron's network-vif-plugged events (libvirt's
        way: the events are awaited around the plug)."""
        events = [("network-vif-plugged", vif["id"]) for vif in network_info or []
                  if not vif.get("active", True)]
        try:
            with self.virtapi.wait_for_instance_event(
                    instance, events, timeout=CONF.vif_plugging_timeout,
                    error_callback=self._vif_failed):
                guest.create(instance, network_info)
        except exception.InstanceEventTimeout:
            # nova has logged which events did not come
            if CONF.vif_plugging_is_fatal:
                raise exception.VirtualInterfaceCreateException() from None

    @staticmethod
    def _vif_failed(event_name, instance):
        LOG.error("neutron reported failure on event %s", event_name, instance=instance)
        if CONF.vif_plugging_is_fatal:
            raise exception.VirtualInterfaceCreateException()

    def plug_vifs(self, instance, network_info):
        guest = Guest(instance.uuid)
        if guest.exists():
            guest.create(instance, network_info)

    def power_off(self, instance, timeout=0, retry_interval=0):
        super().power_off(instance, timeout, retry_interval)
        Guest(instance.uuid).stop()

    def power_on(self, context, instance, network_info, block_device_info=None,
                 accel_info=None, share_info=None):
        super().power_on(context, instance, network_info, block_device_info, accel_info,
                         share_info)
        guest = Guest(instance.uuid)
        guest.stop()
        guest.create(instance, network_info)
        guest.start()

    def reboot(self, context, instance, network_info, reboot_type, block_device_info=None,
               bad_volumes_callback=None, accel_info=None, share_info=None):
        if instance.uuid not in self.instances:
            return super().reboot(context, instance, network_info, reboot_type,
                                  block_device_info, bad_volumes_callback, accel_info,
                                  share_info)
        self.power_on(context, instance, network_info, block_device_info, accel_info,
                      share_info)

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        Guest(instance.uuid).delete()
        super().destroy(context, instance, network_info, block_device_info, destroy_disks,
                        destroy_secrets)

    def unplug_vifs(self, instance, network_info):
        Guest(instance.uuid).unplug_all()

    def attach_volume(self, context, connection_info, instance, mountpoint, disk_bus=None,
                      device_type=None, encryption=None):
        super().attach_volume(context, connection_info, instance, mountpoint, disk_bus,
                              device_type, encryption)
        volume_id = connection_info["serial"]
        size = cinder.API().get(context, volume_id)["size"]
        Guest(instance.uuid).attach(volume_id, size, mountpoint)

    def detach_volume(self, context, connection_info, instance, mountpoint, encryption=None):
        Guest(instance.uuid).detach(connection_info["serial"], mountpoint)
        super().detach_volume(context, connection_info, instance, mountpoint, encryption)

    def get_console_output(self, context, instance):
        return Guest(instance.uuid).console_output()

    def get_host_ip_addr(self):
        return CONF.my_ip
