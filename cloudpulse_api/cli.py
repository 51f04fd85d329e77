"""`cpulse`: the command line over the CloudPulse API.

    cpulse check endpoint            # prints the handle
    cpulse check all --wait          # waits, prints the results
    cpulse result HANDLE [-f table|json|junit]
    cpulse results [--type T] [--state S] [--since 1h] [--limit N]   # lists runs
    cpulse availability [--window 24h,30d] [--type T]   # against the SLO
    cpulse status                    # each check type's verdict now, per cloud
    cpulse upgrade snapshot          # before an upgrade: the project's resources
    cpulse upgrade watch [HANDLE] --seconds 3600   # during it: each workload's outages
    cpulse upgrade verify [HANDLE] --wait   # after it: what changed (docs/upgrade.md)
    cpulse upgrade create --resources set.yaml --wait   # or: a set the server makes

Server address: --url, else $CPULSE_URL, else `url` in the [cpulse] section of
~/.cpulserc, else http://127.0.0.1:9999.
Token (X-Auth-Token): --os-token or $OS_TOKEN, else one from keystone for --os-cloud or
$OS_CLOUD (clouds.yaml) or the OS_* variables, as the openstack client gets it, else none.
TLS (https:// behind nginx): the CA bundle --os-cacert or $OS_CACERT, else the system's.
"""

import argparse
import configparser
import json
import os
import sys
import time
import urllib.parse

import requests
import yaml

from cloudpulse import availability
from cloudpulse import results
from cloudpulse_api import junit

DEFAULT_URL = "http://127.0.0.1:9999"
EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_RUNNING = 0, 1, 2, 3
EXIT_CODES = """exit codes (cpulse check --wait, cpulse result):
  0  healthy: every check passed (or was skipped)
  1  a check failed: the cloud is unhealthy (whatever else the run says)
  2  a check could not run (a result with status error, the run interrupted, or no
     result at all); also a usage, connection or access error (401, 403, 404), the
     message saying which
  3  the run is still queued or running (cpulse check --wait: --timeout passed)
cpulse check without --wait and cpulse results: 0, or 2 on an error.
cpulse availability: 0, 1 when a check type misses the SLO in a window, 2 on an error.
cpulse status: 0, 1 when a check type of a cloud is unhealthy, 2 on an error."""


class CliError(Exception):
    pass


def server_url(flag=None, rc_path="~/.cpulserc"):
    if flag:
        return flag
    if os.environ.get("CPULSE_URL"):
        return os.environ["CPULSE_URL"]
    path = os.path.expanduser(rc_path)
    if os.path.exists(path):
        rc = configparser.ConfigParser()
        try:
            rc.read(path)
        except configparser.Error as exc:
            raise CliError("%s: %s" % (path, exc)) from None
        if rc.has_option("cpulse", "url"):
            return rc.get("cpulse", "url")
    return DEFAULT_URL


def auth_token(token=None, cloud=None):
    """The token to send: given, or from keystone for a clouds.yaml cloud or the OS_*
    variables (openstacksdk's loading: every auth type and option the openstack client
    takes); None when there is nothing to authenticate with."""
    token = token or os.environ.get("OS_TOKEN")
    if token:
        return token
    cloud = cloud or os.environ.get("OS_CLOUD")
    if not cloud and not os.environ.get("OS_AUTH_URL"):
        return None
    import keystoneauth1.exceptions
    import openstack.config
    import openstack.exceptions
    try:
        return openstack.config.get_cloud_region(cloud=cloud).get_session().get_token()
    except (openstack.exceptions.SDKException,
            keystoneauth1.exceptions.ClientException) as exc:
        raise CliError("cannot get a token from keystone for %s: %s"
                       % ("cloud %s" % cloud if cloud else "the OS_* variables",
                          results.redact(str(exc).splitlines()[0]))) from None


# What a refusal means to the person typing the command.
_ACCESS_HINTS = {
    401: "give a token: --os-token or $OS_TOKEN, --os-cloud or $OS_CLOUD, or OS_* "
         "variables",
    403: "ask an admin of the cloud",
}


