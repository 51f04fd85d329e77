"""GET /cpulse/status: per cloud, the verdict of each check type now (healthy, unhealthy,
unknown), since when, and the failing components: the one call an orchestrator makes to
ask which cloud is healthy (docs/availability.md, "Status").

A member reads their project's runs (hosts masked); an admin the server's own.
"""

import flask

from cloudpulse import availability
from cloudpulse import conf as cp_conf
from cloudpulse import results
from cloudpulse_api import apidoc
from cloudpulse_api import handling
from cloudpulse_api import policies

blueprint = flask.Blueprint("status", __name__)


@blueprint.get("/status")
def get_status():
    if not handling.allowed(policies.STATUS_GET):
        return handling.forbidden(policies.STATUS_GET, "reading the status")
    service = handling.service()
    admin = handling.allowed(policies.AVAILABILITY_ALL_PROJECTS)
    project_id = None if admin else handling.caller().project_id
    status = service.history.status(service.cloud_name, project_id, service.types,
                                    cp_conf.max_gaps(service.conf))
    if not handling.allowed(policies.RESULT_OPERATOR_DETAIL, {"project_id": project_id or ""}):
        status = status.member_view(service.host_names())
    return flask.jsonify(timestamp=results.utcnow().isoformat(timespec="seconds"),
                         clouds=[status.to_dict()])


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
    return {"/status": {"get": {
        "operationId": "getStatus",
        "summary": "Per cloud, each check type's verdict now, since when, and what fails.",
        "responses": apidoc.responses(200, apidoc.json_response("Status", "The verdicts."),
                                      403),
    }}}
