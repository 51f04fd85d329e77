"""What every CloudPulse Rally scenario shares: a connection from the Rally user's
credential, and reporting CheckResults into Rally (output table, atomic actions, and a
failed iteration when a check failed)."""

from rally import exceptions as rally_exc
from rally_openstack.task import scenario

from cloudpulse.checks import workload
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


class WorkloadScenario(CheckScenario):
    """Base of the data-plane scenarios (cloudpulse.checks.workload runs).

    They take no `cleanup@openstack` context: a run removes what it made itself, with
    bounded waits, checks by tag that nothing is left, and leaves the rest to the sweeper
    (which also covers a killed run, where no context cleanup runs).  Rally's cleanup
    waits up to resource_deletion_timeout (600 s) per resource that will not go: with
    cinder-volume hung, it held a finished run's result for ten minutes, when a health
    check must answer."""

    def run_workload(self, run_class, settings_class, timeout, new_tenant=False, **args):
        """Run `run_class` with the scenario's arguments as its `settings_class`, as the
        context's user, and report its results.  Everything created gets Rally's random
        names (an operator tells Rally's leftovers by them).  With `new_tenant` the task
        has the users context make a project and user for the run: they are named in the
        run's file, so that the sweeper removes them should the run die."""
        settings = settings_class(api_timeout=float(timeout), **args)
        account = None
        if new_tenant:
            if self.context.get("config", {}).get("existing_users"):
                raise ValueError("new_tenant: the task's users context uses the "
                                 "environment's existing users (give it tenants: 1)")
            user = self.context["user"]
            account = workload.Account(project_id=user["tenant_id"], user_id=user["id"])
        self.report(run_class(self.connection(timeout), settings,
                              self.context["task"]["uuid"],
                              name=lambda kind: self.generate_random_name(),
                              account=account).run())


def connection_for(credential, timeout):
    """An openstacksdk connection from a Rally OpenStackCredential."""
    auth = cloud.password_auth(credential.auth_url, credential.username,
                               credential.password, credential.tenant_name,
                               credential.user_domain_name, credential.project_domain_name)
    verify = credential.https_cacert or not credential.https_insecure
    return cloud.connect_with_auth(
        auth, region_name=credential.region_name,
        interface=credential.endpoint_type or "public", timeout=timeout, verify=verify)