class Client:
    def __init__(self, url, timeout=10.0, token=None, cacert=None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.headers = {"X-Auth-Token": token} if token else {}
        self.verify = cacert or True   # True: the system's CAs (or REQUESTS_CA_BUNDLE)

    def _call(self, method, path, timeout=None, **kwargs):
        try:
            resp = requests.request(method, self.url + path, timeout=timeout or self.timeout,
                                    headers=self.headers, verify=self.verify,
                                    **kwargs)
        except requests.RequestException as exc:
            raise CliError("cannot reach the CloudPulse API at %s: %s"
                           % (self.url, type(exc).__name__)) from None
        if resp.status_code == 204:   # done, nothing to say (a DELETE)
            return None
        try:
            body = resp.json()
        except ValueError:
            raise CliError("%s %s: HTTP %s, not a CloudPulse answer"
                           % (method, path, resp.status_code)) from None
        if resp.status_code >= 400:
            message = body.get("message") or "HTTP %s" % resp.status_code
            hint = _ACCESS_HINTS.get(resp.status_code)
            raise CliError("%s (%s)" % (message, hint) if hint else message)
        return body

    def check(self, check_type, cloud=None, **args):
        """The handle of a new run (or of the same one in flight); `args`: snapshot,
        watch, minor (None ones left out)."""
        body = {"type": check_type}
        body.update((k, v) for k, v in dict(args, cloud=cloud).items() if v is not None)
        return self._call("POST", "/cpulse/check", json=body)["handle"]

    def stop(self, handle):
        self._call("POST", "/cpulse/stop", json={"handle": handle})

    def take_snapshot(self, cloud=None, project_id=None, all_projects=False):
        body = {"create": False}
        for name, value in (("cloud", cloud), ("project_id", project_id)):
            if value is not None:
                body[name] = value
        if all_projects:
            body["all_projects"] = True
        return self._call("POST", "/cpulse/snapshot", json=body)

    def snapshots(self, cloud=None):
        return self._call("GET", "/cpulse/snapshots",
                          params={"cloud": cloud} if cloud else {})["snapshots"]

    def snapshot(self, handle):
        return self._call("GET", "/cpulse/snapshot", params={"handle": handle})

    def create_set(self, resources, cloud=None):
        """The handle of the run that creates `resources` and snapshots them."""
        body = {"create": True, "resources": resources}
        if cloud is not None:
            body["cloud"] = cloud
        return self._call("POST", "/cpulse/snapshot", json=body)["handle"]

    def delete_snapshot(self, handle, keep_resources=False):
        """None when it is deleted; the handle of the run that removes its set first."""
        answer = self._call("DELETE", "/cpulse/snapshot", params={
            "handle": handle, "keep_resources": "true" if keep_resources else "false"})
        return answer["handle"] if answer else None

    def result(self, handle, wait=0.0):
        return results.CheckRun.from_api(
            self._call("GET", "/cpulse/result", params={"handle": handle, "wait": wait},
                       timeout=self.timeout + wait))

    def results(self, **params):
        """RunSummaries of GET /cpulse/results (params: type, state, since, limit,
        marker, project_id, cloud; None ones left out)."""
        doc = self._call("GET", "/cpulse/results",
                         params={k: v for k, v in params.items() if v is not None})
        return [results.RunSummary.from_api(run) for run in doc["runs"]]

    def availability(self, **params):
        """The availability.Report of GET /cpulse/availability (params: window, type,
        project_id, cloud; None ones left out)."""
        return availability.Report.from_api(self._call(
            "GET", "/cpulse/availability",
            params={k: v for k, v in params.items() if v is not None}))

    def status(self):
        """[availability.CloudStatus] of GET /cpulse/status."""
        return [availability.CloudStatus.from_dict(cloud)
                for cloud in self._call("GET", "/cpulse/status")["clouds"]]

    def add_webhook(self, url, secret=None, all_projects=None):
        body = {"url": url}
        if secret is not None:
            body["secret"] = secret
        if all_projects is not None:
            body["all_projects"] = all_projects
        return self._call("POST", "/cpulse/webhooks", json=body)

    def webhooks(self):
        return self._call("GET", "/cpulse/webhooks")["webhooks"]

    def delete_webhook(self, webhook_id):
        self._call("DELETE", "/cpulse/webhooks/%s" % urllib.parse.quote(webhook_id, safe=""))

    def wait(self, handle, timeout):
        """Long-poll the server (it answers as soon as the run finishes) until timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            run = self.result(handle, wait=max(0.0, min(60.0, left)))
            if run.state in (results.RunState.FINISHED, results.RunState.INTERRUPTED) \
                    or time.monotonic() >= deadline:
                return run


def format_table(run):
    rows = [(r.name, r.component, r.status.value, "%.2f" % r.duration,
             r.details) for r in run.results]
    lines = ["handle %s  state %s  %s" % (run.handle, run.state.value,
                                          "HEALTHY" if run.healthy else
                                          ("UNHEALTHY" if run.failed else "")),
             "verdict: %s" % run.verdict()]
    lines.extend(_table(("check", "component", "status", "seconds", "details"), rows))
    return "\n".join(line.rstrip() for line in lines)


def _table(header, rows):
    """Columns as wide as their widest cell; the last one unpadded."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    widths[-1] = 0
    fmt = "  ".join("{:<%d}" % w for w in widths[:-1]) + "  {}"
    return [fmt.format(*row).rstrip() for row in [header, *rows]]


def format_runs(summaries):
    """Runs as a table, one line each, newest first."""
    rows = [(s.handle, s.created_at.isoformat(timespec="seconds"), s.state.value,
             ",".join(t.value for t in s.check_types),
             ("yes" if s.healthy else "no") if s.state == results.RunState.FINISHED
             else "", s.cloud or "-", s.project_id or "-") for s in summaries]
    return "\n".join(_table(("handle", "created", "state", "types", "healthy", "cloud",
                              "project"), rows))


def _percent(ratio):
    return "-" if ratio is None else "%.3f%%" % (100 * ratio)


def format_availability(report):
    """One table per window: each key's availability, its times and error budget."""
    lines = ["cloud %s  %s  slo %s" % (report.cloud, "project %s" % report.project_id
                                        if report.project_id else "the server's own runs",
                                        _percent(report.slo))]
    for seconds, checks in report.windows:
        rows = [(a.key, _percent(a.ratio), "%.0f" % a.down, "%.0f" % a.error,
                 "%.0f" % a.unknown, "%.0f" % a.budget_left, str(len(a.outages)),
                 "; ".join("%s %s for %.0f s%s" % (o.start.isoformat(timespec="seconds"),
                                                   o.state.value, o.seconds,
                                                   " (ongoing)" if o.ongoing else "")
                           for o in a.outages[-3:]))
                for a in checks]
        lines += ["", "last %s" % availability.format_period(seconds)]
        lines += _table(("check", "available", "down s", "error s", "unknown s",
                         "budget left s", "outages", "latest outages"), rows)
    return "\n".join(line.rstrip() for line in lines)


def format_status(clouds):
    """A line per cloud and check type: its verdict, since when, what fails."""
    rows = [(cloud.cloud, c.check_type.value, c.verdict.value,
             c.since.isoformat(timespec="seconds") if c.since else "-",
             "; ".join("%s: %s" % (f.key, f.details) for f in c.failing))
            for cloud in clouds for c in cloud.checks]
    return "\n".join(_table(("cloud", "check", "verdict", "since", "failing"), rows))


def format_snapshot(doc):
    """A snapshot's summary: when, of what, and per kind what it recorded."""
    lines = ["snapshot %s  taken %s  cloud %s  %s" % (
        doc["handle"], doc["timestamp"], doc["cloud"],
        "every project" if doc["all_projects"] else "project %s" % doc["project_id"])]
    rows = [(kind, str(len(labels)), ", ".join(labels))
            for kind, labels in sorted(doc["resources"].items())]
    lines += _table(("kind", "count", "recorded"), rows)
    return "\n".join(lines)


def format_snapshots(docs):
    rows = [(d["handle"], d["timestamp"], d["cloud"],
             "all" if d["all_projects"] else d["project_id"] or "-",
             str(sum(len(labels) for labels in d["resources"].values()))) for d in docs]
    return "\n".join(_table(("handle", "taken", "cloud", "project", "resources"), rows))


def slo_missed(report):
    """A check type (its runs as a whole) below the SLO in a window."""
    types = {t.value for t in results.CheckType}
    return any(a.slo_met is False for _, checks in report.windows for a in checks
               if a.key in types)


def format_webhooks(hooks):
    rows = [(h["id"], h["url"], h["project_id"] or "-",
             "all" if h["all_projects"] else "project", h["created_at"]) for h in hooks]
    return "\n".join(_table(("id", "url", "project", "gets", "created"), rows))


def exit_code(run):
    """EXIT_CODES' rule for a run: running (3), a check failed (1), a check could not
    run (2), healthy (0)."""
    if run.state in (results.RunState.QUEUED, results.RunState.RUNNING):
        return EXIT_RUNNING
    if any(r.status == results.Status.FAILED for r in run.results):
        return EXIT_FAILED
    return EXIT_OK if run.healthy else EXIT_ERROR


def _print_run(run, fmt):
    if fmt == "json":
        print(json.dumps(run.to_api(), indent=2))
    elif fmt == "junit":
        print(junit.to_junit(run))
    else:
        print(format_table(run))


RUN_FORMATS = ("table", "json", "junit")


def build_parser():
    parser = argparse.ArgumentParser(prog="cpulse", description=__doc__.split("\n")[0],
                                     epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="CloudPulse API (default: $CPULSE_URL, ~/.cpulserc, "
                                      + DEFAULT_URL + ")")
    parser.add_argument("--os-token", help="keystone token to send (default: $OS_TOKEN)")
    parser.add_argument("--os-cloud", help="clouds.yaml cloud to get a token for "
                                           "(default: $OS_CLOUD, else the OS_* variables)")
    parser.add_argument("--os-cacert", default=os.environ.get("OS_CACERT"),
                        help="CA bundle to verify an https:// server with (default: "
                             "$OS_CACERT, else the system's)")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="start a check run and print its handle")
    check.add_argument("type", help="endpoint, operator, functional, comprehensive, "
                                    "upgrade or all")
    check.add_argument("--cloud", help="the cloud to check, of those the server checks "
                                       "(default: its first)")
    _run_options(check)
    result = sub.add_parser("result", help="print the results of a handle")
    result.add_argument("handle")
    result.add_argument("-f", "--format", choices=RUN_FORMATS, default="table",
                        help="table, json or junit (JUnit XML)")
    listing = sub.add_parser("results", help="list runs, newest first")
    listing.add_argument("--type", choices=[t.value for t in results.CheckType],
                         help="runs that checked this type")
    listing.add_argument("--state", choices=[s.value for s in results.RunState])
    listing.add_argument("--since", help="runs created since an ISO 8601 time "
                                         "(2026-05-01T12:00:00Z) or a duration ago (30m, "
                                         "1h, 2d)")
    listing.add_argument("--limit", type=int, help="at most this many (server default "
                                                   "50, at most 500)")
    listing.add_argument("--marker", help="the page after this handle (the last listed)")
    listing.add_argument("--project-id", help="one project's runs (admin)")
    listing.add_argument("--cloud", help="the runs that checked this cloud")
    listing.add_argument("-f", "--format", choices=("table", "json"), default="table")
    avail = sub.add_parser("availability", help="availability, outages and error budget "
                                                "per check (docs/availability.md)")
    avail.add_argument("--window", help="periods ending now, comma-separated: 1h,24h,30d "
                                        "(default: the server's [availability] windows)")
    avail.add_argument("--type", choices=[t.value for t in results.CheckType],
                       help="one check type's checks")
    avail.add_argument("--project-id", help="one project's runs (admin; default: the "
                                            "server's own, a member's: their project's)")
    avail.add_argument("--cloud", help="the cloud (default: the server's first)")
    avail.add_argument("-f", "--format", choices=("table", "json"), default="table")
    stat = sub.add_parser("status", help="each check type's verdict now, per cloud")
    stat.add_argument("-f", "--format", choices=("table", "json"), default="table")
    hooks = sub.add_parser("webhook", help="the webhooks that receive health transitions "
                                           "(docs/notifications.md)")
    hook_sub = hooks.add_subparsers(dest="webhook_command", required=True)
    add = hook_sub.add_parser("add", help="register a webhook; prints it (and the secret "
                                          "the server made, when --secret is not given)")
    add.add_argument("webhook_url", metavar="URL",
                     help="http or https URL that receives the POSTs")
    add.add_argument("--secret", help="the HMAC key (16 to 255 characters); default: one "
                                      "the server makes, printed this once")
    scope = add.add_mutually_exclusive_group()
    scope.add_argument("--all-projects", dest="all_projects", action="store_true",
                       default=None, help="every transition (admin; an admin's default)")
    scope.add_argument("--own-project", dest="all_projects", action="store_false",
                       help="the caller's project's transitions only")
    hook_list = hook_sub.add_parser("list", help="the webhooks you may see")
    hook_list.add_argument("-f", "--format", choices=("table", "json"), default="table")
    delete = hook_sub.add_parser("delete", help="delete a webhook")
    delete.add_argument("id")
    _upgrade_parser(sub)
    return parser


