"""POST /cpulse/check, GET /cpulse/result and GET /cpulse/results: start a check run,
read it by handle, list runs.

Who may do what is oslo.policy's (cloudpulse_api/policies.py): a run belongs to the
project that asked for it; a caller who may not read a run gets the 404 of a handle that
does not exist, and one without the operator-detail rule gets the run's member view.
"""

import datetime
import urllib.parse

import flask
from werkzeug import exceptions as http_exc

from cloudpulse import conf as cp_conf
from cloudpulse import results
from cloudpulse_api import apidoc
from cloudpulse_api import handling
from cloudpulse_api import policies
from cloudpulse_api import service as service_mod
from cloudpulse_rally import queue
from cloudpulse_rally import tasks

blueprint = flask.Blueprint("checks", __name__)

MAX_WAIT = 120   # seconds a GET /cpulse/result?wait= may hold its request
MAX_BODY = 16 * 1024   # bytes of a request body: {"type": ...} is a few dozen
ENDED_RUN_MAX_AGE = 60   # seconds a proxy may keep a caller's answer for an ended run
DEFAULT_LIMIT, MAX_LIMIT = 50, 500   # runs in one page of GET /cpulse/results


class BadParameter(ValueError):
    """A query parameter the API cannot take; the message starts with its name."""


def parse_since(value, now=None):
    """The aware UTC datetime a `since` parameter means: an ISO 8601 time
    (2026-05-01T12:00:00Z; without an offset, UTC) or a duration back from `now`
    (30m, 1h, 2d; plain seconds)."""
    try:
        since = datetime.datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        return since if since.tzinfo else since.replace(tzinfo=datetime.timezone.utc)
    try:
        seconds = cp_conf.Interval()(value)
    except ValueError:
        seconds = -1
    if seconds <= 0:   # -1: "never", or not a duration at all
        raise BadParameter("since: %r is neither an ISO 8601 time (2026-05-01T12:00:00Z) "
                           "nor a duration (30m, 1h, 2d)" % value)
    try:
        return (now or results.utcnow()) - datetime.timedelta(seconds=seconds)
    except OverflowError:   # further back than datetime goes (year 1)
        raise BadParameter("since: %r is too far back" % value) from None


def _enum_param(args, name, enum):
    value = args.get(name)
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        raise BadParameter("%s: %r is not one of %s" % (
            name, value, ", ".join(e.value for e in enum))) from None


def _limit_param(args):
    value = args.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadParameter("limit: %r is not a whole number from 1 to %d"
                           % (value, MAX_LIMIT))
    return limit


def list_filters(args):
    """RallyTasks.list_runs' filters from GET /cpulse/results' query parameters (type,
    state, since, limit, marker); BadParameter naming the one that is wrong."""
    since = args.get("since")
    return {"cloud": args.get("cloud") or None,
            "check_type": _enum_param(args, "type", results.CheckType),
            "state": _enum_param(args, "state", results.RunState),
            "since": parse_since(since) if since is not None else None,
            "limit": _limit_param(args),
            "marker": args.get("marker") or None}


@blueprint.post("/check")
def start_check():
    if (flask.request.content_length or 0) > MAX_BODY:   # refused before it is read
        raise http_exc.RequestEntityTooLarge()
    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict):
        return handling.bad_request(
            'body: expected a JSON object such as {"type": "endpoint"}')
    if "type" not in body:
        return handling.bad_request("type: missing")
    cloud = body.get("cloud")
    try:
        handling.service().cloud(cloud)
        check_types = handling.service().parse_types(body["type"], cloud)
    except (service_mod.UnknownCloud, service_mod.UnknownCheckType) as exc:
        return handling.bad_request(str(exc), allowed=exc.allowed)
    rule = policies.start_rule(body["type"])
    if not handling.allowed(rule):
        return handling.forbidden(rule, "type: starting %s checks" % body["type"])
    snapshot = body.get("snapshot")
    if snapshot is not None:
        refused = _refused_snapshot(snapshot, check_types,
                                    handling.service().cloud(cloud).name)
        if refused is not None:
            return refused
    try:
        args = _watch_args(body, check_types)
    except ValueError as exc:
        return handling.bad_request(str(exc))
    if snapshot is not None:
        args["snapshot"] = snapshot
    try:
        handle, _ = handling.service().submit(
            check_types, project_id=handling.caller().project_id, cloud=cloud, args=args)
    except queue.QueueFull as exc:
        return handling.queue_full(exc)
    # the same handle when a run of these types is already queued or running
    return flask.jsonify(handle=handle), 202, {"Location": "/cpulse/result?handle=" + handle}


