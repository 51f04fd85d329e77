"""The upgrade area's own routes: the snapshots an upgrade check verifies (docs/upgrade.md).

    POST   /cpulse/snapshot            {"create": false}: record the project's resources
    GET    /cpulse/snapshots           the caller's project's snapshots (admin: all)
    GET    /cpulse/snapshot?handle=    one snapshot, every record
    DELETE /cpulse/snapshot?handle=    forget it

The verify is a run: POST /cpulse/check {"type": "upgrade", "snapshot": HANDLE}.  A
snapshot is read with the server's credentials (it creates nothing): a member's is of
their own project; an admin may name a project, or every project.  Another project's
snapshot answers 404, as one that does not exist.
"""

import flask

from cloudpulse.checks import upgrade
from cloudpulse_api import apidoc
from cloudpulse_api import handling
from cloudpulse_api import policies
from cloudpulse_api import service as service_mod

blueprint = flask.Blueprint("upgrade", __name__)

_FIELDS = ("create", "cloud", "project_id", "all_projects")


def _store():
    return handling.service().snapshots


def _validated(body):
    """(cloud, upgrade.Scope) of a POST's body; ValueError naming the field."""
    if not isinstance(body, dict):
        raise ValueError('body: expected a JSON object such as {"create": false}')
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise ValueError("body: %r is not a field of a snapshot (%s)"
                         % (unknown[0], ", ".join(_FIELDS)))
    create = body.get("create", False)
    if not isinstance(create, bool):
        raise ValueError("create: true or false")
    if create:
        raise ValueError("create: true (CloudPulse creating the resources first) is not "
                         "offered by this server yet; snapshot existing resources with "
                         "create false")
    project_id, all_projects = body.get("project_id"), body.get("all_projects", False)
    if project_id is not None and (not isinstance(project_id, str) or not project_id):
        raise ValueError("project_id: a project's id")
    if not isinstance(all_projects, bool):
        raise ValueError("all_projects: true or false")
    if all_projects and project_id:
        raise ValueError("all_projects: not with project_id")
    return body.get("cloud"), upgrade.Scope(project_id, all_projects)


def _summary_doc(stored):
    document = stored.document
    return {"handle": stored.handle, "timestamp": document["taken_at"],
            "cloud": stored.cloud, "project_id": document["project_id"],
            "all_projects": document["all_projects"],
            "resources": upgrade.summary(document)}


@blueprint.post("/snapshot")
def take_snapshot():
    if not handling.allowed(policies.SNAPSHOT_CREATE):
        return handling.forbidden(policies.SNAPSHOT_CREATE, "taking a snapshot")
    try:
        cloud, scope = _validated(flask.request.get_json(silent=True))
        checks = handling.service().cloud(cloud)
    except service_mod.UnknownCloud as exc:
        return handling.bad_request(str(exc), allowed=exc.allowed)
    except ValueError as exc:
        return handling.bad_request(str(exc))
    own = handling.caller().project_id
    if (scope.all_projects or scope.project_id not in (None, own)) and not handling.allowed(
            policies.SNAPSHOT_ALL_PROJECTS):
        return handling.forbidden(policies.SNAPSHOT_ALL_PROJECTS,
                                  "project_id, all_projects: another project's resources")
    scope = upgrade.Scope(scope.project_id or own, scope.all_projects)
    readable = checks.conn.current_project_id
    if not checks.is_admin and (scope.all_projects or scope.project_id not in (None, readable)):
        return flask.jsonify(error="Forbidden", message=(
            "project_id: the server's credentials for cloud %s are not admin: they read "
            "only project %s" % (checks.name, readable))), 403
    try:
        document = upgrade.take(checks.conn, scope, timeout=checks.timeout)
    except upgrade.InventoryFailed as exc:
        return flask.jsonify(error="Bad Gateway", message="cloud %s: %s" % (
            checks.name, exc)), 502
    handle = _store().add(checks.name, own, document, upgrade.taken_at(document))
    answer = _summary_doc(_store().get(handle, own))
    answer["versions"] = document["versions"]
    return flask.jsonify(answer), 201, {"Location": "/cpulse/snapshot?handle=" + handle}


@blueprint.get("/snapshots")
def list_snapshots():
    if not handling.allowed(policies.SNAPSHOT_LIST):
        return handling.forbidden(policies.SNAPSHOT_LIST, "listing snapshots")
    cloud = flask.request.args.get("cloud")
    if cloud is not None:
        try:
            handling.service().cloud(cloud)
        except service_mod.UnknownCloud as exc:
            return handling.bad_request(str(exc), allowed=exc.allowed)
    found = _store().list(cloud, handling.caller().project_id,
                          all_projects=handling.allowed(policies.SNAPSHOT_ALL_PROJECTS))
    return flask.jsonify(snapshots=[_summary_doc(s) for s in found])


def _owned(handle):
    """The StoredSnapshot of `handle` if the caller may read it, else None."""
    return _store().get(handle, handling.caller().project_id,
                        all_projects=handling.allowed(policies.SNAPSHOT_ALL_PROJECTS))


