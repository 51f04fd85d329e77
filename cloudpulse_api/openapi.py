"""The API's OpenAPI 3 document, served at GET /cpulse/openapi.json.

Each area (cloudpulse_api/areas.py) describes its own routes next to their handlers,
from the same constants the handlers use (limits, check types, states); this module
puts them together with the shared errors, for the check types this server offers and
its [api] auth_strategy, so that it says what this server does.
tests/unit/test_openapi.py checks that it documents every route of the app and nothing
else, and that it validates as OpenAPI 3.
"""

import flask

from cloudpulse import results
from cloudpulse_api import apidoc
from cloudpulse_api import areas
from cloudpulse_api import auth
from cloudpulse_api import checks

blueprint = flask.Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.0.3"
PREFIX = apidoc.PREFIX

# Every error the API (its middlewares included) answers has this body.
_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "The HTTP status' title."},
        "message": {"type": "string",
                    "description": "What is wrong; a 400's starts with the field's name "
                                   "(`type: ...`, `limit: ...`)."},
        "allowed": {"type": "array", "items": {"type": "string"},
                    "description": "400 for an unknown check type: the types offered."},
    },
}

_ERRORS = {
    400: "A bad body or query parameter; the message starts with its name.",
    401: "No valid token in X-Auth-Token ([api] auth_strategy keystone or token_file).",
    403: "oslo.policy refuses it; the message names the rule.",
    404: "No such run (or a run of another project), or nothing of the kind here.",
    413: "A body over %d bytes." % checks.MAX_BODY,
    409: "The run is not in flight any more.",
    429: "Too many runs queued or running; try again after Retry-After seconds.",
    502: "The cloud did not answer what the request needs of it; the message says what.",
}

_METHODS = {"get", "put", "post", "delete", "patch"}


def _open(paths):
    """`paths` of a server without authentication (noauth): no 401."""
    for item in paths.values():
        for method in set(item) & _METHODS:
            del item[method]["responses"]["401"]
    return paths


def _own_paths():
    return {"/openapi.json": {"get": {
        "operationId": "getOpenAPI",
        "summary": "This document.",
        "responses": apidoc.responses(200, {"description": "An OpenAPI 3 document.",
                                            "content": {"application/json": {
                                                "schema": {"type": "object"}}}}),
    }}}


def document(check_types=tuple(results.CheckType), authenticated=True):
    """The OpenAPI 3 document of an API offering `check_types` (CheckTypes), its callers
    `authenticated` (keystone, token_file) or not (noauth)."""
    paths, schemas = {}, {"Error": _ERROR}
    for area in areas.AREAS:
        paths.update(area.openapi_paths(check_types))
        schemas.update(area.OPENAPI_SCHEMAS)
    paths.update(_own_paths())
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "CloudPulse", "version": "1",
                 "description": "Health checks of an OpenStack cloud (README.md, "
                                "docs/access.md)."},
        "servers": [{"url": PREFIX}],
        "security": [{"token": []}] if authenticated else [],
        "paths": paths if authenticated else _open(paths),
        "components": {
            "securitySchemes": {"token": {
                "type": "apiKey", "in": "header", "name": "X-Auth-Token",
                "description": "A keystone token, or a token of [api] token_file."}},
            "schemas": schemas,
            "responses": {str(code): apidoc.json_response("Error", description, headers={
                "Retry-After": {"schema": {"type": "integer"}}} if code == 429 else None)
                for code, description in _ERRORS.items()},
        },
    }


@blueprint.get("/openapi.json")
def get_openapi():
    service = flask.current_app.config["CHECK_SERVICE"]
    return flask.jsonify(document(service.types, authenticated=(
        service.conf.api.auth_strategy != auth.NOAUTH)))
