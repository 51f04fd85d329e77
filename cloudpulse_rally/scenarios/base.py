"""What every CloudPulse Rally scenario shares: a connection from the Rally user's
credential, and reporting CheckResults into Rally (output table, atomic actions, and a
failed iteration when a check failed)."""

from rally import exceptions as rally_exc
from rally_openstack.task import scenario

from cloudpulse import cloud
from cloudpulse_rally import report


class ChecksFailed(rally_exc.RallyException):
    error_code = 700
    msg_fmt = "%(summary)s"


class ResultReporter:
    """Mixin for Rally scenarios that report CheckResults."""

    def report(self, check_results):
        """Record results in Rally; the iteration fails when a check did not pass."""
        self.add_output(complete=report.to_output(check_results))
        self._atomic_actions.extend(report.atomic_actions(check_results))
        bad = [r for r in check_results if not r.ok]
        if bad:
            raise ChecksFailed(summary="; ".join(
                "%s: %s" % (r.name, r.details) for r in bad))


class CheckScenario(ResultReporter, scenario.OpenStackScenario):
    """Base of CloudPulse scenarios that act as the cloud's user; not a plugin itself."""

    def connection(self, timeout):
        return connection_for(self.context["user"]["credential"], timeout)


def connection_for(credential, timeout):
    """An openstacksdk connection from a Rally OpenStackCredential."""
    auth = cloud.password_auth(credential.auth_url, credential.username,
                               credential.password, credential.tenant_name,
                               credential.user_domain_name, credential.project_domain_name)
    verify = credential.https_cacert or not credential.https_insecure
    return cloud.connect_with_auth(
        auth, region_name=credential.region_name,
        interface=credential.endpoint_type or "public", timeout=timeout, verify=verify)