@blueprint.get("/snapshot")
def get_snapshot():
    handle = flask.request.args.get("handle", "").strip()
    if not handle:
        return handling.bad_request("handle: missing query parameter")
    stored = _owned(handle)
    if stored is None:
        return handling.not_found("handle: no snapshot %r" % handle)
    answer = _summary_doc(stored)
    records = stored.document["resources"]
    if not handling.allowed(policies.RESULT_OPERATOR_DETAIL):
        # where a VM runs is operator-only detail
        records = dict(records, vm=[{k: v for k, v in vm.items() if k != "host"}
                                    for vm in records.get("vm", ())])
    answer.update(versions=stored.document["versions"], records=records,
                  reach=stored.document.get("reach", {}))
    return flask.jsonify(answer)


@blueprint.delete("/snapshot")
def delete_snapshot():
    handle = flask.request.args.get("handle", "").strip()
    if not handle:
        return handling.bad_request("handle: missing query parameter")
    if not handling.allowed(policies.SNAPSHOT_DELETE) or not _store().delete(
            handle, handling.caller().project_id,
            all_projects=handling.allowed(policies.SNAPSHOT_ALL_PROJECTS)):
        return handling.not_found("handle: no snapshot %r" % handle)
    return "", 204


# -- this area in the OpenAPI document (cloudpulse_api/openapi.py) ------------------------
_LABELS = {"type": "object", "description": "Per kind (image, vm, net, subnet, port, "
           "router, security_group, floating_ip, volume, load_balancer), the labels of "
           "what was recorded: names, name#id when a name is not unique.",
           "additionalProperties": {"type": "array", "items": {"type": "string"}}}
_SUMMARY = {
    "type": "object",
    "required": ["handle", "timestamp", "cloud", "project_id", "all_projects", "resources"],
    "properties": {
        "handle": {"type": "string"},
        "timestamp": apidoc.TIME,
        "cloud": {"type": "string"},
        "project_id": {"type": "string", "nullable": True,
                       "description": "Whose resources (null with all_projects)."},
        "all_projects": {"type": "boolean"},
        "resources": _LABELS,
    },
}
_VERSIONS = {"type": "object", "description": "Per API, its version and microversions.",
             "additionalProperties": {"type": "object", "properties": {
                 "version": {"type": "string", "nullable": True},
                 "min": {"type": "string", "nullable": True},
                 "max": {"type": "string", "nullable": True}}}}
OPENAPI_SCHEMAS = {
    "SnapshotRequest": {"type": "object", "additionalProperties": False, "properties": {
        "create": {"type": "boolean", "default": False,
                   "description": "false: record the existing resources."},
        "cloud": {"type": "string", "description": "Default: the server's first cloud."},
        "project_id": {"type": "string", "description": "Admin: another project's."},
        "all_projects": {"type": "boolean", "description": "Admin: every project's."}}},
    "SnapshotSummary": _SUMMARY,
    "Snapshot": {"allOf": [{"$ref": "#/components/schemas/SnapshotSummary"}, {
        "type": "object", "required": ["versions"], "properties": {
            "versions": _VERSIONS,
            "records": {"type": "object", "description": "Per kind, every record with "
                        "the state the verify compares (GET only).",
                        "additionalProperties": {"type": "array",
                                                 "items": {"type": "object"}}},
            "reach": {"type": "object", "description": "Per VM id, what the checker got "
                      "of its floating IP (GET only): address, and per probe (icmp, "
                      "tcp/22, tcp/80) answered, open, refused or silent.",
                      "additionalProperties": {"type": "object",
                                               "additionalProperties": {"type": "string"}}}}}]},
    "SnapshotList": {"type": "object", "required": ["snapshots"], "properties": {
        "snapshots": {"type": "array",
                      "items": {"$ref": "#/components/schemas/SnapshotSummary"}}}},
}


def openapi_paths(check_types):
    """This area's paths in the OpenAPI document."""
    handle = apidoc.query("handle", {"type": "string", "pattern": r"\S"}, "The snapshot.",
                          required=True)
    return {
        "/snapshot": {
            "post": {
                "operationId": "takeSnapshot",
                "summary": "Record a project's resources and their state before an upgrade.",
                "description": "Verified by POST /cpulse/check {\"type\": \"upgrade\", "
                               "\"snapshot\": handle}. 502 when the cloud could not list "
                               "them all.",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/SnapshotRequest"}}}},
                "responses": apidoc.responses(
                    201, apidoc.json_response("Snapshot", "The snapshot taken."),
                    400, 403, 502),
            },
            "get": {
                "operationId": "getSnapshot",
                "summary": "One snapshot, with every record.",
                "parameters": [handle],
                "responses": apidoc.responses(
                    200, apidoc.json_response("Snapshot", "The snapshot."), 400, 404),
            },
            "delete": {
                "operationId": "deleteSnapshot",
                "summary": "Forget a snapshot (the resources stay as they are).",
                "parameters": [handle],
                "responses": apidoc.responses(204, {"description": "Deleted."}, 400, 404),
            },
        },
        "/snapshots": {"get": {
            "operationId": "listSnapshots",
            "summary": "The caller's project's snapshots, newest first (admin: all).",
            "parameters": [apidoc.query("cloud", {"type": "string"},
                                        "Snapshots of this cloud.")],
            "responses": apidoc.responses(
                200, apidoc.json_response("SnapshotList", "The snapshots."), 400, 403),
        }},
    }
