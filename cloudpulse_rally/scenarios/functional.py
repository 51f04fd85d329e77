"""Rally front end of the functional checks (cloudpulse.checks.functional)."""

from rally.task import validation
from rally_openstack.task import scenario

from cloudpulse.checks import functional
from cloudpulse_rally.scenarios import base


@validation.add("file_exists", param_name="image_file")
@validation.add("number", param_name="boot_timeout", minval=1, nullable=True)
@validation.add("number", param_name="ping_timeout", minval=1, nullable=True)
@validation.add("number", param_name="volume_size", minval=0, integer_only=True,
                nullable=True)
@validation.add("enum", param_name="ping_via", values=["auto", "floating_ip", "console"],
                missed=True)
@validation.add("required_services", services=["nova", "neutron", "glance"])
@validation.add("required_platform", platform="openstack", users=True)
@scenario.configure(name="CloudPulse.functional", platform="openstack")
class Functional(base.WorkloadScenario):

    def run(self, image_file, flavor, external_network=None, cidr="198.18.42.0/24",
            ssh_user="cirros", image_disk_format="qcow2", boot_timeout=300,
            ping_timeout=120, volume_size=1, ping_via="auto", runs_dir="", new_tenant=False,
            timeout=10.0):
        """A tenant's workload end to end, with packets: network, subnet and router,
        image, key pair and security group, two VMs, a ping from one to the other over
        SSH through a floating IP, a volume attached to the first and seen inside it, and
        everything deleted (nothing may be left).

        Every step is an atomic action; each resource gets Rally's random name and the
        CloudPulse tags.

        :param image_file: a small image to upload
        :param flavor: flavor name or id for the two VMs
        :param external_network: network for the router gateway and floating IPs
        :param cidr: the tenant subnet
        :param ssh_user: the image's login user
        :param image_disk_format: the image file's format
        :param boot_timeout: seconds for an image to become active and a VM ACTIVE
        :param ping_timeout: seconds to reach a VM over SSH and to get a ping reply
        :param volume_size: GiB of the volume attached to vm1 and looked for inside it
            (0: no volume step)
        :param ping_via: floating_ip (over SSH), console (a user-data script's result in
            vm1's console log) or auto (floating_ip when there is an external network)
        :param runs_dir: where runs on this machine register, for the sweeper and the
            one-run-per-cloud lock (default ~/.local/state/cloudpulse/runs)
        :param new_tenant: the task's users context makes a project and user for the run
            (operator mode; the template adds the context), swept should the run die
        :param timeout: seconds before one API call counts as failed
        """
        self.run_workload(
            functional.FunctionalRun, functional.Settings, timeout,
            image_file=image_file, flavor=flavor, external_network=external_network,
            cidr=cidr, ssh_user=ssh_user, image_disk_format=image_disk_format,
            boot_timeout=float(boot_timeout), ping_timeout=float(ping_timeout),
            volume_size=int(volume_size), ping_via=ping_via, runs_dir=runs_dir,
            new_tenant=bool(new_tenant))
