"""The `<service>-status upgrade check` commands (oslo.upgradecheck) of the control-plane
services that have one: nova, cinder, neutron, placement, keystone and glance.  Each runs
over SSH on one node the service map gives the service (inside its container where the
map says so), `--json` first and the table where the release has no `--json` (nova's
tool, for one) or prints its table anyway (placement's).  Its exit code is the verdict, as oslo.upgradecheck defines it: 0 success,
1 warning, 2 failure; anything else, or an output that is neither, is an error of the
tool itself (its traceback's last line says which).  The upgrade checks record these as
pre-upgrade readiness in a snapshot, and again in the verify after the upgrade.
"""

import dataclasses
import json
import re
import typing

from cloudpulse.checks.operator import commands
from cloudpulse.checks.operator import parsers
from cloudpulse import fanout
from cloudpulse import ssh

SERVICES = tuple(commands.UPGRADE_CHECK)   # the services that have a status tool
VERDICTS = {0: "success", 1: "warning", 2: "failure"}
ERROR, ABSENT = "error", "absent"
TIMEOUT = 120.0   # seconds: a tool reads its database and calls other APIs
MAX_PARALLEL = 3  # tools at once (each a Python process on a controller)


@dataclasses.dataclass(frozen=True)
class Readiness:
    """One tool's answer on one node."""
    service: str
    node: str
    verdict: str                     # success, warning, failure, error, absent
    checks: typing.Tuple[typing.Tuple[str, str, str], ...] = ()   # (check, result, details)
    note: str = ""                   # why error or absent
    release: typing.Optional[str] = None   # the version of the service's code there

    @property
    def key(self):
        return "%s@%s" % (self.service, self.node)

    @classmethod
    def from_dict(cls, key, doc):
        """The Readiness a snapshot recorded under `key` (to_dict's)."""
        service, _, node = key.partition("@")
        return cls(service, node, doc["verdict"], tuple(map(tuple, doc["checks"])),
                   doc.get("note", ""), doc.get("release"))

    def to_dict(self):
        return {"verdict": self.verdict, "checks": [list(c) for c in self.checks],
                "note": self.note, "release": self.release}

    def says(self):
        """One line: the verdict, and what each check short of success says."""
        notable = ["%s: %s%s" % (check, result, " (%s)" % details if details else "")
                   for check, result, details in self.checks if result != "success"]
        return "%s%s%s" % (self.verdict, "; " + "; ".join(notable) if notable
                           else (": " + self.note if self.note else ""),
                           " (release %s)" % self.release if self.release else "")


def parse_json(text):
    """((check, result, details), ...) of `upgrade check --json`."""
    try:
        doc = json.loads(text)
        return tuple((c["check"], VERDICTS.get(c["result"], str(c["result"])),
                      c.get("details") or "") for c in doc["checks"])
    except (ValueError, KeyError, TypeError) as exc:
        raise parsers.ParseError("not the JSON of an upgrade check: %s" % exc) from None


_ROW = re.compile(r"^\|\s?(.*?)\s*\|$")


def parse_table(text):
    """((check, result, details), ...) of the table `upgrade check` prints: blocks of
    `Check:`, `Result:` and `Details:` rows between rules, the details wrapped over rows."""
    found, current = [], None
    for line in parsers.strip_ansi(text).splitlines():
        row = _ROW.match(line.strip())
        if row is None:
            continue
        cell = row.group(1)
        if cell.startswith("Check: "):
            current = {"check": cell[len("Check: "):], "result": "", "details": ""}
            found.append(current)
        elif current is not None and cell.startswith("Result: "):
            current["result"] = cell[len("Result: "):].lower()
        elif current is not None and cell.startswith("Details: "):
            details = cell[len("Details: "):]
            current["details"] = "" if details == "None" else details
        elif current is not None and current["details"] and cell:
            current["details"] += " " + cell.strip()
    if not found or not all(c["result"] for c in found):
        raise parsers.ParseError("no `Check:`/`Result:` rows of an upgrade check table")
    return tuple((c["check"], c["result"], c["details"]) for c in found)


