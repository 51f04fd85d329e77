"""Flask application factory: one blueprint per check area, JSON errors only, behind
the [api] auth_strategy's middleware and oslo.policy's rules."""

import logging

import flask
from oslo_config import cfg
from oslo_policy import policy
from werkzeug import exceptions as http_exc

from cloudpulse import conf as cp_conf
from cloudpulse_api import areas
from cloudpulse_api import auth
from cloudpulse_api import checks
from cloudpulse_api import openapi
from cloudpulse_api import policies

LOG = logging.getLogger(__name__)

# One blueprint per area (cloudpulse_api/areas.py), and the OpenAPI document of them all.
BLUEPRINTS = tuple(area.blueprint for area in areas.AREAS) + (openapi.blueprint,)


def _policy_enforcer(conf):
    """The Enforcer, its policy file read now: a bad one stops the server, named."""
    enforcer = policies.enforcer(conf)
    try:
        enforcer.load_rules()
    except (cfg.Error, policy.PolicyNotRegistered, ValueError) as exc:
        raise cp_conf.ConfigError("[oslo_policy] policy_file: %s" % exc) from None
    return enforcer


def create_app(service):
    """The WSGI app over a CheckService (cloudpulse_api.service); cp_conf.ConfigError
    when the access configuration is wrong."""
    app = flask.Flask("cloudpulse_api")
    app.config["CHECK_SERVICE"] = service
    app.config["POLICY"] = _policy_enforcer(service.conf)
    app.wsgi_app = auth.wrap(app.wsgi_app, service.conf)
    app.json.sort_keys = False
    # A body sent without its length (chunked) is cut off here as it is read.
    app.config["MAX_CONTENT_LENGTH"] = checks.MAX_BODY
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint, url_prefix=openapi.PREFIX)
    for blueprint in areas.ROOT_BLUEPRINTS:
        app.register_blueprint(blueprint)

    @app.get("/")
    def root():
        # a person who types the host: the status page (cloudpulse_api/status.py)
        return flask.redirect(openapi.PREFIX + "/", 302)

    @app.errorhandler(http_exc.RequestEntityTooLarge)
    def too_large(exc):
        return flask.jsonify(error=exc.name,
                             message="body: at most %d bytes" % checks.MAX_BODY), 413

    @app.errorhandler(http_exc.HTTPException)
    def http_error(exc):
        # its headers but the HTML body's type: a 405's Allow, a 401's WWW-Authenticate
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return flask.jsonify(error=exc.name, message=exc.description), exc.code, headers

    @app.errorhandler(Exception)
    def crash(exc):
        # Never a traceback to the client; the log has it.
        LOG.exception("request %s %s failed", flask.request.method, flask.request.path)
        return flask.jsonify(error="Internal Server Error",
                             message="the server failed; see its log"), 500

    return app
