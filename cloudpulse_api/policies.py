"""Who may do what on the CloudPulse API: oslo.policy defaults, in code.

Registered through the `oslo.policy.policies` entry point (`cloudpulse`), from which
`oslopolicy-sample-generator` writes etc/cloudpulse/policy.yaml.sample; an operator
overrides a rule in [oslo_policy] policy_file.
"""

from oslo_policy import policy

from cloudpulse import results

ADMIN = "admin"
PROJECT_MEMBER = "project_member"
OWNER = "project_owner"

_CHECK = [{"path": "/cpulse/check", "method": "POST"}]
_RESULT = [{"path": "/cpulse/result", "method": "GET"}]
_LIST = [{"path": "/cpulse/results", "method": "GET"}]

# Check types any member of a project may start; the others (and `all`) need admin.
MEMBER_TYPES = (results.CheckType.ENDPOINT, results.CheckType.FUNCTIONAL,
                results.CheckType.UPGRADE)
ALL = "all"

RESULT_GET = "cloudpulse:result:get"
RUN_STOP = "cloudpulse:run:stop"
RESULT_OPERATOR_DETAIL = "cloudpulse:result:operator_detail"
TYPES_LIST = "cloudpulse:types:list"
RESULTS_LIST = "cloudpulse:results:list"
RESULTS_LIST_ALL_PROJECTS = "cloudpulse:results:list:all_projects"
WEBHOOKS_CREATE = "cloudpulse:webhooks:create"
WEBHOOKS_LIST = "cloudpulse:webhooks:list"
WEBHOOKS_DELETE = "cloudpulse:webhooks:delete"
WEBHOOKS_ALL_PROJECTS = "cloudpulse:webhooks:all_projects"
_WEBHOOKS = [{"path": "/cpulse/webhooks", "method": "POST"},
             {"path": "/cpulse/webhooks", "method": "GET"},
             {"path": "/cpulse/webhooks/{webhook_id}", "method": "DELETE"}]
OPERATOR_NODES_LIST = "cloudpulse:operator:nodes:list"
AVAILABILITY_GET = "cloudpulse:availability:get"
AVAILABILITY_ALL_PROJECTS = "cloudpulse:availability:all_projects"
METRICS_GET = "cloudpulse:metrics:get"
STATUS_GET = "cloudpulse:status:get"
SNAPSHOT_CREATE = "cloudpulse:snapshot:create"
SNAPSHOT_LIST = "cloudpulse:snapshot:list"
SNAPSHOT_DELETE = "cloudpulse:snapshot:delete"
SNAPSHOT_ALL_PROJECTS = "cloudpulse:snapshot:all_projects"
SNAPSHOT_CREATE_RESOURCES = "cloudpulse:snapshot:create_resources"
_SNAPSHOT = [{"path": "/cpulse/snapshot", "method": "POST"},
             {"path": "/cpulse/snapshots", "method": "GET"},
             {"path": "/cpulse/snapshot", "method": "GET"},
             {"path": "/cpulse/snapshot", "method": "DELETE"}]


def start_rule(check_type):
    """The rule a POST /cpulse/check of `check_type` (a CheckType value, or "all") needs."""
    return "cloudpulse:check:start:%s" % check_type


_BASE = [
    policy.RuleDefault(ADMIN, "role:admin", description="The cloud's administrators."),
    policy.RuleDefault(PROJECT_MEMBER, "role:member or role:admin",
                       description="Any member of a project (an admin too)."),
    policy.RuleDefault(OWNER, "project_id:%(project_id)s",
                       description="The caller's project is the run's."),
]


def _start(check_type, rule, who):
    return policy.DocumentedRuleDefault(
        name=start_rule(check_type), check_str="rule:%s" % rule, scope_types=["project"],
        description="Start %s checks (%s)." % (check_type, who), operations=_CHECK)


_CHECKS = (
    [_start(t.value, PROJECT_MEMBER, "a project member; the run is the project's")
     for t in MEMBER_TYPES]
    + [_start(t.value, ADMIN, "admin: they reach into the control plane or boot on "
                              "every host")
       for t in results.CheckType if t not in MEMBER_TYPES]
    + [_start(ALL, ADMIN, "admin: every type the server offers")])

_RESULTS = [
    policy.DocumentedRuleDefault(
        name=RESULT_GET, check_str="rule:%s or (rule:%s and rule:%s)"
        % (ADMIN, PROJECT_MEMBER, OWNER), scope_types=["project"],
        description="Read a run: a member, their project's runs; an admin, any run. A run "
                    "a caller may not read answers 404, as a handle that does not exist.",
        operations=_RESULT),
    policy.DocumentedRuleDefault(
        name=RUN_STOP, check_str="rule:%s or (rule:%s and rule:%s)"
        % (ADMIN, PROJECT_MEMBER, OWNER), scope_types=["project"],
        description="End a watch of the caller's project now (an admin: any).",
        operations=[{"path": "/cpulse/stop", "method": "POST"}]),
    policy.DocumentedRuleDefault(
        name=RESULT_OPERATOR_DETAIL, check_str="rule:%s" % ADMIN, scope_types=["project"],
        description="See a run's operator-only detail: host names and node addresses "
                    "(others get them masked: nova-compute@compute-3 -> nova-compute).",
        operations=_RESULT),
    policy.DocumentedRuleDefault(
        name=RESULTS_LIST, check_str="rule:%s" % PROJECT_MEMBER, scope_types=["project"],
        description="List runs (summaries, newest first): a member, their project's runs.",
        operations=_LIST),
    policy.DocumentedRuleDefault(
        name=RESULTS_LIST_ALL_PROJECTS, check_str="rule:%s" % ADMIN,
        scope_types=["project"],
        description="List every project's runs and the server's own (periodic), or "
                    "another project's with project_id=.",
        operations=_LIST),
    policy.DocumentedRuleDefault(
        name=TYPES_LIST, check_str="rule:%s" % PROJECT_MEMBER, scope_types=["project"],
        description="List the check types this server offers.",
        operations=[{"path": "/cpulse/types", "method": "GET"}]),
]

