"""The upgrade area's own routes: the snapshots an upgrade check verifies (docs/upgrade.md).

    POST   /cpulse/snapshot            {"create": false}: record the project's resources;
                                       {"create": true, "resources": {...}}: a queued run
                                       makes that set first, in the caller's project
                                       (docs/upgrade.md)
    GET    /cpulse/snapshots           the caller's project's snapshots (admin: all)
    GET    /cpulse/snapshot?handle=    one snapshot, every record
    DELETE /cpulse/snapshot?handle=    forget it (a created set: removed first, by a run)

The verify is a run: POST /cpulse/check {"type": "upgrade", "snapshot": HANDLE}.  A
snapshot is read with the server's credentials (it creates nothing): a member's is of
their own project; an admin may name a project, or every project.  Another project's
snapshot answers 404, as one that does not exist.
"""

import re

import logging

import flask
from openstack import exceptions as sdk_exceptions

from cloudpulse import cloud as cloud_mod
from cloudpulse.checks import upgrade
from cloudpulse.checks.upgrade import created
from cloudpulse import results
from cloudpulse_api import apidoc
from cloudpulse_api import auth
from cloudpulse_api import handling
from cloudpulse_api import policies
from cloudpulse_api import service as service_mod
from cloudpulse_rally import queue

LOG = logging.getLogger(__name__)
blueprint = flask.Blueprint("upgrade", __name__)

_PROJECT_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FIELDS = ("create", "resources", "cloud", "project_id", "all_projects")


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
    if create and (body.get("project_id") or body.get("all_projects")):
        raise ValueError("create: true is not with project_id or all_projects (the set is "
                         "made in the project of the server's credentials)")
    if not create and "resources" in body:
        raise ValueError("resources: only with create true (what to create)")
    project_id, all_projects = body.get("project_id"), body.get("all_projects", False)
    if project_id is not None and (not isinstance(project_id, str) or
                                   not _PROJECT_ID.fullmatch(project_id)):
        # never passed on to the cloud as it came (neutron answers a 500 to some)
        raise ValueError("project_id: a project's id (letters, digits, - _ ., at most 64)")
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
    body = flask.request.get_json(silent=True)
    try:
        cloud, scope = _validated(body)
        checks = handling.service().cloud(cloud)
    except service_mod.UnknownCloud as exc:
        return handling.bad_request(str(exc), allowed=exc.allowed)
    except ValueError as exc:
        return handling.bad_request(str(exc))
    if body.get("create"):
        return _create_set(checks, body.get("resources"))
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
    # the control plane's own upgrade checks: an operator's, over SSH
    readiness = checks.readiness if handling.allowed(policies.RESULT_OPERATOR_DETAIL) \
        else None
    try:
        document = upgrade.take(checks.conn, scope, timeout=checks.timeout,
                                readiness=readiness)
    except upgrade.InventoryFailed as exc:
        return flask.jsonify(error="Bad Gateway", message="cloud %s: %s" % (
            checks.name, exc)), 502
    handle = _store().add(checks.name, own, document, upgrade.taken_at(document))
    answer = _summary_doc(_store().get(handle, own))
    answer["versions"] = document["versions"]
    if "readiness" in document:
        answer["readiness"] = document["readiness"]
    return flask.jsonify(answer), 201, {"Location": "/cpulse/snapshot?handle=" + handle}


def _create_set(checks, resources):
    """create true: a queued upgrade run makes the set, proves it and records it as the
    snapshot of the run's handle (GET /cpulse/result?handle= follows it)."""
    if not handling.allowed(policies.SNAPSHOT_CREATE_RESOURCES):
        return handling.forbidden(policies.SNAPSHOT_CREATE_RESOURCES,
                                  "create: having the server create resources")
    if not checks.creates_sets:
        return handling.bad_request("create: cloud %s has no [functional] image_file and "
                                    "flavor to build a set with" % checks.name)
    conf = handling.service().conf.upgrade
    try:
        spec = created.parse(resources if resources is not None else {}, conf.cidr,
                             conf.max_created_vms)
    except ValueError as exc:
        return handling.bad_request(str(exc))
    args = {"create": resources}
    caller = handling.caller()
    if caller.project_id and caller.project_id != checks.conn.current_project_id:
        refusal = _undelegable(checks, caller)
        if refusal:
            return handling.bad_request(refusal)
        try:
            args["trust_id"] = cloud_mod.delegate(
                checks.conn, caller.auth_token, caller.user_id, caller.project_id,
                [role for role in caller.roles if role != "admin"] or caller.roles)
        except sdk_exceptions.SDKException as exc:
            return flask.jsonify(error="Bad Gateway", message=(
                "create: keystone of cloud %s did not take the caller's trust in CloudPulse:"
                " %s" % (checks.name, exc))), 502
    return _queued(checks.name, args, lambda handle: dict(
        handle=handle, timestamp=results.utcnow().isoformat(), cloud=checks.name,
        state=results.RunState.QUEUED.value, resources=spec.summary()),
        on_refused=lambda: _forget_trust(checks.conn, args.get("trust_id")))


def _undelegable(checks, caller):
    """Why the server cannot make a set in the caller's project (not its own), or None:
    it acts there through a keystone trust from the caller, and removes and verifies the
    set later with its own admin credentials."""
    where = "create: a set in project %s (not the server's own, %s)" % (
        caller.project_id, checks.conn.current_project_id)
    if handling.service().conf.api.auth_strategy != auth.KEYSTONE:
        return ("%s is made through a keystone trust from the caller: it needs [api] "
                "auth_strategy = keystone" % where)
    if not checks.is_admin:
        return ("%s: the server's credentials for cloud %s are not admin, so it could not "
                "verify or remove the set later" % (where, checks.name))
    if cloud_mod.password_credentials(checks.conn) is None:
        return ("%s is made through a keystone trust, which the server's credentials for "
                "cloud %s (auth type %s) cannot use: give it a password"
                % (where, checks.name, checks.conn.config.auth_type))
    return None


