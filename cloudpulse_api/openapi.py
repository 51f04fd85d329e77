"""The API's OpenAPI 3 document, in one place, served at GET /cpulse/openapi.json.

Built from the same constants the handlers use (limits, check types, states), and from
the check types this server offers and its [api] auth_strategy, so that it says what
this server does.
tests/unit/test_openapi.py checks that it documents every route of the app and nothing
else, and that it validates as OpenAPI 3.
"""

import flask

from cloudpulse import results
from cloudpulse_api import auth
from cloudpulse_api import checks
from cloudpulse_api import service as service_mod
from cloudpulse_api import webhooks

blueprint = flask.Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.0.3"
PREFIX = "/cpulse"

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
    404: "No such run, or a run of another project.",
    413: "A body over %d bytes." % checks.MAX_BODY,
    429: "Too many runs queued or running; try again after Retry-After seconds.",
}

_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = dict(_TIME, nullable=True)

_RESULT = {
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
        "started_at": _NULLABLE_TIME,
        "finished_at": _NULLABLE_TIME,
    },
}

_SUMMARY = {
    "type": "object",
    "required": ["handle", "state", "check_types", "healthy", "created_at"],
    "properties": {
        "handle": {"type": "string", "description": "The Rally task's UUID."},
        "project_id": {"type": "string", "nullable": True,
                       "description": "null: the server's own (periodic) run."},
        "timestamp": _TIME,
        "state": {"type": "string", "enum": [s.value for s in results.RunState]},
        "check_types": {"type": "array", "items": {
            "type": "string", "enum": [t.value for t in results.CheckType]}},
        "healthy": {"type": "boolean"},
        "created_at": _TIME,
        "finished_at": _NULLABLE_TIME,
    },
}

