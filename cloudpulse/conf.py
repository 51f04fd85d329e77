"""CloudPulse configuration (oslo.config), read from /etc/cloudpulse/cloudpulse.conf.

The product spec's /etc/oscheck.conf interval keys (osendpoint, osoperator, osfunc,
oscomp; values like 60s or 10m; -1 = never) are accepted as aliases.  Every value is
validated when the configuration is loaded, so a bad one stops the server at start
with the option's name rather than later in a background thread.
"""

import ipaddress
import os
import re
import urllib.parse

from oslo_config import cfg
from oslo_config import types

from cloudpulse import availability
from cloudpulse.checks import comprehensive
from cloudpulse.checks import functional
from cloudpulse import results
from cloudpulse import ssh


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the option."""


class Interval(types.ConfigType):
    """A period in seconds written as 30, 30s, 10m, 2h or 1d; -1 (or "never") disables."""

    _UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
    _RE = re.compile(r"^\s*(-?\d+)\s*([smhd]?)\s*$", re.IGNORECASE)

    def __init__(self, type_name="interval value"):
        super().__init__(type_name=type_name)

    def __call__(self, value):
        if isinstance(value, int):
            seconds = value
        else:
            text = str(value).strip().lower()
            if text in ("never", "off"):
                return -1
            match = self._RE.match(text)
            if not match:
                raise ValueError("%r is not an interval: use seconds or 30s, 10m, 2h, 1d;"
                                 " -1 means never" % value)
            seconds = int(match.group(1)) * self._UNITS[match.group(2).lower()]
        if seconds < 0 and seconds != -1:
            raise ValueError("%r: an interval is positive, or -1 for never" % value)
        if seconds == 0:
            raise ValueError("%r: an interval of 0 would run without pause; use -1 "
                             "for never" % value)
        return seconds

    def __repr__(self):
        return "Interval"

    def __eq__(self, other):
        return self.__class__ == other.__class__

    def _formatter(self, value):
        return str(value)


_DEFAULT_STATE_PATH = "/var/lib/cloudpulse"

default_opts = [
    cfg.StrOpt("state_path", default=_DEFAULT_STATE_PATH,
               help="Directory for CloudPulse's state (the Rally database by default)."),
    cfg.StrOpt("scenarios_dir",
               help="Directory of the check suites (<type>.yaml); by default the "
                    "scenarios/ shipped with CloudPulse."),
    cfg.StrOpt("task_templates_dir",
               help="Directory of the Rally task templates (<type>.yaml); by default "
                    "the task_templates/ shipped with CloudPulse."),
]

api_opts = [
    cfg.HostAddressOpt("host", default="127.0.0.1",
                       help="Address the CloudPulse API listens on."),
    cfg.PortOpt("port", default=9999, help="Port the CloudPulse API listens on."),
    cfg.IntOpt("threads", default=16, min=2, max=256,
               help="Requests served at the same time. A GET /cpulse/result?wait= "
                    "holds one while it waits; further requests queue."),
    cfg.IntOpt("max_active_runs", default=20, min=1, max=10000,
               help="Runs queued or running at most; a POST beyond answers 429 with "
                    "Retry-After. A POST for check types already queued or running gets "
                    "that run's handle instead of a second run."),
    cfg.IntOpt("max_active_runs_per_project", default=5, min=1, max=10000,
               help="Runs one project may have queued or running at most (periodic runs "
                    "belong to no project and count only against max_active_runs); a "
                    "POST beyond answers 429 with Retry-After."),
    cfg.StrOpt("auth_strategy", default="keystone",
               choices=[("keystone", "keystone tokens, validated by keystonemiddleware's "
                                     "auth_token with the [keystone_authtoken] options"),
                        ("token_file", "static tokens listed in [api] token_file, for a "
                                       "CloudPulse without keystone (in a tenant's VM)"),
                        ("noauth", "no authentication: every caller is admin; only on a "
                                   "loopback [api] host")],
               help="How callers of the API are authenticated (docs/access.md). Who may "
                    "do what is oslo.policy's ([oslo_policy] policy_file)."),
    cfg.StrOpt("token_file",
               help="With auth_strategy = token_file: a file of lines `<token> "
                    "<project_id> <role>[,<role>...]` (# comments); tokens of at least "
                    "20 characters; the file must not be readable by others."),
    cfg.IntOpt("max_long_polls", default=8, min=0, max=256,
               help="GET /cpulse/result?wait= requests that may hold a thread at once; "
                    "beyond, they are answered at once with the run's current state, so "
                    "that waiting clients never take every thread."),
]

cloud_opts = [
    cfg.StrOpt("cloud",
               help="Name of the cloud in clouds.yaml to check; unset means the OS_* "
                    "environment variables, as openstacksdk reads them."),
    cfg.StrOpt("clouds_file",
               help="clouds.yaml to read instead of openstacksdk's search path."),
    cfg.StrOpt("region_name", help="Region to check (default: the cloud's)."),
    cfg.FloatOpt("timeout", default=10.0, min=0.1,
                 help="Seconds before one API call counts as failed ('timeout after N s')."),
    cfg.URIOpt("horizon_url",
               help="Dashboard URL (e.g. https://cloud.example.com/dashboard); the "
                    "endpoint check logs in there. Unset: the horizon check is skipped."),
    cfg.ListOpt("clouds", default=[],
                help="Several clouds checked by one server: their clouds.yaml entries "
                     "(in clouds_file), instead of `cloud`. Each may have a section "
                     "[cloud:<entry>] of its own (region_name, timeout, horizon_url, "
                     "scenarios_dir, service_map, <type>_interval); what it leaves unset "
                     "is the [cloud], [DEFAULT], [operator] and [periodic] value. The "
                     "first is the one a request that names no cloud checks."),
]

# [cloud:<entry>]: what differs from one cloud to the next (docs/availability.md, "Several
# clouds"); unset, the option of the same name in [cloud], [DEFAULT], [operator] or
# [periodic].
_PER_CLOUD = {"region_name": "cloud", "timeout": "cloud", "horizon_url": "cloud",
              "scenarios_dir": None, "service_map": "operator"}

rally_opts = [
    cfg.StrOpt("connection", secret=True,
               help="Rally database URL; default sqlite:///<state_path>/rally.sqlite."),
    cfg.StrOpt("env_name", default="cloudpulse",
               help="Name of the Rally environment CloudPulse creates for the cloud."),
]


_SSH = ssh.SSHSettings   # the one source of the SSH defaults

operator_opts = [
    cfg.StrOpt("service_map",
               help="Service map of the control plane: an inventory (hosts with address, "
                    "roles) or `juju status --format yaml` output. Unset: the operator "
                    "check type is not offered."),
    cfg.StrOpt("known_hosts_file", default=_SSH.known_hosts_file,
               help="SSH known_hosts file with every node's host key. A node whose key "
                    "is missing or different is refused before authenticating."),
    cfg.StrOpt("ssh_key_file", help="Private key for SSH (key-only; no password, no agent)."),
    cfg.StrOpt("ssh_user", default=_SSH.user,
               help="SSH user when the service map gives none. Its ~/.my.cnf holds the "
                    "Galera monitoring credentials."),
    cfg.FloatOpt("connect_timeout", default=_SSH.connect_timeout, min=0.1,
                 help="Seconds to connect and authenticate to one node."),
    cfg.FloatOpt("command_timeout", default=_SSH.command_timeout, min=0.1,
                 help="Seconds before one command on a node counts as failed."),
    cfg.IntOpt("max_parallel_nodes", default=_SSH.max_parallel, min=1, max=256,
               help="Nodes contacted at the same time."),
    cfg.StrOpt("haproxy_backend_probes", default="auto",
               choices=[("auto", "from the checker; from the HAProxy node over SSH where "
                                 "the checker cannot reach a server"),
                        ("direct", "from the checker only"),
                        ("node", "from the HAProxy node only (over SSH, with curl)"),
                        ("off", "not at all: HAProxy's own health checks only")],
               help="How HAProxy's backend servers are probed besides HAProxy's stats."),
    cfg.StrOpt("ca_file",
               help="CA bundle for backends that speak TLS, probed from the checker; "
                    "default: the cloud connection's CA settings, else the system's."),
    cfg.BoolOpt("strict_host_key_checking", default=_SSH.strict_host_keys,
                help="Set to false to accept unknown SSH host keys (logged as a warning "
                     "at every run). Never do this outside a lab."),
]


_FUNCTIONAL = functional.Settings   # the one source of the functional defaults

functional_opts = [
    cfg.StrOpt("image_file",
               help="A small image file the functional check uploads and boots (e.g. a "
                    "CirrOS qcow2). Unset: the functional check type is not offered."),
    cfg.StrOpt("flavor", help="Flavor (name or id) of the functional check's two VMs."),
    cfg.StrOpt("external_network",
               help="External network for the router gateway and the floating IP "
                    "through which the check reaches its first VM over SSH."),
    cfg.StrOpt("ssh_user", default=_FUNCTIONAL.ssh_user, help="The image's login user."),
    cfg.StrOpt("image_disk_format", default=_FUNCTIONAL.image_disk_format,
               help="Disk format of image_file."),
    cfg.StrOpt("cidr", default=_FUNCTIONAL.cidr,
               help="The check's tenant subnet (choose one your cloud does not route)."),
    cfg.FloatOpt("boot_timeout", default=_FUNCTIONAL.boot_timeout, min=1,
                 help="Seconds for the image to become active and each VM ACTIVE."),
    cfg.FloatOpt("ping_timeout", default=_FUNCTIONAL.ping_timeout, min=1,
                 help="Seconds to reach the first VM over SSH and to get a ping reply "
                      "from the second."),
    cfg.StrOpt("ping_via", default=_FUNCTIONAL.ping_via,
               choices=[("auto", "floating_ip when external_network is set, else console"),
                        ("floating_ip", "over SSH into the first VM through a floating IP"),
                        ("console", "a user-data script's result, from the console log")],
               help="How the first VM's ping of the second is run and read."),
    cfg.IntOpt("volume_size", default=_FUNCTIONAL.volume_size, min=0,
               help="GiB of the volume attached to the first VM and looked for inside it; "
                    "0: no volume step (a cloud without cinder)."),
]


_COMPREHENSIVE = comprehensive.Settings

comprehensive_opts = [
    cfg.StrOpt("cidr", default=_COMPREHENSIVE.cidr,
               help="The comprehensive check's tenant subnet. Its image, flavor, external "
                    "network, login user and timeouts are [functional]'s."),
    cfg.IntOpt("max_parallel_boots", default=_COMPREHENSIVE.max_parallel_boots, min=1,
               help="At most this many VMs (one per compute host) building at a time."),
    cfg.FloatOpt("probe_timeout", default=_COMPREHENSIVE.probe_timeout, min=1,
                 help="Seconds for a probe that must pass (a ping to a peer, a port), and "
                      "for a security group rule change to apply."),
    cfg.IntOpt("jumbo_mtu", min=1280, max=65535,
               help="Create the check's network with this MTU (e.g. 9000) and require the "
                    "path to carry it. Unset: the cloud's default MTU."),
]


def _interval_opt(check_type, alias, default):
    return cfg.Opt(
        "%s_interval" % check_type, type=Interval(), default=default,
        deprecated_opts=[cfg.DeprecatedOpt(alias, group="periodic"),
                         cfg.DeprecatedOpt(alias, group="DEFAULT")],
        help="How often the server runs the %s checks by itself (30s, 10m, 2h; "
             "-1 = never). Alias: %s." % (check_type, alias))


periodic_opts = [
    _interval_opt("endpoint", "osendpoint", "5m"),
    _interval_opt("operator", "osoperator", -1),
    _interval_opt("functional", "osfunc", -1),
    _interval_opt("comprehensive", "oscomp", -1),
    _interval_opt("upgrade", "osupgrade", -1),
    cfg.FloatOpt("jitter", default=0.1, min=0, max=0.5,
                 help="Each periodic run starts up to this fraction of its interval late, "
                      "at random, so that check types and servers do not hit the cloud "
                      "at the same instants."),
]

runner_opts = [
    cfg.IntOpt("workers", default=2, min=1, max=32,
               deprecated_opts=[cfg.DeprecatedOpt("workers", group="api")],
               help="Check runs one runner process executes at the same time; more stay "
                    "queued (for this runner or another)."),
    cfg.FloatOpt("heartbeat_interval", default=5.0, min=0.5,
                 help="Seconds between two heartbeats a runner writes into the runs it "
                      "executes."),
    cfg.FloatOpt("dead_after", default=30.0, min=2.0,
                 help="A run whose runner wrote no heartbeat for this many seconds is "
                      "interrupted (its runner died); at once when its process is gone "
                      "from this machine."),
]

coordination_opts = [
    cfg.StrOpt("backend_url", secret=True,
               help="tooz backend that coordinates the API and runner processes (the "
                    "periodic checks run once, the database is set up once): e.g. "
                    "postgresql://user:password@host/db, or file:///dir for processes on "
                    "one machine. Unset: file locks under state_path/locks."),
]

retention_opts = [
    cfg.IntOpt("max_age_days", default=30, min=0,
               help="Finished runs older than this many days are deleted (0: kept)."),
    cfg.IntOpt("max_runs_per_type", default=10000, min=0,
               help="Of each check type, only the newest this many finished runs are "
                    "kept (0: no limit). Pruned at start and then every hour."),
]

class Thresholds(types.ConfigType):
    """Consecutive results before a transition, as <fail_after>/<recover_after>: 1/2."""

    _RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

    def __init__(self, type_name="thresholds value"):
        super().__init__(type_name=type_name)

    def __call__(self, value):
        if isinstance(value, tuple):
            return value
        match = self._RE.match(str(value))
        if not match or min(int(match.group(1)), int(match.group(2))) < 1:
            raise ValueError("%r: write <fail_after>/<recover_after>, each at least 1, "
                             "e.g. 1/2" % value)
        return int(match.group(1)), int(match.group(2))

    def __repr__(self):
        return "Thresholds"

    def __eq__(self, other):
        return self.__class__ == other.__class__

    def _formatter(self, value):
        return "%d/%d" % value if isinstance(value, tuple) else str(value)


notifications_opts = [
    cfg.ListOpt("webhooks", default=[],
                help="URLs (http or https) that receive every health transition, of every "
                     "project and of the server's own runs (admin scope); signed with "
                     "secret. More are registered through POST /cpulse/webhooks "
                     "(docs/notifications.md)."),
    cfg.StrOpt("secret", secret=True,
               help="The HMAC-SHA256 key that signs notifications to [notifications] "
                    "webhooks (X-CloudPulse-Signature). Or secret_file."),
    cfg.StrOpt("secret_file",
               help="A file holding the secret (its first line); not readable by others."),
    cfg.Opt("thresholds", type=Thresholds(), default=(1, 2),
            help="Consecutive results before a change is a transition, as "
                 "<fail_after>/<recover_after>: 1/2 tells a fault at its first failing "
                 "run, and its end (or another cause of it) after two results in a row, "
                 "so a fault that comes and goes is one fault."),
    cfg.DictOpt("type_thresholds", default={},
                help="Thresholds of check types that differ, e.g. functional:2/3, "
                     "operator:1/3."),
    cfg.Opt("reminder_interval", type=Interval(), default=-1,
            help="A fault still there this long after its last notification is told "
                 "again (a reminder), at its next run (30m, 4h; -1 = never)."),
    cfg.URIOpt("result_url",
               help="The API's address as receivers reach it, for the notifications' "
                    "link to the run (e.g. https://cloudpulse.example.com); default "
                    "http://<[api] host>:<[api] port>."),
    cfg.FloatOpt("timeout", default=10.0, min=0.1,
                 help="Seconds a receiver has to answer one notification."),
    cfg.FloatOpt("retry_initial", default=2.0, min=0.1,
                 help="Seconds before the first retry of a notification a receiver did "
                      "not take; doubled at each retry, up to retry_max."),
    cfg.FloatOpt("retry_max", default=300.0, min=0.1,
                 help="Seconds between two retries at most."),
    cfg.Opt("give_up_after", type=Interval(), default="1d",
            help="A notification not delivered this long after it was made is dropped "
                 "(logged); -1 = never."),
]

availability_opts = [
    cfg.Opt("windows", type=types.List(item_type=Interval()), default=["1h", "24h", "30d"],
            help="The windows availability is reported over by default (GET "
                 "/cpulse/availability, /metrics): 1h, 24h, 30d "
                 "(docs/availability.md)."),
    cfg.FloatOpt("slo", default=0.999, min=0.0, max=1.0,
                 help="The availability objective the error budget is counted against: "
                      "0.999 allows 43 minutes of failure in 30 days."),
    cfg.Opt("max_gap", type=Interval(), default="10m",
            help="Two runs of a check type further apart than this, or than twice its "
                 "periodic interval when that is longer, leave the time between them "
                 "unknown (no run looked: neither up nor down)."),
    cfg.IntOpt("history_days", default=90, min=1,
               help="Days of history kept for availability (a few rows per component and "
                    "outage, whatever the number of runs); at least the longest window."),
]

upgrade_opts = [
    cfg.Opt("max_watch", type=Interval(), default="4h",
            help="The longest an upgrade watch runs when it is not stopped (POST "
                 "/cpulse/check {\"type\": \"upgrade\", \"watch\": seconds}); it holds "
                 "one of the runner's workers meanwhile."),
    cfg.FloatOpt("max_outage", default=60.0, min=0.0,
                 help="Seconds a workload may be cut during a watch (its longest outage) "
                      "before the watch fails it; a minor update's watch allows none."),
    cfg.FloatOpt("max_loss", default=1.0, min=0.0, max=100.0,
                 help="Percent of a workload's probes a watch may lose before it fails "
                      "it; a minor update's watch allows none."),
    cfg.StrOpt("cidr", default="198.18.50.0/24",
               help="The first network of a set a snapshot creates (create true); its "
                    "next networks take the next ranges of the same size, unless the "
                    "request gives their cidr."),
    cfg.IntOpt("max_created_vms", default=10, min=1,
               help="The most VMs a snapshot may create (create true): the set is built "
                    "with the functional check's image_file and flavor, and stays until "
                    "its snapshot is deleted."),
]

_GROUPS = [(None, default_opts), ("api", api_opts), ("cloud", cloud_opts),
           ("rally", rally_opts), ("operator", operator_opts), ("functional", functional_opts),
           ("comprehensive", comprehensive_opts),
           ("periodic", periodic_opts), ("retention", retention_opts),
           ("runner", runner_opts), ("coordination", coordination_opts),
           ("notifications", notifications_opts), ("availability", availability_opts),
           ("upgrade", upgrade_opts)]


def list_opts():
    """For oslo-config-generator (entry point oslo.config.opts = cloudpulse); the options
    of a [cloud:<entry>] section are shown under that name."""
    return ([("DEFAULT" if g is None else g, opts) for g, opts in _GROUPS]
            + [(_cloud_group("<entry>"), _cloud_group_opts())])


def register_opts(conf):
    for group, opts in _GROUPS:
        conf.register_opts(opts, group=group)


def _default_config_files():
    files = cfg.find_config_files(project="cloudpulse")
    if os.path.exists("/etc/oscheck.conf"):
        files.append("/etc/oscheck.conf")
    return files


def load(args=None, default_config_files=None):
    """A validated ConfigOpts; raises ConfigError naming the bad option."""
    conf = cfg.ConfigOpts()
    register_opts(conf)
    try:
        conf(args if args is not None else [], project="cloudpulse",
             default_config_files=(default_config_files if default_config_files is not None
                                   else _default_config_files()))
    except (cfg.Error, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    validate(conf)
    return conf


def validate(conf):
    """Read every option once so a bad value fails now, naming its group and option."""
    for group, opts in _GROUPS:
        section = conf if group is None else conf[group]
        for opt in opts:
            try:
                getattr(section, opt.dest)
            except (cfg.Error, ValueError) as exc:
                raise ConfigError("[%s] %s: %s" % (group or "DEFAULT", opt.dest,
                                                   _explain(exc))) from None
    _validate_access(conf)
    _validate_notifications(conf)
    _validate_availability(conf)
    if conf.upgrade.max_watch <= 0:
        raise ConfigError("[upgrade] max_watch: a period such as 4h (a watch is bounded)")
    try:
        ipaddress.ip_network(conf.upgrade.cidr)
    except ValueError as exc:
        raise ConfigError("[upgrade] cidr: %s" % exc) from None
    clouds(conf)


def _validate_availability(conf):
    group = conf.availability
    if not group.windows or any(w <= 0 for w in group.windows):
        raise ConfigError("[availability] windows: one or more periods such as 1h, 24h, "
                          "30d (not -1)")
    if max(group.windows) > group.history_days * 86400:
        raise ConfigError("[availability] history_days: %d days keep less than the "
                          "longest of [availability] windows (%s)"
                          % (group.history_days,
                             availability.format_period(max(group.windows))))
    if group.max_gap <= 0:
        raise ConfigError("[availability] max_gap: a period such as 10m (not -1)")


def max_gaps(conf, cloud=None):
    """{CheckType: seconds}: a run later than this after the type's previous one starts
    a new span of its history ([availability] max_gap, or twice its periodic interval on
    `cloud`, a CloudSettings)."""
    periodic = intervals(conf, cloud)
    return {t: max(conf.availability.max_gap, 2 * periodic.get(t, 0))
            for t in results.CheckType}


def _validate_access(conf):
    """noauth only where nobody but this machine can call: a loopback host."""
    if conf.api.auth_strategy == "noauth" and not _is_loopback(conf.api.host):
        raise ConfigError(
            "[api] auth_strategy = noauth lets every caller act as admin, so [api] host "
            "must be a loopback address (127.0.0.1, ::1, localhost), not %s; choose "
            "[api] auth_strategy = keystone or token_file to listen there"
            % conf.api.host)
    if conf.api.auth_strategy == "token_file" and not conf.api.token_file:
        raise ConfigError("[api] token_file: unset; [api] auth_strategy = token_file "
                          "reads its tokens there")


def _validate_notifications(conf):
    group = conf.notifications
    for url in group.webhooks:
        if not is_webhook_url(url):
            raise ConfigError("[notifications] webhooks: %r is not an http or https URL"
                              % url)
    if group.webhooks and not (group.secret or group.secret_file):
        raise ConfigError("[notifications] secret: unset; [notifications] webhooks are "
                          "signed with it (or set secret_file)")
    for check_type in group.type_thresholds:
        if check_type not in [t.value for t in results.CheckType]:
            raise ConfigError("[notifications] type_thresholds: %r is not a check type"
                              % check_type)
        try:
            Thresholds()(group.type_thresholds[check_type])
        except ValueError as exc:
            raise ConfigError("[notifications] type_thresholds: %s" % exc) from None
    if group.webhooks:
        webhook_secret(conf)


def is_webhook_url(url):
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme in ("http", "https") and bool(parsed.hostname)


def webhook_secret(conf):
    """[notifications] secret, or the first line of secret_file (owner-only)."""
    group = conf.notifications
    if group.secret:
        return group.secret
    path = group.secret_file
    try:
        if os.stat(path).st_mode & 0o007:
            raise ConfigError("[notifications] secret_file: %s is readable by others; "
                              "chmod 600 it" % path)
        with open(path) as f:
            secret = f.readline().strip()
    except OSError as exc:
        raise ConfigError("[notifications] secret_file: %s: %s" % (path, exc.strerror)) \
            from None
    if not secret:
        raise ConfigError("[notifications] secret_file: %s is empty" % path)
    return secret


def thresholds(conf):
    """{CheckType: (fail_after, recover_after)} of every type."""
    group = conf.notifications
    return {t: Thresholds()(group.type_thresholds.get(t.value, group.thresholds))
            for t in results.CheckType}


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:   # a host name other than localhost may resolve anywhere
        return False


def _explain(exc):
    # oslo.config's message embeds a LocationInfo repr; keep the file and the reason.
    text = str(exc)
    if "is not valid: " not in text:
        return text
    reason = text.split("is not valid: ", 1)[1]
    where = re.search(r"detail='([^']*)'", text)
    return "%s (in %s)" % (reason, where.group(1)) if where else reason


def rally_connection(conf):
    return conf.rally.connection or "sqlite:///%s" % os.path.join(
        conf.state_path, "rally.sqlite")


def intervals(conf, cloud=None):
    """{CheckType: seconds} for the types that run periodically (on `cloud`, a
    CloudSettings: its own intervals where it has them)."""
    every = {t: getattr(conf.periodic, "%s_interval" % t.value) for t in results.CheckType}
    if cloud is not None:
        every.update(cloud.intervals)
    return {t: seconds for t, seconds in every.items() if seconds != -1}


class CloudSettings:
    """One checked cloud: its clouds.yaml entry (`cloud`, None for the OS_* variables)
    under the name results are labelled with (`name`; None: the connection's own, e.g.
    envvars), and what it does not share with the others (None: the server-wide value)."""

    def __init__(self, name, cloud, clouds_file, region_name, timeout, horizon_url,
                 scenarios_dir, service_map, intervals=None):
        self.name, self.cloud, self.clouds_file = name, cloud, clouds_file
        self.region_name, self.timeout, self.horizon_url = region_name, timeout, horizon_url
        self.scenarios_dir, self.service_map = scenarios_dir, service_map
        self.intervals = dict(intervals or {})   # {CheckType: seconds} of its own

    def __repr__(self):
        return "CloudSettings(%r)" % self.name


def _cloud_group(name):
    return "cloud:%s" % name


def _cloud_group_opts():
    """The options of a [cloud:<entry>] section: each has no default, so that unset
    reads as None and the server-wide value applies."""
    by_name = {(group, opt.dest): opt for group, opts in _GROUPS for opt in opts}
    opts = [cfg.Opt(n, type=by_name[group, n].type, help="[%s] %s for this cloud only."
                    % (group or "DEFAULT", n)) for n, group in _PER_CLOUD.items()]
    opts += [cfg.Opt("%s_interval" % t.value, type=Interval(),
                     help="[periodic] %s_interval for this cloud only." % t.value)
             for t in results.CheckType]
    return opts


def clouds(conf):
    """[CloudSettings] of the clouds this server checks, the default one first: [cloud]
    clouds, each with its [cloud:<entry>] section, or the single [cloud] cloud.
    ConfigError naming the option when they cannot be."""
    group = conf.cloud
    if not group.clouds:
        return [CloudSettings(group.cloud, group.cloud, group.clouds_file,
                              group.region_name, group.timeout, group.horizon_url,
                              conf.scenarios_dir, conf.operator.service_map)]
    if group.cloud:
        raise ConfigError("[cloud] cloud and [cloud] clouds: set one (clouds lists every "
                          "cloud checked, the default one first)")
    if len(set(group.clouds)) != len(group.clouds) or not all(group.clouds):
        raise ConfigError("[cloud] clouds: %s names a cloud twice, or an empty one"
                          % ", ".join(group.clouds))
    settings, opts = [], _cloud_group_opts()
    for name in group.clouds:
        section = _cloud_group(name)
        if section not in conf:
            conf.register_opts(opts, group=section)
        own = conf[section]
        values = {}
        for opt in opts:
            try:
                values[opt.dest] = getattr(own, opt.dest)
            except (cfg.Error, ValueError) as exc:
                raise ConfigError("[%s] %s: %s" % (section, opt.dest, _explain(exc))) \
                    from None

        def value(opt_name, fallback):
            return fallback if values[opt_name] is None else values[opt_name]
        settings.append(CloudSettings(
            name, name, group.clouds_file, value("region_name", group.region_name),
            value("timeout", group.timeout), value("horizon_url", group.horizon_url),
            value("scenarios_dir", conf.scenarios_dir),
            value("service_map", conf.operator.service_map),
            {t: values["%s_interval" % t.value] for t in results.CheckType
             if values["%s_interval" % t.value] is not None}))
    return settings