def _forget_trust(conn, trust_id):
    if trust_id:
        try:
            conn.identity.delete_trust(trust_id, ignore_missing=True)
        except sdk_exceptions.SDKException as exc:
            LOG.warning("could not delete trust %s of a refused run: %s", trust_id, exc)


def _queued(cloud, args, answer, on_refused=lambda: None):
    """An upgrade run of the caller's project queued with `args` (a set to create or to
    remove): 202 with `answer(handle)` and the run's Location, or the queue's 429 (after
    `on_refused()`)."""
    try:
        handle, _ = handling.service().submit(
            [results.CheckType.UPGRADE], project_id=handling.caller().project_id,
            cloud=cloud, args=args)
    except queue.QueueFull as exc:
        on_refused()
        return handling.queue_full(exc)
    return flask.jsonify(answer(handle)), 202, {"Location": "/cpulse/result?handle=" + handle}


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
    if "readiness" in stored.document and handling.allowed(policies.RESULT_OPERATOR_DETAIL):
        answer["readiness"] = stored.document["readiness"]
    return flask.jsonify(answer)


@blueprint.delete("/snapshot")
def delete_snapshot():
    """Forget a snapshot.  One whose set CloudPulse created: its set is removed first,
    by a queued run (202 with its handle), unless keep_resources=true."""
    handle = flask.request.args.get("handle", "").strip()
    if not handle:
        return handling.bad_request("handle: missing query parameter")
    keep = flask.request.args.get("keep_resources", "false").lower()
    if keep not in ("true", "false"):
        return handling.bad_request("keep_resources: true or false")
    stored = _owned(handle) if handling.allowed(policies.SNAPSHOT_DELETE) else None
    if stored is None:
        return handling.not_found("handle: no snapshot %r" % handle)
    if stored.created is not None and keep == "false":
        return _queued(stored.cloud, {"remove": handle},
                       lambda run: dict(handle=run, removing=handle))
    _store().delete(handle, all_projects=True)
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
                   "description": "false: record the existing resources; true: create "
                                  "`resources` first (admin), in the project of the "
                                  "server's credentials."},
        "resources": {"type": "object", "description": "create true: the set, "
                      "{image, net, router, vm: [name or object], connections: [[vm, "
                      "vm]]} (docs/upgrade.md).",
                      "additionalProperties": {"type": "array"}},
        "cloud": {"type": "string", "description": "Default: the server's first cloud."},
        "project_id": {"type": "string", "description": "Admin: another project's."},
        "all_projects": {"type": "boolean", "description": "Admin: every project's."}}},
    "SnapshotSummary": _SUMMARY,
    "SetQueued": {"type": "object", "required": ["handle", "timestamp", "cloud", "state",
                                                 "resources"], "properties": {
        "handle": {"type": "string", "description": "The run's, and the snapshot's."},
        "timestamp": apidoc.TIME, "cloud": {"type": "string"},
        "state": {"type": "string", "enum": ["queued"]},
        "resources": {"type": "object", "description": "What the run creates, per kind "
                      "(image, net, router, vm) and the connections.",
                      "additionalProperties": {"type": "array"}}}},
    "SetRemoval": {"type": "object", "required": ["handle", "removing"], "properties": {
        "handle": {"type": "string", "description": "The removal run's."},
        "removing": {"type": "string", "description": "The snapshot."}}},
    "Snapshot": {"allOf": [{"$ref": "#/components/schemas/SnapshotSummary"}, {
        "type": "object", "required": ["versions"], "properties": {
            "versions": _VERSIONS,
            "records": {"type": "object", "description": "Per kind, every record with "
                        "the state the verify compares (GET only).",
                        "additionalProperties": {"type": "array",
                                                 "items": {"type": "object"}}},
            "readiness": {"type": "object", "description": "An operator's snapshot: per "
                          "service@node, its `<service>-status upgrade check` before the "
                          "upgrade (verdict success, warning, failure, error or absent; "
                          "checks [check, result, details]; note; the release of the "
                          "service's code there, null where it cannot be read).",
                          "additionalProperties": {"type": "object", "properties": {
                              "verdict": {"type": "string"},
                              "checks": {"type": "array", "items": {"type": "array"}},
                              "note": {"type": "string"},
                              "release": {"type": "string", "nullable": True}}}},
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
                "responses": dict(apidoc.responses(
                    201, apidoc.json_response("Snapshot", "The snapshot taken (create "
                                                          "false)."),
                    400, 403, 429, 502), **{"202": apidoc.json_response(
                        "SetQueued", "create true: the run that makes the set and "
                                     "records it as the snapshot of its handle.")}),
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
                "summary": "Forget a snapshot; a set CloudPulse created is removed "
                           "first, by a run (202), unless keep_resources.",
                "parameters": [handle, apidoc.query(
                    "keep_resources", {"type": "string", "enum": ["true", "false"]},
                    "true: leave a created set in the cloud (default false).")],
                "responses": dict(apidoc.responses(
                    204, {"description": "Deleted."}, 400, 404, 429),
                    **{"202": apidoc.json_response(
                        "SetRemoval", "The run that removes the set, then the "
                                      "snapshot.")}),
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