def _upgrade_parser(sub):
    upgrade = sub.add_parser("upgrade", help="snapshot before an upgrade, verify after "
                                             "(docs/upgrade.md)")
    up_sub = upgrade.add_subparsers(dest="upgrade_command", required=True)
    take = up_sub.add_parser("snapshot", help="record the project's resources and their "
                                              "state (creates nothing); prints it")
    take.add_argument("--cloud", help="the cloud (default: the server's first)")
    whose = take.add_mutually_exclusive_group()
    whose.add_argument("--project-id", help="another project's resources (admin)")
    whose.add_argument("--all-projects", action="store_true",
                       help="every project's resources (admin)")
    take.add_argument("-f", "--format", choices=("table", "json"), default="table")
    up_list = up_sub.add_parser("list", help="the snapshots you may see, newest first")
    up_list.add_argument("--cloud", help="of this cloud only")
    up_list.add_argument("-f", "--format", choices=("table", "json"), default="table")
    show = up_sub.add_parser("show", help="a snapshot, with every record (json)")
    show.add_argument("handle")
    create = up_sub.add_parser("create", help="have the server create a set of resources, "
                                              "prove it and snapshot it, in your project; "
                                              "prints the handle")
    create.add_argument("--resources", required=True, metavar="FILE",
                        help="YAML or JSON: {image, net, router, vm: [...], connections: "
                             "[[vm, vm]]} (docs/upgrade.md)")
    create.add_argument("--cloud", help="the cloud (default: the server's first)")
    _run_options(create)
    forget = up_sub.add_parser("delete", help="forget a snapshot; a set the server created "
                                              "is removed first (prints that run's handle)")
    forget.add_argument("handle")
    forget.add_argument("--keep-resources", action="store_true",
                        help="leave a created set in the cloud")
    _run_options(forget)
    verify = up_sub.add_parser("verify", help="start an upgrade run of a snapshot (default: "
                                              "the project's newest) and print its handle")
    verify.add_argument("handle", nargs="?", help="the snapshot (cpulse upgrade list)")
    verify.add_argument("--cloud", help="the snapshot's cloud (default: the server's "
                                        "first)")
    _run_options(verify)
    watch = up_sub.add_parser("watch", help="start a watch of a snapshot's workloads "
                                            "(default: the project's newest snapshot) "
                                            "during an upgrade; prints its handle")
    watch.add_argument("handle", nargs="?", help="the snapshot (cpulse upgrade list)")
    watch.add_argument("--seconds", type=int, default=3600,
                       help="how long at most (default 3600; cpulse upgrade stop ends it)")
    watch.add_argument("--minor", action="store_true",
                       help="a minor update: any loss fails the workload")
    watch.add_argument("--cloud", help="the snapshot's cloud (default: the server's first)")
    _run_options(watch)
    stop = up_sub.add_parser("stop", help="end a watch now (it records what it saw)")
    stop.add_argument("run", help="the watch's handle")


