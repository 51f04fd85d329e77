"""Flask application factory: one blueprint per check area, JSON errors only."""

import logging

import flask
from werkzeug import exceptions as http_exc

from cloudpulse_api import checks

LOG = logging.getLogger(__name__)


def create_app(service):
    """The WSGI app over a CheckService (cloudpulse_api.service)."""
    app = flask.Flask("cloudpulse_api")
    app.config["CHECK_SERVICE"] = service
    app.json.sort_keys = False
    # A body sent without its length (chunked) is cut off here as it is read.
    app.config["MAX_CONTENT_LENGTH"] = checks.MAX_BODY
    app.register_blueprint(checks.blueprint, url_prefix="/cpulse")

    @app.errorhandler(http_exc.RequestEntityTooLarge)
    def too_large(exc):
        return flask.jsonify(error=exc.name,
                             message="body: at most %d bytes" % checks.MAX_BODY), 413

    @app.errorhandler(http_exc.HTTPException)
    def http_error(exc):
        return flask.jsonify(error=exc.name, message=exc.description), exc.code

    @app.errorhandler(Exception)
    def crash(exc):
        # Never a traceback to the client; the log has it.
        LOG.exception("request %s %s failed", flask.request.method, flask.request.path)
        return flask.jsonify(error="Internal Server Error",
                             message="the server failed; see its log"), 500

    return app
