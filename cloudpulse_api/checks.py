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
from cloudpulse_api import auth
from cloudpulse_api import policies
from cloudpulse_api import service as service_mod
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
    return {"check_type": _enum_param(args, "type", results.CheckType),
            "state": _enum_param(args, "state", results.RunState),
            "since": parse_since(since) if since is not None else None,
            "limit": _limit_param(args),
            "marker": args.get("marker") or None}


def _service():
    return flask.current_app.config["CHECK_SERVICE"]


def _bad_request(message, **extra):
    return flask.jsonify(error="Bad Request", message=message, **extra), 400


def _caller():
    return auth.caller(flask.request.environ)


def _allowed(rule, target=None):
    return flask.current_app.config["POLICY"].enforce(rule, target or {}, _caller())


def _forbidden(rule, what):
    check = flask.current_app.config["POLICY"].rules.get(rule)
    return flask.jsonify(error="Forbidden", message="%s needs policy %s (%s)"
                         % (what, rule, check)), 403


@blueprint.post("/check")
def start_check():
    if (flask.request.content_length or 0) > MAX_BODY:   # refused before it is read
        raise http_exc.RequestEntityTooLarge()
    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad_request('body: expected a JSON object such as {"type": "endpoint"}')
    if "type" not in body:
        return _bad_request("type: missing")
    try:
        check_types = _service().parse_types(body["type"])
    except service_mod.UnknownCheckType as exc:
        return _bad_request(str(exc), allowed=exc.allowed)
    rule = policies.start_rule(body["type"])
    if not _allowed(rule):
        return _forbidden(rule, "type: starting %s checks" % body["type"])
    try:
        handle, _ = _service().submit(check_types, project_id=_caller().project_id)
    except service_mod.QueueFull as exc:
        return (flask.jsonify(error="Too Many Requests", message=str(exc)), 429,
                {"Retry-After": str(exc.retry_after)})
    # the same handle when a run of these types is already queued or running
    return flask.jsonify(handle=handle), 202, {"Location": "/cpulse/result?handle=" + handle}


@blueprint.get("/result")
def get_result():
    handle = flask.request.args.get("handle", "").strip()
    if not handle:
        return _bad_request("handle: missing query parameter")
    try:
        wait = float(flask.request.args.get("wait", 0))
    except ValueError:
        return _bad_request("wait: seconds to wait for the run to finish, e.g. wait=30")
    if not 0 <= wait <= MAX_WAIT:
        return _bad_request("wait: between 0 and %d seconds" % MAX_WAIT)
    run = _service().get(handle)
    # another project's run reads exactly as a handle that does not exist
    target = {"project_id": run.project_id or ""} if run is not None else None
    if run is None or not _allowed(policies.RESULT_GET, target):
        return flask.jsonify(error="Not Found", message="handle: no run %r" % handle), 404
    if wait > 0:
        run = _service().get(handle, wait)
    if not _allowed(policies.RESULT_OPERATOR_DETAIL, target):
        run = run.member_view(_service().host_names())
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
    if not _allowed(policies.RESULTS_LIST):
        return _forbidden(policies.RESULTS_LIST, "listing runs")
    try:
        filters = list_filters(flask.request.args)
    except BadParameter as exc:
        return _bad_request(str(exc))
    project_id = flask.request.args.get("project_id") or None
    all_projects = _allowed(policies.RESULTS_LIST_ALL_PROJECTS)
    if not all_projects:
        own = _caller().project_id
        if project_id not in (None, own):
            return _forbidden(policies.RESULTS_LIST_ALL_PROJECTS,
                              "project_id: listing another project's runs")
        project_id = own
    try:
        runs = _service().list_runs(project_id=project_id, all_projects=all_projects,
                                    **filters)
    except tasks.UnknownMarker as exc:
        return _bad_request(str(exc))
    links = []
    if len(runs) == filters["limit"]:
        query = dict(flask.request.args, marker=runs[-1].handle)
        links.append({"rel": "next", "href": "%s?%s" % (
            flask.request.base_url, urllib.parse.urlencode(query))})
    return flask.jsonify(runs=[run.to_api() for run in runs], runs_links=links)


@blueprint.get("/types")
def list_types():
    if not _allowed(policies.TYPES_LIST):
        return _forbidden(policies.TYPES_LIST, "listing the check types")
    return flask.jsonify(types=[t.value for t in _service().types] + [service_mod.ALL])
