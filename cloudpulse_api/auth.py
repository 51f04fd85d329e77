"""Who is calling: the API's authentication, one WSGI middleware per [api] auth_strategy.

Every strategy leaves the caller in the request's environ as keystonemiddleware's
auth_token does (X-Identity-Status, X-Project-Id, X-Roles, X-User-Id), and nothing a
client sent under those names gets through; the app reads them with oslo.context
(`caller()`) and asks oslo.policy what the caller may do (cloudpulse_api/policies.py).

- keystone: keystonemiddleware's auth_token over the [keystone_authtoken] options;
- token_file: static tokens in a file (a CloudPulse without keystone, in a tenant VM);
- noauth: every caller is admin; allowed on a loopback [api] host only (conf.py).
"""

import hmac
import json
import logging
import os

from keystoneauth1 import exceptions as ksa_exc
from keystonemiddleware import auth_token
from keystonemiddleware import exceptions as ksm_exc
from oslo_context import context
import webob
import webob.exc

from cloudpulse import conf as cp_conf

LOG = logging.getLogger(__name__)

KEYSTONE, TOKEN_FILE, NOAUTH = "keystone", "token_file", "noauth"
MIN_TOKEN_LENGTH = 20   # a static token must not be guessable
_AUTH_HEADER = "HTTP_X_AUTH_TOKEN"
_UNAUTHORIZED = "The request you have made requires authentication: send a token in " \
                "X-Auth-Token (docs/access.md)."


def caller(environ):
    """The request's caller (oslo.context RequestContext) as the middleware left it."""
    return context.RequestContext.from_environ(environ)


def _error_body(title, message):
    """An error shaped as the app's own: {"error": title, "message": ...}."""
    return json.dumps({"error": title, "message": message}).encode()


def json_error(start_response, code, title, message, headers=()):
    """A WSGI error answer with the app's error body."""
    body = _error_body(title, message)
    start_response("%d %s" % (code, title),
                   [("Content-Type", "application/json"),
                    ("Content-Length", str(len(body)))] + list(headers))
    return [body]


def _drop_identity_headers(environ):
    """A client must not claim an identity: every X-* and OpenStack-* header but the
    token goes, as keystonemiddleware's remove_auth_headers does for its own."""
    for key in [k for k in environ if k.startswith(("HTTP_X_", "HTTP_OPENSTACK_"))
                and k != _AUTH_HEADER]:
        del environ[key]


def _set_identity(environ, project_id, roles, user_id):
    environ.update({"HTTP_X_IDENTITY_STATUS": "Confirmed", "HTTP_X_ROLES": ",".join(roles),
                    "HTTP_X_USER_ID": user_id})
    if project_id:
        environ["HTTP_X_PROJECT_ID"] = project_id


class NoAuth:
    """Every caller is admin of no project (as the server's own periodic runs)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        _drop_identity_headers(environ)
        environ.pop(_AUTH_HEADER, None)
        _set_identity(environ, None, ["admin"], "noauth")
        return self.app(environ, start_response)


class TokenFile:
    """Static tokens: `<token> <project_id> <role>[,<role>...]` per line."""

    def __init__(self, app, path):
        self.app = app
        self.entries = load_token_file(path)

    def find(self, token):
        """(project_id, roles) of a token, or None.  Every entry is compared, in
        constant time, so the answer's timing tells nothing about the tokens."""
        found = None
        for entry_token, project_id, roles in self.entries:
            if hmac.compare_digest(entry_token.encode(), token.encode()):
                found = (project_id, roles)
        return found

    def __call__(self, environ, start_response):
        _drop_identity_headers(environ)
        found = self.find(environ.pop(_AUTH_HEADER, ""))
        if found is None:
            return json_error(start_response, 401, "Unauthorized", _UNAUTHORIZED)
        project_id, roles = found
        _set_identity(environ, project_id, roles, "token_file:" + project_id)
        return self.app(environ, start_response)


