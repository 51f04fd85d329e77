"""POST, GET /cpulse/webhooks and DELETE /cpulse/webhooks/<id>: the webhooks that receive
health transitions (docs/notifications.md).

A member's webhook gets their project's transitions only (in the member view); an
admin's (cloudpulse:webhooks:all_projects) gets every transition.  A secret is shown
once, in the answer to the POST that made it; never in a GET, a log or a result.
"""

import secrets

import flask

from cloudpulse import conf as cp_conf
from cloudpulse_api import apidoc
from cloudpulse_api import handling
from cloudpulse_api import policies

blueprint = flask.Blueprint("webhooks", __name__)

MIN_SECRET, MAX_SECRET = 16, 255   # characters of a secret the caller chooses
MAX_URL = 2048


def _store():
    return handling.service().notifications


def _validated(body):
    """(url, secret or None, all_projects or None) of a POST's body; ValueError naming
    the field that is wrong."""
    if not isinstance(body, dict):
        raise ValueError('body: expected a JSON object such as {"url": "https://..."}')
    unknown = sorted(set(body) - {"url", "secret", "all_projects"})
    if unknown:
        # named by the body: an unknown key may be anything, "" or "url: x" included
        raise ValueError("body: %r is not a field of a webhook (url, secret, all_projects)"
                         % unknown[0])
    url = body.get("url")
    if not isinstance(url, str) or len(url) > MAX_URL or not cp_conf.is_webhook_url(url):
        raise ValueError("url: an http or https URL of at most %d characters" % MAX_URL)
    secret = body.get("secret")
    if secret is not None and (not isinstance(secret, str)
                               or not MIN_SECRET <= len(secret) <= MAX_SECRET):
        raise ValueError("secret: a string of %d to %d characters (or none: the server "
                         "makes one and answers it once)" % (MIN_SECRET, MAX_SECRET))
    all_projects = body.get("all_projects")
    if all_projects is not None and not isinstance(all_projects, bool):
        raise ValueError("all_projects: true or false")
    return url, secret, all_projects


@blueprint.post("/webhooks")
def add_webhook():
    if not handling.allowed(policies.WEBHOOKS_CREATE):
        return handling.forbidden(policies.WEBHOOKS_CREATE, "registering a webhook")
    try:
        url, secret, all_projects = _validated(flask.request.get_json(silent=True))
    except ValueError as exc:
        return handling.bad_request(str(exc))
    may_all = handling.allowed(policies.WEBHOOKS_ALL_PROJECTS)
    if all_projects and not may_all:
        return handling.forbidden(policies.WEBHOOKS_ALL_PROJECTS,
                                 "all_projects: every project's transitions")
    made = secret is None
    hook = _store().add_webhook(url, handling.caller().project_id,
                                may_all if all_projects is None else all_projects,
                                secrets.token_hex(32) if made else secret)
    answer = hook.to_api()
    if made:   # the one time it is shown
        answer["secret"] = hook.secret
    return flask.jsonify(answer), 201, {"Location": "/cpulse/webhooks/" + hook.id}


@blueprint.get("/webhooks")
def list_webhooks():
    if not handling.allowed(policies.WEBHOOKS_LIST):
        return handling.forbidden(policies.WEBHOOKS_LIST, "listing webhooks")
    hooks = _store().webhooks(handling.caller().project_id,
                              all_projects=handling.allowed(policies.WEBHOOKS_ALL_PROJECTS))
    return flask.jsonify(webhooks=[hook.to_api() for hook in hooks])


@blueprint.delete("/webhooks/<webhook_id>")
def delete_webhook(webhook_id):
    hook = _store().webhook(webhook_id)
    target = {"project_id": hook.project_id} if hook else None
    # another project's webhook reads exactly as one that does not exist
    if hook is None or not (handling.allowed(policies.WEBHOOKS_ALL_PROJECTS)
                            or handling.allowed(policies.WEBHOOKS_DELETE, target)):
        return handling.not_found("webhook: no webhook %r" % webhook_id)
    _store().delete_webhook(webhook_id)
    return "", 204


# -- this area in the OpenAPI document (cloudpulse_api/openapi.py) ------------------------
OPENAPI_SCHEMAS = {
    "NewWebhook": {"type": "object", "required": ["url"], "additionalProperties": False,
                   "properties": {
                       "url": {"type": "string", "format": "uri", "maxLength": MAX_URL,
                               "pattern": "^https?://"},
                       "secret": {"type": "string", "minLength": MIN_SECRET,
                                  "maxLength": MAX_SECRET},
                       "all_projects": {"type": "boolean"}}},
    "Webhook": {
        "type": "object",
        "required": ["id", "url", "project_id", "all_projects", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "url": {"type": "string"},
            "project_id": {"type": "string", "nullable": True},
            "all_projects": {"type": "boolean",
                             "description": "Every transition (admin), else the project's."},
            "created_at": apidoc.TIME,
            "secret": {"type": "string",
                       "description": "Only in the answer to the POST that made it, when "
                                      "the caller sent none."},
        },
    },
    "WebhookList": {"type": "object", "required": ["webhooks"], "properties": {
        "webhooks": {"type": "array", "items": {"$ref": "#/components/schemas/Webhook"}}}},
}


def openapi_paths(check_types):
    """This area's paths in the OpenAPI document (the same for any check types)."""
    return {
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
                "responses": apidoc.responses(
                    201, apidoc.json_response("Webhook", "Registered.", headers={
                        "Location": {"schema": {"type": "string"},
                                     "description": "/cpulse/webhooks/<id>"}}),
                    400, 403, 413),
            },
            "get": {
                "operationId": "listWebhooks",
                "summary": "The webhooks of the caller's project (an admin's: every one).",
                "responses": apidoc.responses(
                    200, apidoc.json_response("WebhookList", "The webhooks."), 403),
            },
        },
        "/webhooks/{webhook_id}": {"delete": {
            "operationId": "deleteWebhook",
            "summary": "Delete a webhook (and what its outbox still held).",
            "parameters": [{"name": "webhook_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": apidoc.responses(204, {"description": "Deleted."}, 404),
        }},
    }
