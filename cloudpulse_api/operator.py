"""The operator area's own routes: the control plane as the operator checks see it.

GET /cpulse/operator/nodes lists the service map's nodes (inventory or juju status,
[operator] service_map) and the services each is expected to run, as the server loaded
and validated it at start: what an operator reads to know what CloudPulse will judge
before an operator run names a node."""

import flask

from cloudpulse_api import apidoc
from cloudpulse_api import handling
from cloudpulse_api import policies
from cloudpulse_api import service as service_mod

blueprint = flask.Blueprint("operator", __name__)


def _service_doc(service):
    return {"name": service.name, "ports": list(service.ports),
            "listen": [{"address": a, "port": p} for a, p in service.listen],
            "processes": list(service.processes), "manager": service.manager,
            "unit": service.unit, "container": service.container}


def _node_doc(node):
    return {"name": node.name, "address": node.address, "hostname": node.hostname,
            "ssh_user": node.ssh_user, "ssh_port": node.ssh_port,
            "pending": node.pending or None,
            "services": [_service_doc(s) for s in node.services]}


@blueprint.get("/operator/nodes")
def list_nodes():
    if not handling.allowed(policies.OPERATOR_NODES_LIST):
        return handling.forbidden(policies.OPERATOR_NODES_LIST, "listing the nodes")
    try:
        service_map = handling.service().cloud(flask.request.args.get("cloud")).operator_map
    except service_mod.UnknownCloud as exc:
        return handling.bad_request(str(exc), allowed=exc.allowed)
    if service_map is None:
        return handling.not_found("[operator] service_map: not set, so operator checks "
                                  "are not offered")
    return flask.jsonify(source=service_map.source,
                         nodes=[_node_doc(n) for n in service_map.nodes])


# -- this area in the OpenAPI document (cloudpulse_api/openapi.py) ------------------------
_STRINGS = {"type": "array", "items": {"type": "string"}}
_SERVICE_SCHEMA = {
    "type": "object",
    "required": ["name", "ports", "listen", "processes", "manager"],
    "properties": {
        "name": {"type": "string"},
        "ports": {"type": "array", "items": {"type": "integer"},
                  "description": "Ports it listens on, on the node's address or any."},
        "listen": {"type": "array", "items": {
            "type": "object", "required": ["address", "port"],
            "properties": {"address": {"type": "string"}, "port": {"type": "integer"}}},
            "description": "Addresses it listens on besides (a VIP's frontends)."},
        "processes": dict(_STRINGS, description="Any one of them alive is enough."),
        "manager": {"type": "string", "description": "process, systemd, docker, podman"},
        "unit": {"type": "string"},
        "container": {"type": "string"},
    },
}
OPENAPI_SCHEMAS = {
    "OperatorNodes": {"type": "object", "required": ["source", "nodes"], "properties": {
        "source": {"type": "string", "description": "The service map's file."},
        "nodes": {"type": "array", "items": {
            "type": "object", "required": ["name", "address", "services"],
            "properties": {
                "name": {"type": "string", "description": "As results name it."},
                "address": {"type": "string", "nullable": True,
                            "description": "Where SSH goes; null: not reachable."},
                "hostname": {"type": "string",
                             "description": "As OpenStack's services report it."},
                "ssh_user": {"type": "string", "nullable": True,
                             "description": "null: [operator] ssh_user."},
                "ssh_port": {"type": "integer"},
                "pending": {"type": "string", "nullable": True,
                            "description": "Why it has no address (juju)."},
                "services": {"type": "array", "items": _SERVICE_SCHEMA},
            }}}}},
}


def openapi_paths(check_types):
    """This area's paths in the OpenAPI document, for a server offering `check_types`."""
    return {"/operator/nodes": {"get": {
        "operationId": "listOperatorNodes",
        "summary": "The nodes of the service map and what each should run (admin).",
        "description": "404 when the server has no [operator] service_map for the "
                       "cloud.",
        "parameters": [apidoc.query("cloud", {"type": "string"},
                                    "The cloud whose map (default: the first).")],
        "responses": apidoc.responses(
            200, apidoc.json_response("OperatorNodes", "The service map's nodes."),
            400, 403, 404),
    }}}