def load_token_file(path):
    """[(token, project_id, roles)]; cp_conf.ConfigError naming [api] token_file and the
    line (never the token) when the file is unsafe or malformed."""
    where = "[api] token_file: %s" % path
    try:
        mode = os.stat(path).st_mode & 0o777
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise cp_conf.ConfigError("%s: %s" % (where, exc.strerror)) from None
    if mode & 0o007:
        raise cp_conf.ConfigError("%s is readable by others (mode %o): it holds the API's "
                                  "tokens; chmod o-rwx it" % (where, mode))
    entries, seen = [], set()
    for number, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 3:
            raise cp_conf.ConfigError("%s, line %d: expected `<token> <project_id> "
                                      "<role>[,<role>...]`" % (where, number))
        token, project_id, roles = fields[0], fields[1], fields[2].split(",")
        if len(token) < MIN_TOKEN_LENGTH:
            raise cp_conf.ConfigError("%s, line %d: a token of at least %d characters "
                                      "(e.g. `openssl rand -hex 20`)"
                                      % (where, number, MIN_TOKEN_LENGTH))
        if token in seen:
            raise cp_conf.ConfigError("%s, line %d: the same token as an earlier line"
                                      % (where, number))
        seen.add(token)
        entries.append((token, project_id, [r for r in roles if r]))
    if not entries:
        raise cp_conf.ConfigError("%s: no token in it" % where)
    return entries


class AuthToken(auth_token.AuthProtocol):
    """keystonemiddleware's auth_token whose refusals (401; 503 when keystone cannot be
    reached) read as the app's other errors."""

    def process_request(self, request):
        try:
            return super().process_request(request)
        except webob.exc.HTTPException as exc:
            unauthorized = exc.code == 401
            body = _error_body(exc.title, _UNAUTHORIZED if unauthorized else
                               "the token could not be validated: keystone did not answer")
            response = webob.Response(body=body, status=exc.code,
                                      content_type="application/json", charset="UTF-8")
            if unauthorized:   # where to get a token, as auth_token says it
                response.headers.extend(self._reject_auth_headers)
            return response


def keystone(app, conf):
    """auth_token over cloudpulse.conf's [keystone_authtoken]: every request without a
    valid token refused (401), no delayed decision."""
    try:
        # It registers the [keystone_authtoken] options on `conf` and reads them there.
        middleware = AuthToken(app, {"oslo_config_config": conf,
                                     "delay_auth_decision": False})
    except (ksm_exc.ConfigurationError, ksa_exc.ClientException) as exc:
        raise cp_conf.ConfigError("[keystone_authtoken] %s" % exc) from None
    if not conf.keystone_authtoken.auth_type:
        raise cp_conf.ConfigError(
            "[keystone_authtoken] auth_type: unset; with [api] auth_strategy = keystone "
            "the server validates tokens with its own keystone credentials (auth_type = "
            "password, auth_url, username, password, project_name, ...; docs/access.md)")
    return middleware


class BearerToken:
    """`Authorization: Bearer <token>` taken as X-Auth-Token when that is not sent: a
    client that can send only the former (a Prometheus scrape) authenticates too."""

    _PREFIX = "bearer "

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        value = environ.get("HTTP_AUTHORIZATION", "")
        if _AUTH_HEADER not in environ and value[:len(self._PREFIX)].lower() == self._PREFIX:
            environ[_AUTH_HEADER] = value[len(self._PREFIX):].strip()
        return self.app(environ, start_response)


def wrap(app, conf):
    """`app` behind the [api] auth_strategy's middleware."""
    strategy = conf.api.auth_strategy
    if strategy == KEYSTONE:
        return BearerToken(keystone(app, conf))
    if strategy == TOKEN_FILE:
        return BearerToken(TokenFile(app, conf.api.token_file))
    LOG.warning("[api] auth_strategy = noauth: every caller of http://%s:%s is admin; "
                "use it on this machine only", conf.api.host, conf.api.port)
    return NoAuth(app)
