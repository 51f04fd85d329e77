"""Rally front end of the comprehensive checks (cloudpulse.checks.comprehensive)."""

from rally.task import validation
from rally_openstack.task import scenario

from cloudpulse.checks import comprehensive
from cloudpulse_rally.scenarios import base


@validation.add("file_exists", param_name="image_file")
@validation.add("number", param_name="boot_timeout", minval=1, nullable=True)
@validation.add("number", param_name="ping_timeout", minval=1, nullable=True)
@validation.add("number", param_name="probe_timeout", minval=1, nullable=True)
@validation.add("number", param_name="max_parallel_boots", minval=1, integer_only=True,
                nullable=True)
@validation.add("required_services", services=["nova", "neutron", "glance"])
@validation.add("required_platform", platform="openstack", users=True)
@scenario.configure(name="CloudPulse.comprehensive", platform="openstack")
class Comprehensive(base.WorkloadScenario):

    def run(self, image_file, flavor, external_network=None, cidr="198.18.43.0/24",
            ssh_user="cirros", image_disk_format="qcow2", boot_timeout=300,
            ping_timeout=120, probe_timeout=30, max_parallel_boots=4, jumbo_mtu=None,
            runs_dir="", timeout=10.0):
        """Every compute host's data path, the path MTU and security groups rule by rule:
        one VM per enabled compute host that is up, pinging the gateway and each other;
        the largest don't-fragment ping against the network's mtu; ping, ssh and http
        with the whole group, then with one rule removed at a time.  As a project member,
        the parts that need admin are skipped with that reason.

        :param image_file: a small image to upload
        :param flavor: flavor name or id for the VMs
        :param external_network: network for the router gateway and floating IPs
        :param cidr: the tenant subnet
        :param ssh_user: the image's login user
        :param image_disk_format: the image file's format
        :param boot_timeout: seconds for an image to become active and a VM ACTIVE
        :param ping_timeout: seconds to reach a new VM over SSH
        :param probe_timeout: seconds for a probe that must pass, and for a rule change
        :param max_parallel_boots: at most this many VMs building at a time
        :param jumbo_mtu: create the network with this MTU and require the path to carry it
        :param runs_dir: where runs on this machine register, for the sweeper and the
            one-run-per-cloud lock (default ~/.local/state/cloudpulse/runs)
        :param timeout: seconds before one API call counts as failed
        """
        self.run_workload(
            comprehensive.ComprehensiveRun, comprehensive.Settings, timeout,
            image_file=image_file, flavor=flavor, external_network=external_network,
            cidr=cidr, ssh_user=ssh_user, image_disk_format=image_disk_format,
            boot_timeout=float(boot_timeout), ping_timeout=float(ping_timeout),
            probe_timeout=float(probe_timeout), max_parallel_boots=int(max_parallel_boots),
            jumbo_mtu=int(jumbo_mtu) if jumbo_mtu else None, runs_dir=runs_dir)
