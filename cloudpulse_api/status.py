"""GET /cpulse/status: per cloud, the verdict of each check type now (healthy, unhealthy,
unknown), since when, and the failing components: the one call an orchestrator makes to
ask which cloud is healthy (docs/availability.md, "Status").  GET /cpulse/ is the same
for a person: a status page, plain server-rendered HTML that reloads itself, with the
availability bars of the last 24 hours and 30 days and the recent changes.

A member reads their project's runs (hosts masked); an admin the server's own.  Every
cloud the server checks is listed, the default one first.
"""

import datetime
import functools

import flask

from cloudpulse import availability
from cloudpulse import results
from cloudpulse_api import apidoc
from cloudpulse_api import handling
from cloudpulse_api import policies

blueprint = flask.Blueprint("status", __name__, template_folder="templates")

PAGE_REFRESH = 30        # seconds between two reloads of the page
HOURS, DAYS = 24, 30     # the page's bars
RECENT_CHANGES = 20


def _project():
    """The project whose runs are shown: None for the server's own (admin)."""
    return (None if handling.allowed(policies.AVAILABILITY_ALL_PROJECTS)
            else handling.caller().project_id)


def _masking(project_id, checks):
    """What is shown of a text about the cloud of `checks` (a CloudChecks)."""
    if handling.allowed(policies.RESULT_OPERATOR_DETAIL, {"project_id": project_id or ""}):
        return lambda text: text
    return functools.partial(results.mask_hosts, hosts=checks.host_names())


def _status(project_id, checks, now=None):
    # An upgrade check verifies a snapshot around an upgrade: until one was verified (or
    # it runs periodically) it says nothing of the cloud, and is not shown as unknown.
    upgrade = results.CheckType.UPGRADE
    status = handling.service().history.status(
        checks.name, project_id, checks.types, checks.max_gaps, now,
        unless_run=() if upgrade in checks.intervals else (upgrade,))
    if project_id is not None:
        status = status.member_view(checks.host_names())
    return status


@blueprint.get("/status")
def get_status():
    if not handling.allowed(policies.STATUS_GET):
        return handling.forbidden(policies.STATUS_GET, "reading the status")
    project_id, now = _project(), results.utcnow()
    return flask.jsonify(timestamp=now.isoformat(timespec="seconds"), clouds=[
        _status(project_id, checks, now).to_dict()
        for checks in handling.service().clouds.values()])


def _when(ts):
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def _percent(item):
    return "-" if item is None or item.ratio is None else "%.3f%%" % (100 * item.ratio)


def _bar(start, item, segment, slo):
    if item is None or item.ratio is None:
        css, said = "none", "no run" if item is None else "could not check"
    else:
        css = "full" if item.ratio == 1 else ("slo" if item.ratio >= slo else "low")
        said = "%s available, %.0f s down" % (_percent(item), item.down)
    end = start + datetime.timedelta(seconds=segment)
    return {"css": css, "title": "%s to %s: %s" % (_when(start), _when(end), said)}


def _cloud_section(project_id, checks, now, slo):
    """What the page shows of one cloud: its status, a row per check type, its changes."""
    mask = _masking(project_id, checks)
    status = _status(project_id, checks, now)
    spans = handling.service().history.spans(checks.name, project_id,
                                             now - datetime.timedelta(days=DAYS))
    rows = []
    for check in status.checks:
        own = [s for s in spans if s.key == check.check_type.value]
        day, month = (next(iter(availability.over_window(own, w, slo, now)), None)
                      for w in (HOURS * 3600, DAYS * 86400))
        rows.append({
            "check": check, "since": _when(check.since), "day": _percent(day),
            "month": _percent(month),
            "failing": [dict(key=f.key, state=f.state, since=_when(f.since),
                             details=f.details) for f in check.failing],
            "hourly": [_bar(start, item, 3600, slo)
                       for start, item in availability.bars(own, now, 3600, HOURS, slo)],
            "daily": [_bar(start, item, 86400, slo)
                      for start, item in availability.bars(own, now, 86400, DAYS, slo)]})
    changes = [{"since": _when(s.since), "key": mask(s.key), "state": s.state.value,
                "details": mask(s.details)}
               for s in availability.changes(spans, now - datetime.timedelta(hours=HOURS),
                                             RECENT_CHANGES)]
    return {"status": status, "rows": rows, "changes": changes}


@blueprint.get("/")
def status_page():
    if not handling.allowed(policies.STATUS_GET):
        return handling.forbidden(policies.STATUS_GET, "reading the status")
    service = handling.service()
    project_id, now = _project(), results.utcnow()
    slo = service.conf.availability.slo
    clouds = [_cloud_section(project_id, checks, now, slo)
              for checks in service.clouds.values()]
    page = flask.render_template(
        "status.html", clouds=clouds, now=_when(now), slo=slo, refresh=PAGE_REFRESH,
        scope="project %s" % project_id if project_id else "the server's own runs")
    return page, 200, {"Content-Type": "text/html; charset=utf-8",
                       "Cache-Control": "no-store"}


# -- this area in the OpenAPI document (cloudpulse_api/openapi.py) ------------------------
_VERDICT = {"type": "string", "enum": [v.value for v in availability.Verdict]}
OPENAPI_SCHEMAS = {
    "TypeStatus": {
        "type": "object", "required": ["check_type", "verdict", "since", "last_run", "failing"],
        "properties": {
            "check_type": {"type": "string", "enum": [t.value for t in results.CheckType]},
            "verdict": _VERDICT,
            "since": dict(apidoc.NULLABLE_TIME, description="Its newest run's state first "
                                                            "seen."),
            "last_run": apidoc.NULLABLE_TIME,
            "failing": {"type": "array", "items": {
                "type": "object", "required": ["key", "component", "state", "since",
                                               "details"],
                "properties": {"key": {"type": "string"}, "component": {"type": "string"},
                               "state": {"type": "string", "enum": ["failed", "error"]},
                               "since": apidoc.TIME, "details": {"type": "string"}}}}}},
    "Status": {
        "type": "object", "required": ["timestamp", "clouds"],
        "properties": {
            "timestamp": apidoc.TIME,
            "clouds": {"type": "array", "items": {
                "type": "object", "required": ["cloud", "project_id", "verdict", "checks"],
                "properties": {
                    "cloud": {"type": "string"},
                    "project_id": {"type": "string", "nullable": True},
                    "verdict": _VERDICT,
                    "checks": {"type": "array",
                               "items": {"$ref": "#/components/schemas/TypeStatus"}}}}}}},
}


def openapi_paths(check_types):
    return {"/": {"get": {
        "operationId": "getStatusPage",
        "summary": "The status page: what GET /status says, with availability bars and "
                   "recent changes, as HTML that reloads itself.",
        "responses": apidoc.responses(200, {"description": "An HTML page.", "content": {
            "text/html": {"schema": {"type": "string"}}}}, 403),
    }}, "/status": {"get": {
        "operationId": "getStatus",
        "summary": "Per cloud, each check type's verdict now, since when, and what fails.",
        "responses": apidoc.responses(200, apidoc.json_response("Status", "The verdicts."),
                                      403),
    }}}
