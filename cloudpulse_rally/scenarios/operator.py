"""Rally front end of the operator checks (cloudpulse.checks.operator)."""

from rally.task import scenario
from rally.task import validation

from cloudpulse.checks import operator
from cloudpulse.checks.operator import base as base_checks
from cloudpulse import ssh
from cloudpulse_rally import operator_validators
from cloudpulse_rally.scenarios import base


_SSH = ssh.SSHSettings   # the SSH defaults' one source


@validation.add("cloudpulse_operator_pacemaker")
@validation.add("cloudpulse_operator_haproxy")
@validation.add("cloudpulse_operator_galera")
@validation.add("cloudpulse_operator_rabbitmq")
@validation.add("cloudpulse_operator_services")
@validation.add("cloudpulse_subset", param_name="checks", values=tuple(operator.CHECKS))
@validation.add("number", param_name="timeout", minval=0.1, nullable=True)
@validation.add("enum", param_name="haproxy_backend_probes", values=base_checks.BACKEND_PROBES,
                missed=True)
@scenario.configure(name="CloudPulse.operator", platform="openstack")
class Operator(base.ResultReporter, scenario.Scenario):
    # Not an OpenStackScenario: that one requires user credentials (users context) and
    # the operator checks need none; the control-plane part uses the admin when given.

    def run(self, service_map, checks=tuple(operator.CHECKS),
            known_hosts_file=_SSH.known_hosts_file, ssh_key_file=None,
            ssh_user=_SSH.user, connect_timeout=_SSH.connect_timeout,
            command_timeout=_SSH.command_timeout, max_parallel_nodes=_SSH.max_parallel,
            strict_host_key_checking=_SSH.strict_host_keys, timeout=10.0,
            haproxy_backend_probes="auto", ca_file=None):
        """The control plane seen from its nodes over SSH, and from the APIs.

        Runs fixed read-only commands on every node of the service map (one SSH
        connection per node, strict host keys, key only) and reports one result per
        node and component.  The validators (cloudpulse_operator_<check>) ran the same
        checks just before: their results are reused, not run twice.  The control-plane
        check uses the environment's admin credential when there is one.

        :param service_map: path of the service map (inventory or juju status YAML)
        :param checks: subset of services, rabbitmq, galera, haproxy, pacemaker,
            control_plane
        :param known_hosts_file: the nodes' SSH host keys
        :param ssh_key_file: private key for SSH
        :param ssh_user: SSH user when the map gives none
        :param connect_timeout: seconds to connect to one node
        :param command_timeout: seconds for one command on a node
        :param max_parallel_nodes: nodes contacted at the same time
        :param strict_host_key_checking: false accepts unknown host keys (logged)
        :param timeout: seconds for one API call or direct backend probe
        :param haproxy_backend_probes: how HAProxy's servers are probed besides its
            stats: auto (from here, else from the HAProxy node), direct, node or off
        :param ca_file: CA bundle for TLS backends probed from here
        """
        check_results = operator_validators.take_results(
            self.context["task"]["uuid"], type(self),
            {"service_map": service_map, "checks": list(checks),
             "known_hosts_file": known_hosts_file, "ssh_key_file": ssh_key_file,
             "ssh_user": ssh_user, "connect_timeout": connect_timeout,
             "command_timeout": command_timeout, "max_parallel_nodes": max_parallel_nodes,
             "strict_host_key_checking": strict_host_key_checking, "timeout": timeout,
             "haproxy_backend_probes": haproxy_backend_probes, "ca_file": ca_file})
        if "control_plane" in checks and "admin" in self.context:
            conn = base.connection_for(self.context["admin"]["credential"], timeout)
            check_results = [r for r in check_results if r.name != "operator.control_plane"]
            check_results += operator.run_control_plane(
                operator.servicemap.load(service_map), conn, api_timeout=timeout)
        self.report(check_results)
