"""POST /cpulse/check and GET /cpulse/result: start a check run, read it by handle.

Who may do what is oslo.policy's (cloudpulse_api/policies.py): a run belongs to the
project that asked for it; a caller who may not read a run gets the 404 of a handle that
does not exist, and one without the operator-detail rule gets the run's member view.
"""

import flask
from werkzeug import exceptions as http_exc

from cloudpulse_api import auth
from cloudpulse_api import policies
from cloudpulse_api import service as service_mod

blueprint = flask.Blueprint("checks", __name__)

MAX_WAIT = 120   # seconds a GET /cpulse/result?wait= may hold its request
MAX_BODY = 16 * 1024   # bytes of a request body: {"type": ...} is a few dozen


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
    return flask.jsonify(run.to_api())


@blueprint.get("/types")
def list_types():
    if not _allowed(policies.TYPES_LIST):
        return _forbidden(policies.TYPES_LIST, "listing the check types")
    return flask.jsonify(types=[t.value for t in _service().types] + [service_mod.ALL])
