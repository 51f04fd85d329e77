"""What every area's request handlers share: the server's CheckService, the caller, the
policy's verdict, and the API's JSON error answers."""

import flask

from cloudpulse_api import auth


def service():
    """The CheckService (cloudpulse_api.service) this app serves."""
    return flask.current_app.config["CHECK_SERVICE"]


def caller():
    return auth.caller(flask.request.environ)


def allowed(rule, target=None):
    return flask.current_app.config["POLICY"].enforce(rule, target or {}, caller())


def bad_request(message, **extra):
    """400; `message` starts with the field's name ("type: ...")."""
    return flask.jsonify(error="Bad Request", message=message, **extra), 400


def forbidden(rule, what):
    check = flask.current_app.config["POLICY"].rules.get(rule)
    return flask.jsonify(error="Forbidden", message="%s needs policy %s (%s)"
                         % (what, rule, check)), 403


def not_found(message):
    return flask.jsonify(error="Not Found", message=message), 404


def queue_full(exc):
    """The answer to a run refused by the queue (queue.QueueFull): 429, Retry-After."""
    return (flask.jsonify(error="Too Many Requests", message=str(exc)), 429,
            {"Retry-After": str(exc.retry_after)})
