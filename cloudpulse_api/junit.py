"""A CheckRun as JUnit XML, for CI pipelines that gate on the cloud's health.

The shape Jenkins' junit plugin and GitLab's test reports read (the de facto schema,
jenkins-junit.xsd): <testsuites> with one <testsuite> per check type, one <testcase
classname="cloudpulse.<type>" name="<check>[<component>]" time="<seconds>"> per result,
and in it <failure> (the cloud is unhealthy), <error> (the check could not run) or
<skipped>; counts and times on every suite. A run that did not finish adds a suite
"cloudpulse.run" with one <error>, so that a report of partial results never reads green.
"""

import datetime
import xml.etree.ElementTree as ET

from cloudpulse import results

# Status -> the testcase's child element (none for passed).
_OUTCOME = {results.Status.FAILED: "failure", results.Status.ERROR: "error",
            results.Status.SKIPPED: "skipped"}


def _timestamp(ts):
    # The schema's timestamp is ISO 8601 without a zone; CloudPulse's times are UTC.
    return ts.astimezone(datetime.timezone.utc).replace(tzinfo=None).isoformat(
        timespec="seconds") if ts else None


def _seconds(value):
    return "%.3f" % value


def _testcase(suite, result):
    case = ET.SubElement(suite, "testcase", classname=suite.get("name"),
                         name="%s[%s]" % (result.name, result.component),
                         time=_seconds(result.duration))
    outcome = _OUTCOME.get(result.status)
    if outcome is not None:
        child = ET.SubElement(case, outcome, message=result.details or result.status.value)
        if outcome != "skipped":
            child.set("type", result.status.value)
            child.text = result.details
    return case


def _suite(parent, name, cases, timestamp, properties=()):
    """A <testsuite> of `cases` (CheckResults), its counts and time; the suite's name
    is its testcases' classname."""
    counts = {outcome: sum(1 for r in cases if r.status == status)
              for status, outcome in _OUTCOME.items()}
    suite = ET.SubElement(parent, "testsuite", name=name, tests=str(len(cases)),
                          failures=str(counts["failure"]), errors=str(counts["error"]),
                          skipped=str(counts["skipped"]),
                          time=_seconds(sum(r.duration for r in cases)))
    if timestamp:
        suite.set("timestamp", timestamp)
    if properties:   # before the testcases, as the schema orders them
        props = ET.SubElement(suite, "properties")
        for key, value in properties:
            ET.SubElement(props, "property", name=key, value=value)
    for result in cases:
        _testcase(suite, result)
    return suite


def _unfinished(run):
    """The one error result of a run that did not finish (interrupted, still running)."""
    return results.CheckResult(
        name="run", check_type=run.check_types[0] if run.check_types else "endpoint",
        component=run.handle, status=results.Status.ERROR,
        details="the run is %s: its results are partial" % run.state.value)


def to_junit(run):
    """The JUnit XML document (str) of a CheckRun."""
    root = ET.Element("testsuites", name="cloudpulse %s" % run.handle)
    timestamp = _timestamp(run.created_at)
    properties = [("handle", run.handle), ("state", run.state.value),
                  ("verdict", run.verdict())]
    types = list(run.check_types) + [r.check_type for r in run.results
                                     if r.check_type not in run.check_types]
    for check_type in types:
        _suite(root, "cloudpulse.%s" % check_type.value,
               [r for r in run.results if r.check_type == check_type], timestamp, properties)
    if run.state != results.RunState.FINISHED:
        _suite(root, "cloudpulse.run", [_unfinished(run)], timestamp, properties)
    suites = root.findall("testsuite")
    for total in ("tests", "failures", "errors", "skipped"):
        root.set(total, str(sum(int(s.get(total)) for s in suites)))
    root.set("time", _seconds(sum(float(s.get("time")) for s in suites)))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