def _run_options(command):
    """The options of a command that starts a run: --wait, --timeout, --format."""
    command.add_argument("--wait", action="store_true", help="wait and print the results")
    command.add_argument("--timeout", type=float, default=600.0,
                         help="seconds to wait with --wait (default 600)")
    command.add_argument("-f", "--format", choices=RUN_FORMATS, default="table",
                         help="with --wait: table, json or junit (JUnit XML)")


def _webhook_command(client, args):
    if args.webhook_command == "add":
        print(json.dumps(client.add_webhook(args.webhook_url, args.secret,
                                            args.all_projects),
                         indent=2))
    elif args.webhook_command == "list":
        hooks = client.webhooks()
        print(json.dumps(hooks, indent=2) if args.format == "json"
              else format_webhooks(hooks))
    else:
        client.delete_webhook(args.id)
    return EXIT_OK


# The upgrade commands that start a run (--wait waits for it).
_UPGRADE_RUNS = ("verify", "watch", "create", "delete")


def _upgrade_command(client, args):
    """cpulse upgrade snapshot, list, show and stop (the others start a run)."""
    command = args.upgrade_command
    if command in ("snapshot", "list"):
        if command == "snapshot":
            docs = client.take_snapshot(args.cloud, args.project_id, args.all_projects)
            text = format_snapshot(docs)
        else:
            docs = client.snapshots(args.cloud)
            text = format_snapshots(docs)
        print(json.dumps(docs, indent=2) if args.format == "json" else text)
    elif command == "show":
        print(json.dumps(client.snapshot(args.handle), indent=2))
    else:
        client.stop(args.run)
    return EXIT_OK


