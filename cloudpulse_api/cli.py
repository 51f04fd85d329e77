"""`cpulse`: the command line over the CloudPulse API.

    cpulse check endpoint            # prints the handle
    cpulse check all --wait          # waits, prints the results, exit 1 if a check failed
    cpulse result HANDLE [-f json]

Server address: --url, else $CPULSE_URL, else `url` in the [cpulse] section of
~/.cpulserc, else http://127.0.0.1:9999.
Token (X-Auth-Token): --os-token or $OS_TOKEN, else one from keystone for --os-cloud or
$OS_CLOUD (clouds.yaml) or the OS_* variables, as the openstack client gets it, else none.
Exit codes: 0 healthy, 1 a check failed, 2 usage, connection or access error (401, 403,
404), 3 still running.
"""

import argparse
import configparser
import json
import os
import sys
import time

import requests

from cloudpulse import results

DEFAULT_URL = "http://127.0.0.1:9999"
EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_RUNNING = 0, 1, 2, 3


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
    def __init__(self, url, timeout=10.0, token=None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.headers = {"X-Auth-Token": token} if token else {}

    def _call(self, method, path, timeout=None, **kwargs):
        try:
            resp = requests.request(method, self.url + path, timeout=timeout or self.timeout,
                                    headers=self.headers, **kwargs)
        except requests.RequestException as exc:
            raise CliError("cannot reach the CloudPulse API at %s: %s"
                           % (self.url, type(exc).__name__)) from None
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

    def check(self, check_type):
        return self._call("POST", "/cpulse/check", json={"type": check_type})["handle"]

    def result(self, handle, wait=0.0):
        return results.CheckRun.from_api(
            self._call("GET", "/cpulse/result", params={"handle": handle, "wait": wait},
                       timeout=self.timeout + wait))

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
    header = ("check", "component", "status", "seconds", "details")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else \
        [len(h) for h in header]
    widths[-1] = len(header[-1])   # details is last and left unpadded
    lines = ["handle %s  state %s  %s" % (run.handle, run.state.value,
                                          "HEALTHY" if run.healthy else
                                          ("UNHEALTHY" if run.failed else "")),
             "verdict: %s" % run.verdict()]
    fmt = "  ".join("{:<%d}" % w for w in widths[:-1]) + "  {}"
    lines.append(fmt.format(*header))
    lines.extend(fmt.format(*row) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def _exit_code(run):
    if run.state not in (results.RunState.FINISHED, results.RunState.INTERRUPTED):
        return EXIT_RUNNING
    return EXIT_OK if run.healthy else EXIT_FAILED


def _print_run(run, fmt):
    if fmt == "json":
        print(json.dumps(run.to_api(), indent=2))
    else:
        print(format_table(run))


def build_parser():
    parser = argparse.ArgumentParser(prog="cpulse", description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="CloudPulse API (default: $CPULSE_URL, ~/.cpulserc, "
                                      + DEFAULT_URL + ")")
    parser.add_argument("--os-token", help="keystone token to send (default: $OS_TOKEN)")
    parser.add_argument("--os-cloud", help="clouds.yaml cloud to get a token for "
                                           "(default: $OS_CLOUD, else the OS_* variables)")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="start a check run and print its handle")
    check.add_argument("type", help="endpoint, operator, functional, comprehensive, "
                                    "upgrade or all")
    check.add_argument("--wait", action="store_true", help="wait and print the results")
    check.add_argument("--timeout", type=float, default=600.0,
                       help="seconds to wait with --wait (default 600)")
    check.add_argument("-f", "--format", choices=("table", "json"), default="table")
    result = sub.add_parser("result", help="print the results of a handle")
    result.add_argument("handle")
    result.add_argument("-f", "--format", choices=("table", "json"), default="table")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        client = Client(server_url(args.url), token=auth_token(args.os_token, args.os_cloud))
        if args.command == "check":
            handle = client.check(args.type)
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
    return _exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