def _watch_args(body, check_types):
    """The run arguments of a POST's `watch` and `minor` ({} without a watch);
    ValueError naming the field."""
    watch, minor = body.get("watch"), body.get("minor")
    if watch is None:
        if minor is not None:
            raise ValueError("minor: only with watch")
        return {}
    if check_types != [results.CheckType.UPGRADE]:
        raise ValueError("watch: only with the upgrade type (a watch holds its run until "
                         "it ends)")
    longest = handling.service().conf.upgrade.max_watch
    if isinstance(watch, bool) or not isinstance(watch, int) or not 1 <= watch <= longest:
        raise ValueError("watch: seconds to watch, 1 to %d ([upgrade] max_watch); "
                         "POST /cpulse/stop ends it sooner" % longest)
    if minor is not None and not isinstance(minor, bool):
        raise ValueError("minor: true (a minor update: any loss fails) or false")
    return {"watch": watch, "minor": bool(minor)}


@blueprint.post("/stop")
def stop_run():
    """Tell a run that lasts until told (an upgrade watch) to end now: it records what
    it saw and finishes."""
    body = flask.request.get_json(silent=True)
    handle = body.get("handle") if isinstance(body, dict) else None
    if not isinstance(handle, str) or not handle:
        return handling.bad_request('handle: expected {"handle": "<run>"}')
    run = handling.service().get(handle)
    target = {"project_id": run.project_id or ""} if run is not None else None
    if run is None or not handling.allowed(policies.RUN_STOP, target):
        return handling.not_found("handle: no run %r" % handle)
    args = handling.service().queue.args_in_flight(handle)
    if args is None:
        return flask.jsonify(error="Conflict", message="handle: run %s is not in flight"
                             % handle), 409
    if "watch" not in args:
        return handling.bad_request("handle: run %s is not a watch: it ends by itself"
                                    % handle)
    handling.service().queue.request_stop(handle)
    return flask.jsonify(handle=handle, stopping=True), 202


def _refused_snapshot(handle, check_types, cloud):
    """The answer refusing a POST's `snapshot` as what its upgrade run verifies, or
    None when it may be."""
    if not isinstance(handle, str) or not handle:
        return handling.bad_request("snapshot: a snapshot's handle")
    if results.CheckType.UPGRADE not in check_types:
        return handling.bad_request("snapshot: only for the upgrade type (or all)")
    stored = handling.service().snapshots.get(
        handle, handling.caller().project_id,
        all_projects=handling.allowed(policies.SNAPSHOT_ALL_PROJECTS))
    if stored is None:   # another project's reads as one that does not exist
        return handling.not_found("snapshot: no snapshot %r" % handle)
    if stored.cloud != cloud:
        return handling.bad_request("snapshot: %s is of cloud %s, not %s"
                                    % (handle, stored.cloud, cloud))
    return None


@blueprint.get("/result")
def get_result():
    handle = flask.request.args.get("handle", "").strip()
    if not handle:
        return handling.bad_request("handle: missing query parameter")
    try:
        wait = float(flask.request.args.get("wait", 0))
    except ValueError:
        return handling.bad_request(
            "wait: seconds to wait for the run to finish, e.g. wait=30")
    if not 0 <= wait <= MAX_WAIT:
        return handling.bad_request("wait: between 0 and %d seconds" % MAX_WAIT)
    run = handling.service().get(handle)
    # another project's run reads exactly as a handle that does not exist
    target = {"project_id": run.project_id or ""} if run is not None else None
    if run is None or not handling.allowed(policies.RESULT_GET, target):
        return handling.not_found("handle: no run %r" % handle)
    if wait > 0 and run.state not in results.ENDED:
        run = handling.service().get(handle, wait)
    if not handling.allowed(policies.RESULT_OPERATOR_DETAIL, target):
        run = run.member_view(handling.service().checks_of(run).host_names())
    if run.state in results.ENDED:
        # An ended run never changes: a proxy in front (nginx, docs/deployment.md) may
        # answer the same caller (its token is in the cache key) for a minute.
        return flask.jsonify(run.to_api()), 200, {
            "Cache-Control": "private, max-age=%d" % ENDED_RUN_MAX_AGE,
            "X-Accel-Expires": str(ENDED_RUN_MAX_AGE)}
    return flask.jsonify(run.to_api())