_OPERATOR = [
    policy.DocumentedRuleDefault(
        name=OPERATOR_NODES_LIST, check_str="rule:%s" % ADMIN, scope_types=["project"],
        description="List the service map's nodes, their addresses and services "
                    "(operator-only detail).",
        operations=[{"path": "/cpulse/operator/nodes", "method": "GET"}]),
]


_WEBHOOK_RULES = [
    policy.DocumentedRuleDefault(
        name=WEBHOOKS_CREATE, check_str="rule:%s" % PROJECT_MEMBER, scope_types=["project"],
        description="Register a webhook: a member's gets their project's health "
                    "transitions only.", operations=_WEBHOOKS[:1]),
    policy.DocumentedRuleDefault(
        name=WEBHOOKS_LIST, check_str="rule:%s" % PROJECT_MEMBER, scope_types=["project"],
        description="List the webhooks of the caller's project.",
        operations=_WEBHOOKS[1:2]),
    policy.DocumentedRuleDefault(
        name=WEBHOOKS_DELETE, check_str="rule:%s and rule:%s" % (PROJECT_MEMBER, OWNER),
        scope_types=["project"],
        description="Delete a webhook of the caller's project (another's answers 404).",
        operations=_WEBHOOKS[2:]),
    policy.DocumentedRuleDefault(
        name=WEBHOOKS_ALL_PROJECTS, check_str="rule:%s" % ADMIN, scope_types=["project"],
        description="Register a webhook that gets every project's transitions and the "
                    "server's own (all_projects, the default for admins); list and "
                    "delete every webhook.", operations=_WEBHOOKS),
]


_AVAILABILITY = [
    policy.DocumentedRuleDefault(
        name=AVAILABILITY_GET, check_str="rule:%s" % PROJECT_MEMBER, scope_types=["project"],
        description="Read availability and outages: a member, of their project's runs "
                    "(hosts masked).",
        operations=[{"path": "/cpulse/availability", "method": "GET"}]),
    policy.DocumentedRuleDefault(
        name=AVAILABILITY_ALL_PROJECTS, check_str="rule:%s" % ADMIN, scope_types=["project"],
        description="Read the availability of the server's own (periodic) runs, the "
                    "default, or of any project's with project_id=.",
        operations=[{"path": "/cpulse/availability", "method": "GET"}]),
    policy.DocumentedRuleDefault(
        name=METRICS_GET, check_str="rule:%s" % ADMIN, scope_types=["project"],
        description="Read the server's own runs as Prometheus metrics.",
        operations=[{"path": "/metrics", "method": "GET"},
                    {"path": "/cpulse/metrics", "method": "GET"}]),
    policy.DocumentedRuleDefault(
        name=STATUS_GET, check_str="rule:%s" % PROJECT_MEMBER, scope_types=["project"],
        description="Read each check type's verdict now: a member, of their project's "
                    "runs (hosts masked); an admin, of the server's own.",
        operations=[{"path": "/cpulse/status", "method": "GET"}]),
]


_SNAPSHOTS = [
    policy.DocumentedRuleDefault(
        name=SNAPSHOT_CREATE, check_str="rule:%s" % PROJECT_MEMBER, scope_types=["project"],
        description="Snapshot the caller's project's resources before an upgrade "
                    "(read with the server's credentials; creates nothing).",
        operations=_SNAPSHOT[:1]),
    policy.DocumentedRuleDefault(
        name=SNAPSHOT_LIST, check_str="rule:%s" % PROJECT_MEMBER, scope_types=["project"],
        description="List and read the caller's project's snapshots.",
        operations=_SNAPSHOT[1:3]),
    policy.DocumentedRuleDefault(
        name=SNAPSHOT_DELETE, check_str="rule:%s" % PROJECT_MEMBER, scope_types=["project"],
        description="Delete a snapshot of the caller's project (another's answers 404).",
        operations=_SNAPSHOT[3:]),
    policy.DocumentedRuleDefault(
        name=SNAPSHOT_ALL_PROJECTS, check_str="rule:%s" % ADMIN, scope_types=["project"],
        description="Snapshot another project's resources (project_id) or every "
                    "project's (all_projects); list, read, verify and delete every "
                    "snapshot.", operations=_SNAPSHOT),
    policy.DocumentedRuleDefault(
        name=SNAPSHOT_CREATE_RESOURCES, check_str="rule:%s" % PROJECT_MEMBER,
        scope_types=["project"],
        description="Have the server create a set of resources and snapshot it (create "
                    "true): the set is made in the caller's project (through a keystone "
                    "trust from the caller, in a project not the server's own), and stays "
                    "until its snapshot is deleted.", operations=_SNAPSHOT[:1]),
]


def list_rules():
    """Every default rule (entry point oslo.policy.policies = cloudpulse)."""
    return (_BASE + _CHECKS + _RESULTS + _OPERATOR + _WEBHOOK_RULES + _AVAILABILITY
            + _SNAPSHOTS)


def enforcer(conf):
    """The oslo.policy Enforcer of the API, over cloudpulse.conf ([oslo_policy])."""
    rules = policy.Enforcer(conf)
    rules.register_defaults(list_rules())
    return rules