def judge(service, node, result, table_result=None):
    """The Readiness of a tool's run (`result`: ssh.CommandResult of --json;
    `table_result`: of the plain command, when --json was refused)."""
    answer = table_result or result
    if answer.exit_status == commands.COMMAND_NOT_FOUND:
        return Readiness(service, node, ABSENT, note="%s is not installed on %s" % (
            commands.UPGRADE_CHECK[service].split()[0], node))
    if answer.exit_status not in VERDICTS:
        return Readiness(service, node, ERROR, note="exit status %d: %s" % (
            answer.exit_status, _last_line(answer)))
    try:
        checks = _parse(answer.stdout)
    except parsers.ParseError as exc:
        return Readiness(service, node, ERROR, note="%s; %s" % (exc, _last_line(answer)))
    return Readiness(service, node, VERDICTS[answer.exit_status], checks)


def _parse(text):
    """The checks of either output: some tools take --json and print their table."""
    try:
        return parse_json(text)
    except parsers.ParseError:
        return parse_table(text)


# A Python exception's last line (`oslo_config.cfg.NoSuchOptError: no such option ...`):
# what a crashed tool says, on whichever stream it printed its traceback.
_RAISED = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Failure)\b[^:]*:")


def _last_line(result):
    lines = [line.strip() for text in (result.stdout, result.stderr)
             for line in text.splitlines() if line.strip()]
    raised = [line for line in lines if _RAISED.match(line)]
    fallback = [line.strip() for line in (result.stderr or result.stdout).splitlines()
                if line.strip()]
    return (raised or fallback or ["no output"])[-1][:300]


def refused_json(result):
    """The tool has no --json (argparse's usage error)."""
    return result.exit_status == 2 and "unrecognized arguments: --json" in result.stderr


def _run(session, node, service):
    """A tool's Readiness on one node, over its SSH session."""
    definition = node.service(service)
    manager = definition.manager

    def run(command):
        if manager in commands.CONTAINERS:
            return session.run(commands.in_container(manager, command),
                               stdin_data=definition.container + "\n", timeout=TIMEOUT)
        return session.run(command, timeout=TIMEOUT)
    first = run(commands.UPGRADE_CHECK_JSON[service])
    if refused_json(first):
        found = judge(service, node.name, first, run(commands.UPGRADE_CHECK[service]))
    else:
        found = judge(service, node.name, first)
    if found.verdict == ABSENT:
        return found
    return dataclasses.replace(found, release=release(run(commands.CODE_VERSION[service])))


_RELEASE = re.compile(r"^\d+(\.[0-9A-Za-z]+)*(\+[0-9A-Za-z.]+)?$")   # PEP 440's, roughly


def release(result):
    """The version commands.CODE_VERSION printed, or None (not readable there)."""
    text = result.stdout.strip()
    return text if result.exit_status == 0 and _RELEASE.match(text) else None


def read_all(service_map, settings):
    """{service@node: Readiness} of each service with a status tool that the map gives a
    node, on the first of its nodes (by name) that SSH reaches; the tools read the
    cloud's databases, so one node per service says it."""
    pool = ssh.SessionPool(settings)
    try:
        wanted = {svc: sorted(service_map.nodes_running(svc), key=lambda n: n.name)
                  for svc in SERVICES}
        nodes = {n.name: n for found in wanted.values() for n in found}
        sessions = pool.connect_all(list(nodes.values()))
        jobs, out = [], {}
        for service, candidates in wanted.items():
            reached = [n for n in candidates if not isinstance(sessions[n.name], Exception)]
            if reached:
                jobs.append((service, reached[0]))
            elif candidates:
                node = candidates[0]
                readiness = Readiness(service, node.name, ERROR,
                                      note="no SSH to %s: %s" % (node.name,
                                                                 sessions[node.name]))
                out[readiness.key] = readiness
        for item in fanout.fan_out(lambda job: _run(sessions[job[1].name], job[1], job[0]),
                                   jobs, max_workers=MAX_PARALLEL, name="cpulse-status"):
            service, node = item.item
            readiness = item.value if item.ok else Readiness(service, node.name, ERROR,
                                                             note=str(item.error))
            out[readiness.key] = readiness
        return dict(sorted(out.items()))
    finally:
        pool.close()