@blueprint.get("/results")
def list_results():
    """Runs, newest first: a member's project's; an admin's, every run (project_id=
    narrows it to one project).  Paginated as OpenStack APIs are: `marker` is the last
    handle of the previous page; a full page links to the next."""
    if not handling.allowed(policies.RESULTS_LIST):
        return handling.forbidden(policies.RESULTS_LIST, "listing runs")
    try:
        filters = list_filters(flask.request.args)
    except BadParameter as exc:
        return handling.bad_request(str(exc))
    project_id = flask.request.args.get("project_id") or None
    all_projects = handling.allowed(policies.RESULTS_LIST_ALL_PROJECTS)
    if not all_projects:
        own = handling.caller().project_id
        if project_id not in (None, own):
            return handling.forbidden(policies.RESULTS_LIST_ALL_PROJECTS,
                              "project_id: listing another project's runs")
        project_id = own
    try:
        runs = handling.service().list_runs(project_id=project_id, all_projects=all_projects,
                                    **filters)
    except tasks.UnknownMarker as exc:
        return handling.bad_request(str(exc))
    links = []
    if len(runs) == filters["limit"]:
        query = dict(flask.request.args, marker=runs[-1].handle)
        links.append({"rel": "next", "href": "%s?%s" % (
            flask.request.base_url, urllib.parse.urlencode(query))})
    return flask.jsonify(runs=[run.to_api() for run in runs], runs_links=links)


@blueprint.get("/types")
def list_types():
    if not handling.allowed(policies.TYPES_LIST):
        return handling.forbidden(policies.TYPES_LIST, "listing the check types")
    service = handling.service()
    return flask.jsonify(
        types=[t.value for t in service.cloud().types] + [service_mod.ALL],
        clouds={name: [t.value for t in checks.types] + [service_mod.ALL]
                for name, checks in service.clouds.items()})


# -- this area in the OpenAPI document (cloudpulse_api/openapi.py) ---------------------
_RESULT_SCHEMA = {
    "type": "object",
    "required": ["name", "check_type", "status", "details", "duration"],
    "properties": {
        "key": {"type": "string", "description": "The check and its component, e.g. "
                                                 "endpoint.glance."},
        "name": {"type": "string"},
        "check_type": {"type": "string", "enum": [t.value for t in results.CheckType]},
        "component": {"type": "string", "nullable": True},
        "status": {"type": "string", "enum": [s.value for s in results.Status]},
        "details": {"type": "string"},
        "duration": {"type": "number"},
        "started_at": apidoc.NULLABLE_TIME,
        "finished_at": apidoc.NULLABLE_TIME,
    },
}

_SUMMARY_SCHEMA = {
    "type": "object",
    "required": ["handle", "state", "check_types", "healthy", "created_at"],
    "properties": {
        "handle": {"type": "string", "description": "The Rally task's UUID."},
        "cloud": {"type": "string", "nullable": True,
                  "description": "The cloud checked (its clouds.yaml entry)."},
        "project_id": {"type": "string", "nullable": True,
                       "description": "null: the server's own (periodic) run."},
        "timestamp": apidoc.TIME,
        "state": {"type": "string", "enum": [s.value for s in results.RunState]},
        "check_types": {"type": "array", "items": {
            "type": "string", "enum": [t.value for t in results.CheckType]}},
        "healthy": {"type": "boolean"},
        "created_at": apidoc.TIME,
        "finished_at": apidoc.NULLABLE_TIME,
    },
}

_RUN_SCHEMA = {
    "allOf": [{"$ref": "#/components/schemas/RunSummary"}, {
        "type": "object",
        "required": ["verdict", "tests_failed", "tests_passed", "tests_skipped", "results"],
        "properties": {
            "verdict": {"type": "string"},
            "tests_failed": {"type": "array", "items": {
                "type": "object", "additionalProperties": {"type": "string"}}},
            "tests_passed": {"type": "array", "items": {"type": "string"}},
            "tests_skipped": {"type": "array", "items": {
                "type": "object", "additionalProperties": {"type": "string"}}},
            "results": {"type": "array",
                        "items": {"$ref": "#/components/schemas/CheckResult"}},
        },
    }],
}