_RUN = {
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


_WEBHOOK = {
    "type": "object",
    "required": ["id", "url", "project_id", "all_projects", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "url": {"type": "string"},
        "project_id": {"type": "string", "nullable": True},
        "all_projects": {"type": "boolean",
                         "description": "Every transition (admin), else the project's."},
        "created_at": _TIME,
        "secret": {"type": "string", "description": "Only in the answer to the POST that "
                                                    "made it, when the caller sent none."},
    },
}


def _json(schema_name, description, headers=None):
    response = {"description": description, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/%s" % schema_name}}}}
    if headers:
        response["headers"] = headers
    return response


def _responses(ok_status, ok, *errors):
    answers = {str(ok_status): ok}
    answers.update({str(code): {"$ref": "#/components/responses/%d" % code}
                    for code in (401,) + errors})
    return answers


def _open(paths):
    """`paths` of a server without authentication (noauth): no 401."""
    for item in paths.values():
        for operation in item.values():
            del operation["responses"]["401"]
    return paths


def _query(name, schema, description, required=False):
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


def _paths(check_types):
    offered = [t.value for t in check_types] + [service_mod.ALL]
    return {
        "/check": {"post": {
            "operationId": "startCheck",
            "summary": "Start a run of a check type (or of all the types offered).",
            "description": "A run of the same types already queued or running for the "
                           "caller's project answers with that run's handle.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["type"],
                "properties": {"type": {"type": "string", "enum": offered}}}}}},
            "responses": _responses(
                202, _json("Handle", "Queued (or already queued or running).", headers={
                    "Location": {"schema": {"type": "string"},
                                 "description": "GET /cpulse/result?handle=..."}}),
                400, 403, 413, 429),
        }},
        "/result": {"get": {
            "operationId": "getResult",
            "summary": "A run and its results; with wait, once it finished (long poll).",
            "parameters": [
                _query("handle", {"type": "string", "pattern": r"\S"},
                       "The handle POST /cpulse/check answered.", required=True),
                _query("wait", {"type": "number", "minimum": 0,
                                "maximum": checks.MAX_WAIT, "default": 0},
                       "Seconds to wait for the run to finish (at most %d)."
                       % checks.MAX_WAIT),
            ],
            "responses": _responses(200, _json("CheckRun", "The run."), 400, 404),
        }},
        "/results": {"get": {
            "operationId": "listResults",
            "summary": "Runs, newest first: a member's project's, an admin's every run.",
            "parameters": [
                _query("type", {"type": "string",
                                "enum": [t.value for t in results.CheckType]},
                       "Runs that checked this type."),
                _query("state", {"type": "string",
                                 "enum": [s.value for s in results.RunState]},
                       "Runs in this state."),
                _query("since", {"type": "string", "pattern": r"^[1-9][0-9]{0,4}[smhd]?$"},
                       "Runs created since a duration ago (30m, 1h, 2d; seconds) or an "
                       "ISO 8601 time (2026-05-01T12:00:00Z)."),
                _query("limit", {"type": "integer", "minimum": 1,
                                 "maximum": checks.MAX_LIMIT,
                                 "default": checks.DEFAULT_LIMIT}, "Runs in one page."),
                _query("marker", {"type": "string"},
                       "The last handle of the previous page."),
                _query("project_id", {"type": "string"},
                       "One project's runs (admin; a member may name only their own)."),
            ],
            "responses": _responses(200, _json("RunList", "A page of runs."), 400, 403),
        }},
        "/types": {"get": {
            "operationId": "listTypes",
            "summary": "The check types this server offers.",
            "responses": _responses(200, _json("Types", "The types."), 403),
        }},
        "/webhooks": {
            "post": {
                "operationId": "addWebhook",
                "summary": "Register a webhook for health transitions "
                           "(docs/notifications.md).",
                "description": "A member's webhook gets their project's transitions only; "
                               "an admin's, every transition (all_projects). Without a "
                               "secret the server makes one, answered this once.",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/NewWebhook"}}}},
                "responses": _responses(201, _json("Webhook", "Registered.", headers={
                    "Location": {"schema": {"type": "string"},
                                 "description": "/cpulse/webhooks/<id>"}}), 400, 403, 413),
            },
            "get": {
                "operationId": "listWebhooks",
                "summary": "The webhooks of the caller's project (an admin's: every one).",
                "responses": _responses(200, _json("WebhookList", "The webhooks."), 403),
            },
        },
        "/webhooks/{webhook_id}": {"delete": {
            "operationId": "deleteWebhook",
            "summary": "Delete a webhook (and what its outbox still held).",
            "parameters": [{"name": "webhook_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": _responses(204, {"description": "Deleted."}, 404),
        }},
        "/openapi.json": {"get": {
            "operationId": "getOpenAPI",
            "summary": "This document.",
            "responses": _responses(200, {"description": "An OpenAPI 3 document.",
                                          "content": {"application/json": {
                                              "schema": {"type": "object"}}}}),
        }},
    }


def document(check_types=tuple(results.CheckType), authenticated=True):
    """The OpenAPI 3 document of an API offering `check_types` (CheckTypes), its callers
    `authenticated` (keystone, token_file) or not (noauth)."""
    paths = _paths(check_types)
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
            "schemas": {
                "Error": _ERROR,
                "Handle": {"type": "object", "required": ["handle"],
                           "properties": {"handle": {"type": "string"}}},
                "CheckResult": _RESULT,
                "RunSummary": _SUMMARY,
                "CheckRun": _RUN,
                "RunList": {"type": "object", "required": ["runs", "runs_links"],
                            "properties": {
                                "runs": {"type": "array", "items": {
                                    "$ref": "#/components/schemas/RunSummary"}},
                                "runs_links": {"type": "array", "items": {
                                    "type": "object", "required": ["rel", "href"],
                                    "properties": {"rel": {"type": "string"},
                                                   "href": {"type": "string"}}}}}},
                "NewWebhook": {"type": "object", "required": ["url"],
                               "additionalProperties": False, "properties": {
                                   "url": {"type": "string", "format": "uri",
                                           "maxLength": webhooks.MAX_URL,
                                           "pattern": "^https?://"},
                                   "secret": {"type": "string",
                                              "minLength": webhooks.MIN_SECRET,
                                              "maxLength": webhooks.MAX_SECRET},
                                   "all_projects": {"type": "boolean"}}},
                "Webhook": _WEBHOOK,
                "WebhookList": {"type": "object", "required": ["webhooks"], "properties": {
                    "webhooks": {"type": "array", "items": {
                        "$ref": "#/components/schemas/Webhook"}}}},
                "Types": {"type": "object", "required": ["types"], "properties": {
                    "types": {"type": "array", "items": {"type": "string"}}}},
            },
            "responses": {str(code): _json("Error", description, headers={
                "Retry-After": {"schema": {"type": "integer"}}} if code == 429 else None)
                for code, description in _ERRORS.items()},
        },
    }


@blueprint.get("/openapi.json")
def get_openapi():
    service = flask.current_app.config["CHECK_SERVICE"]
    return flask.jsonify(document(service.types, authenticated=(
        service.conf.api.auth_strategy != auth.NOAUTH)))