def _upgrade_run(client, args):
    """The handle of the run an upgrade command starts (None: a delete done at once)."""
    command = args.upgrade_command
    if command == "create":
        return client.create_set(_resources_file(args.resources), args.cloud)
    if command == "delete":
        return client.delete_snapshot(args.handle, args.keep_resources)
    watching = command == "watch"
    return client.check(results.CheckType.UPGRADE.value, args.cloud, snapshot=args.handle,
                        watch=args.seconds if watching else None,
                        minor=args.minor if watching and args.minor else None)


def _resources_file(path):
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except OSError as exc:
        raise CliError("--resources: %s: %s" % (path, exc.strerror)) from None
    except yaml.YAMLError as exc:
        raise CliError("--resources: %s is not YAML or JSON: %s" % (
            path, str(exc).splitlines()[0])) from None


def _list_runs(client, args):
    summaries = client.results(type=args.type, state=args.state, since=args.since,
                               limit=args.limit, marker=args.marker,
                               project_id=args.project_id, cloud=args.cloud)
    if args.format == "json":
        print(json.dumps([s.to_api() for s in summaries], indent=2))
    else:
        print(format_runs(summaries))
    return EXIT_OK


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.os_cacert and not os.path.isfile(args.os_cacert):
            raise CliError("--os-cacert: %s: no such file" % args.os_cacert)
        client = Client(server_url(args.url), token=auth_token(args.os_token, args.os_cloud),
                        cacert=args.os_cacert)
        if args.command == "results":
            return _list_runs(client, args)
        if args.command == "webhook":
            return _webhook_command(client, args)
        if args.command == "status":
            clouds = client.status()
            print(json.dumps([c.to_dict() for c in clouds], indent=2) if args.format == "json"
                  else format_status(clouds))
            return EXIT_FAILED if any(c.verdict == availability.Verdict.UNHEALTHY
                                      for c in clouds) else EXIT_OK
        if args.command == "availability":
            report = client.availability(window=args.window, type=args.type,
                                         project_id=args.project_id, cloud=args.cloud)
            print(json.dumps(report.to_api(), indent=2) if args.format == "json"
                  else format_availability(report))
            return EXIT_FAILED if slo_missed(report) else EXIT_OK
        if args.command == "upgrade" and args.upgrade_command not in _UPGRADE_RUNS:
            return _upgrade_command(client, args)
        if args.command == "check":
            handle = client.check(args.type, args.cloud)
        elif args.command == "upgrade":
            handle = _upgrade_run(client, args)
            if handle is None:
                return EXIT_OK
        if args.command in ("check", "upgrade"):
            if not args.wait:
                print(handle)
                return EXIT_OK
            run = client.wait(handle, args.timeout)
        else:
            run = client.result(args.handle)
    except CliError as exc:
        print("cpulse: %s" % exc, file=sys.stderr)
        return EXIT_ERROR
    _print_run(run, args.format)
    return exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