OPENAPI_SCHEMAS = {
    "Stopping": {"type": "object", "required": ["handle", "stopping"],
                 "properties": {"handle": {"type": "string"},
                                "stopping": {"type": "boolean"}}},
    "Handle": {"type": "object", "required": ["handle"],
               "properties": {"handle": {"type": "string"}}},
    "CheckResult": _RESULT_SCHEMA,
    "RunSummary": _SUMMARY_SCHEMA,
    "CheckRun": _RUN_SCHEMA,
    "RunList": {"type": "object", "required": ["runs", "runs_links"], "properties": {
        "runs": {"type": "array", "items": {"$ref": "#/components/schemas/RunSummary"}},
        "runs_links": {"type": "array", "items": {
            "type": "object", "required": ["rel", "href"],
            "properties": {"rel": {"type": "string"}, "href": {"type": "string"}}}}}},
    "Types": {"type": "object", "required": ["types", "clouds"], "properties": {
        "types": {"type": "array", "items": {"type": "string"},
                  "description": "Those of the default cloud (the first)."},
        "clouds": {"type": "object", "description": "Each cloud's.",
                   "additionalProperties": {"type": "array", "items": {"type": "string"}}}}},
}


def openapi_paths(check_types):
    """This area's paths in the OpenAPI document, for a server offering `check_types`."""
    offered = [t.value for t in check_types] + [service_mod.ALL]
    query = apidoc.query
    return {
        "/check": {"post": {
            "operationId": "startCheck",
            "summary": "Start a run of a check type (or of all the types offered).",
            "description": "A run of the same types on the same cloud already queued or "
                           "running for the caller's project answers with that run's "
                           "handle.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["type"],
                "properties": {"type": {"type": "string", "enum": offered},
                               "cloud": {"type": "string", "description":
                                         "The cloud to check (GET /cpulse/types lists "
                                         "them); default: the first."},
                               "snapshot": {"type": "string", "description":
                                            "upgrade: the snapshot to verify "
                                            "(POST /cpulse/snapshot); default: the "
                                            "project's newest of the cloud."},
                               "watch": {"type": "integer", "minimum": 1, "description":
                                         "upgrade only: watch the snapshot's workloads "
                                         "this many seconds (or until POST /cpulse/stop) "
                                         "instead of verifying it."},
                               "minor": {"type": "boolean", "description":
                                         "with watch: a minor update, where any loss "
                                         "fails."}}}}}},
            "responses": apidoc.responses(
                202, apidoc.json_response(
                    "Handle", "Queued (or already queued or running).", headers={
                        "Location": {"schema": {"type": "string"},
                                     "description": "GET /cpulse/result?handle=..."}}),
                400, 403, 404, 413, 429),
        }},
        "/stop": {"post": {
            "operationId": "stopRun",
            "summary": "End a watch now (it records what it saw and finishes).",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["handle"],
                "properties": {"handle": {"type": "string"}}}}}},
            "responses": apidoc.responses(
                202, apidoc.json_response("Stopping", "Told to stop."), 400, 404, 409),
        }},
        "/result": {"get": {
            "operationId": "getResult",
            "summary": "A run and its results; with wait, once it finished (long poll).",
            "parameters": [
                query("handle", {"type": "string", "pattern": r"\S"},
                      "The handle POST /cpulse/check answered.", required=True),
                query("wait", {"type": "number", "minimum": 0, "maximum": MAX_WAIT,
                               "default": 0},
                      "Seconds to wait for the run to finish (at most %d)." % MAX_WAIT),
            ],
            "responses": apidoc.responses(
                200, apidoc.json_response("CheckRun", "The run."), 400, 404),
        }},
        "/results": {"get": {
            "operationId": "listResults",
            "summary": "Runs, newest first: a member's project's, an admin's every run.",
            "parameters": [
                query("type", {"type": "string",
                               "enum": [t.value for t in results.CheckType]},
                      "Runs that checked this type."),
                query("state", {"type": "string",
                                "enum": [s.value for s in results.RunState]},
                      "Runs in this state."),
                query("since", {"type": "string", "pattern": r"^[1-9][0-9]{0,4}[smhd]?$"},
                      "Runs created since a duration ago (30m, 1h, 2d; seconds) or an "
                      "ISO 8601 time (2026-05-01T12:00:00Z)."),
                query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                "default": DEFAULT_LIMIT}, "Runs in one page."),
                query("marker", {"type": "string"},
                      "The last handle of the previous page."),
                query("project_id", {"type": "string"},
                      "One project's runs (admin; a member may name only their own)."),
                query("cloud", {"type": "string"}, "Runs that checked this cloud."),
            ],
            "responses": apidoc.responses(
                200, apidoc.json_response("RunList", "A page of runs."), 400, 403),
        }},
        "/types": {"get": {
            "operationId": "listTypes",
            "summary": "The check types this server offers.",
            "responses": apidoc.responses(
                200, apidoc.json_response("Types", "The types."), 403),
        }},
    }
