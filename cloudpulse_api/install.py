"""`cloudpulse-install`: the API under uwsgi behind nginx, and a runner, as systemd services.

    cloudpulse-install --tls-cert /etc/ssl/cloudpulse.pem --tls-key /etc/ssl/cloudpulse.key \\
        --cloud mycloud --database-env CLOUDPULSE_DB --enable

Writes (every path under --prefix, default /, and every path written into them too, so a
test installs into a temporary directory and runs what it wrote):
  etc/cloudpulse/cloudpulse.conf      from the arguments (0640: it may hold passwords)
  etc/cloudpulse/policy.yaml          a placeholder for oslo.policy overrides
  etc/cloudpulse/uwsgi.ini            the API (cloudpulse_api.wsgi) on a uwsgi socket
  etc/nginx/conf.d/cloudpulse.conf    nginx: TLS (optional), proxying /cpulse/ to uwsgi
  etc/systemd/system/cloudpulse-api.service, cloudpulse-runner.service
  var/lib/cloudpulse/                 state_path (0700, the services' user's)

Idempotent: a second run with the same arguments changes nothing and says so.  It
records a checksum of each file it writes (etc/cloudpulse/install-manifest.json) and
refuses, before writing anything, to replace a file changed since (or not written by
it), naming it, unless --force.  systemd units are started only with --enable.
"""

import argparse
import dataclasses
import grp
import hashlib
import ipaddress
import json
import os
import pwd
import subprocess
import sys
import tempfile

from cloudpulse import conf as cp_conf
from cloudpulse_api import auth
from cloudpulse_api import checks

MANIFEST = "etc/cloudpulse/install-manifest.json"
CONF_DIR = "etc/cloudpulse"
STATE_DIR = "var/lib/cloudpulse"
CACHE_DIR = "var/cache/cloudpulse"   # nginx keeps its answers for ended runs below
NGINX_SITE = "etc/nginx/conf.d/cloudpulse.conf"
UNIT_DIR = "etc/systemd/system"
API_UNIT, RUNNER_UNIT = "cloudpulse-api.service", "cloudpulse-runner.service"
WSGI_EVAL = "from cloudpulse_api import wsgi; application = wsgi.init_application()"
# nginx waits for an answer longer than the longest long poll (GET /cpulse/result?wait=).
READ_TIMEOUT = checks.MAX_WAIT + 30
# Bodies up to this size reach the app, which answers 413 itself (as JSON) over MAX_BODY.
NGINX_MAX_BODY = 4 * checks.MAX_BODY
SECRET_MODE, CONF_DIR_MODE, PUBLIC_MODE = 0o640, 0o750, 0o644
# The services' own, as cloudpulse_rally.tasks.secure_state keeps it (owner-only).
STATE_DIR_MODE = 0o700


class InstallError(Exception):
    """Bad arguments, or a file the installer may not replace; the message names it."""


@dataclasses.dataclass
class File:
    path: str        # relative to the prefix
    content: str
    mode: int
    group: str = None   # chgrp'ed to it when the group exists (the service's)


@dataclasses.dataclass
class Directory:
    path: str
    mode: int
    user: str = None    # chown'ed to them when they exist (the service's)
    group: str = None


def _host_port(value, option):
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise InstallError("%s: %r is not HOST:PORT (e.g. 127.0.0.1:9999)" % (option, value))
    return host.strip("[]"), int(port)


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _ini(sections):
    """An ini file from [(section, [(key, value)])], values None left out."""
    lines = ["# Written by cloudpulse-install; rerun it to change this file."]
    for section, options in sections:
        lines.append("\n[%s]" % section)
        lines.extend("%s = %s" % (k, v) for k, v in options if v is not None)
    return "\n".join(lines) + "\n"


def cloudpulse_conf(args, prefix):
    """cloudpulse.conf's text; [api] host and port are uwsgi's socket (noauth checks it)."""
    host, port = _host_port(args.uwsgi_socket, "--uwsgi-socket")
    database = os.environ.get(args.database_env) if args.database_env else None
    if args.database_env and not database:
        raise InstallError("--database-env: $%s is unset or empty" % args.database_env)
    if database and not database.startswith("postgresql://"):
        raise InstallError("--database-env: $%s is not a postgresql:// URL"
                           % args.database_env)
    sections = {
        "DEFAULT": [("state_path", os.path.join(prefix, STATE_DIR))],
        "api": [("host", host), ("port", port), ("auth_strategy", args.auth),
                ("token_file", args.token_file)],
        "cloud": [("cloud", args.cloud), ("clouds_file", args.clouds_file)],
        "oslo_policy": [("policy_file", os.path.join(prefix, CONF_DIR, "policy.yaml"))],
    }
    if database:
        sections["rally"] = [("connection", database.replace(
            "postgresql://", "postgresql+psycopg2://", 1))]
        sections["coordination"] = [("backend_url", database)]
    for flag, settings in (("--set", args.set), ("--set-env", args.set_env)):
        for setting in settings:
            name, sep, value = setting.partition("=")
            group, dot, option = name.partition(".")
            if not sep or not dot or not option:
                raise InstallError("%s: %r is not GROUP.OPTION=%s" % (
                    flag, name if flag == "--set-env" else setting,
                    "VAR" if flag == "--set-env" else "VALUE"))
            if flag == "--set-env":
                if not os.environ.get(value):
                    raise InstallError("--set-env: %s: $%s is unset or empty" % (name, value))
                value = os.environ[value]
            options = sections.setdefault(group, [])
            options[:] = [(k, v) for k, v in options if k != option] + [(option, value)]
    return _ini(sections.items())


def validate_conf(text):
    """Load the configuration as the services will; InstallError naming the option."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write(text)
        f.flush()
        try:
            conf = cp_conf.load(["--config-file", f.name], default_config_files=[])
        except cp_conf.ConfigError as exc:
            raise InstallError("cloudpulse.conf: %s" % exc) from None
    return conf


def uwsgi_ini(args, prefix):
    return _ini([("uwsgi", [
        ("uwsgi-socket", args.uwsgi_socket),   # nginx speaks the uwsgi protocol to it
        ("master", "true"), ("processes", args.processes), ("threads", args.threads),
        ("lazy-apps", "true"),    # each worker its own database connections
        ("need-app", "true"), ("die-on-term", "true"), ("strict", "true"),
        ("harakiri", READ_TIMEOUT), ("vacuum", "true"),
        # The body read before the app answers: a 413 given without reading it would
        # reset nginx's connection mid-send (nginx answers 502).
        ("post-buffering", NGINX_MAX_BODY),
        ("home", args.venv),
        ("env", "CLOUDPULSE_CONFIG_FILE=%s" % os.path.join(prefix, CONF_DIR,
                                                           "cloudpulse.conf")),
        ("eval", WSGI_EVAL),
    ])])


_UWSGI_PARAMS = ("QUERY_STRING $query_string", "REQUEST_METHOD $request_method",
                 "CONTENT_TYPE $content_type", "CONTENT_LENGTH $content_length",
                 "REQUEST_URI $request_uri", "PATH_INFO $document_uri",
                 "DOCUMENT_ROOT $document_root", "SERVER_PROTOCOL $server_protocol",
                 "REQUEST_SCHEME $scheme", "HTTPS $https if_not_empty",
                 "REMOTE_ADDR $remote_addr", "REMOTE_PORT $remote_port",
                 "SERVER_PORT $server_port", "SERVER_NAME $server_name")


def nginx_site(args, prefix):
    """The site: `listen` with TLS when a certificate is given; /cpulse/ to uwsgi, an
    ended run's answer kept a minute per caller (the API says which: X-Accel-Expires);
    every other answer nginx itself gives is the API's JSON error shape."""
    host, port = _host_port(args.listen, "--listen")
    listen = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    tls = args.tls_cert is not None
    lines = ["# Written by cloudpulse-install; rerun it to change this file.",
             "upstream cloudpulse_api {", "    server %s;" % args.uwsgi_socket, "}",
             # nginx makes the directory, its workers' own
             "uwsgi_cache_path %s keys_zone=cloudpulse_runs:4m max_size=64m inactive=2m;"
             % os.path.join(prefix, CACHE_DIR, "nginx"), "",
             "server {", "    listen %s%s;" % (listen, " ssl" if tls else ""),
             "    server_name %s;" % args.server_name]
    if tls:
        lines += ["    ssl_certificate %s;" % args.tls_cert,
                  "    ssl_certificate_key %s;" % args.tls_key,
                  "    ssl_protocols TLSv1.2 TLSv1.3;",
                  "    ssl_session_cache shared:cloudpulse:1m;"]
    to_uwsgi = ["        uwsgi_param %s;" % param for param in _UWSGI_PARAMS]
    lines += ["    client_max_body_size %d;" % NGINX_MAX_BODY,
              # Prometheus' default metrics_path; never cached (a scrape reads now)
              "    location = /metrics {", *to_uwsgi,
              "        uwsgi_pass cloudpulse_api;", "    }",
              "    location /cpulse/ {", *to_uwsgi]
    lines += ["        uwsgi_cache cloudpulse_runs;",
              # the caller's token (either header) in the key: a caller never gets
              # another's answer
              "        uwsgi_cache_key $http_x_auth_token$http_authorization$request_method"
              "$request_uri;",
              # kept only as the API says (X-Accel-Expires: ended runs); its
              # Cache-Control: private is for the caches beyond nginx
              "        uwsgi_ignore_headers Cache-Control;",
              "        add_header X-Cache-Status $upstream_cache_status always;",
              "        uwsgi_read_timeout %ds;" % READ_TIMEOUT,
              "        uwsgi_pass cloudpulse_api;", "    }",
              # the status page (GET /cpulse/) for a person who types the host
              "    location = / {", "        return 302 /cpulse/;", "    }",
              "    location / {", "        return 404;", "    }"]
    for code, title in ((404, "Not Found"), (413, "Request Entity Too Large"),
                        (502, "Bad Gateway"), (504, "Gateway Timeout")):
        lines += ["    error_page %d @error_%d;" % (code, code),
                  "    location @error_%d {" % code,
                  "        default_type application/json;",
                  "        return %d '%s';" % (code, json.dumps(
                      {"error": title, "message": "nginx: %s" % title.lower()})), "    }"]
    return "\n".join(lines + ["}"]) + "\n"


def _unit(description, exec_start, args, prefix, extra=()):
    state = os.path.join(prefix, STATE_DIR)
    return "\n".join([
        "# Written by cloudpulse-install; rerun it to change this file.",
        "[Unit]", "Description=%s" % description,
        "After=network-online.target postgresql.service",
        "Wants=network-online.target", "",
        "[Service]", "User=%s" % args.user, "Group=%s" % args.group,
        "ExecStart=%s" % exec_start,
        "Environment=CLOUDPULSE_CONFIG_FILE=%s" % os.path.join(prefix, CONF_DIR,
                                                               "cloudpulse.conf"),
        "Restart=on-failure", "WorkingDirectory=%s" % state,
        "NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectSystem=full",
        "ReadWritePaths=%s" % state, *extra, "",
        "[Install]", "WantedBy=multi-user.target", ""])


def units(args, prefix):
    conf_file = os.path.join(prefix, CONF_DIR, "cloudpulse.conf")
    bin_dir = os.path.join(args.venv, "bin")
    return {
        API_UNIT: _unit("CloudPulse API (uwsgi)", "%s --ini %s" % (
            os.path.join(bin_dir, "uwsgi"), os.path.join(prefix, CONF_DIR, "uwsgi.ini")),
            args, prefix, ["KillSignal=SIGTERM"]),
        # SIGTERM: the runs in flight finish and are recorded before it exits.
        RUNNER_UNIT: _unit("CloudPulse runner", "%s --config-file %s" % (
            os.path.join(bin_dir, "cloudpulse-runner"), conf_file), args, prefix,
            ["TimeoutStopSec=%d" % (2 * READ_TIMEOUT)]),
    }


POLICY_PLACEHOLDER = """\
# oslo.policy overrides of CloudPulse's defaults (docs/access.md); every rule and its
# default: etc/cloudpulse/policy.yaml.sample (`tox -e genpolicy`).  Empty: the defaults.
# "cloudpulse:check:start:functional": "rule:admin"
"""


def planned_files(args, prefix):
    """The Files of an installation (the configuration validated first)."""
    conf_text = cloudpulse_conf(args, prefix)
    validate_conf(conf_text)
    files = [File(os.path.join(CONF_DIR, "cloudpulse.conf"), conf_text, SECRET_MODE,
                  args.group),
             File(os.path.join(CONF_DIR, "policy.yaml"), POLICY_PLACEHOLDER, SECRET_MODE,
                  args.group),
             File(os.path.join(CONF_DIR, "uwsgi.ini"), uwsgi_ini(args, prefix),
                  SECRET_MODE, args.group),
             File(NGINX_SITE, nginx_site(args, prefix), PUBLIC_MODE)]
    files += [File(os.path.join(UNIT_DIR, name), text, PUBLIC_MODE)
              for name, text in units(args, prefix).items()]
    return files


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


class Installation:
    """Files under `prefix`, with the manifest of the checksums it wrote."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.manifest_path = os.path.join(prefix, MANIFEST)
        try:
            with open(self.manifest_path) as f:
                self.manifest = json.load(f)
        except FileNotFoundError:
            self.manifest = {}
        except (OSError, ValueError) as exc:
            raise InstallError("%s: unreadable (%s); remove it and use --force"
                               % (self.manifest_path, exc)) from None

    def _current(self, file):
        try:
            with open(os.path.join(self.prefix, file.path), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def conflicts(self, files):
        """Paths of the files that would change and were changed since this installer
        wrote them (or were not written by it)."""
        found = []
        for file in files:
            current = self._current(file)
            if current is None or current == file.content.encode():
                continue
            if self.manifest.get(file.path) != _sha256(current):
                found.append(os.path.join(self.prefix, file.path))
        return found

    def apply(self, files, directories):
        """[(action, path)] of what changed (created, updated, mode): nothing when the
        installation is already as asked."""
        changes = []
        for directory in directories:
            full = os.path.join(self.prefix, directory.path)
            if not os.path.isdir(full):
                os.makedirs(full, mode=directory.mode, exist_ok=True)
                changes.append(("created", full + "/"))
            changes += self._ensure_mode(full, directory.mode, directory.group,
                                         directory.user)
        for file in files:
            full = os.path.join(self.prefix, file.path)
            current = self._current(file)
            if current != file.content.encode():
                os.makedirs(os.path.dirname(full), exist_ok=True)
                _write_atomic(full, file.content, file.mode)
                changes.append(("created" if current is None else "updated", full))
            changes += self._ensure_mode(full, file.mode, file.group)
        manifest = {f.path: _sha256(f.content.encode()) for f in files}
        if manifest != self.manifest:
            _write_atomic(self.manifest_path, json.dumps(manifest, indent=1, sort_keys=True)
                          + "\n", SECRET_MODE)
            self.manifest = manifest
        return changes

    @staticmethod
    def _ensure_mode(path, mode, group, user=None):
        changes = []
        stat = os.stat(path)
        gid, uid = _gid(group), _uid(user)
        if gid is not None and stat.st_gid != gid:
            os.chown(path, -1, gid)
            changes.append(("group %s" % group, path))
        if uid is not None and stat.st_uid != uid:
            os.chown(path, uid, -1)
            changes.append(("owner %s" % user, path))
        if stat.st_mode & 0o7777 != mode:
            os.chmod(path, mode)
            changes.append(("mode %o" % mode, path))
        return changes


def _gid(group):
    """The gid of `group`, None when no group is asked for or it does not exist yet."""
    if group is None:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def _uid(user):
    if user is None:
        return None
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def _write_atomic(path, text, mode):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".cloudpulse-install-")
    try:
        os.fchmod(fd, mode)   # before a byte is written: a password never readable
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _check_args(args):
    if (args.tls_cert is None) != (args.tls_key is None):
        raise InstallError("--tls-cert and --tls-key: give both, or neither")
    for option, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path is not None and not os.path.isfile(path):
            raise InstallError("%s: %s: no such file" % (option, path))
    listen_host, _ = _host_port(args.listen, "--listen")
    if args.auth == auth.NOAUTH and not _is_loopback(listen_host):
        raise InstallError("--listen: %s is not a loopback address, and --auth noauth "
                           "makes every caller admin; choose --auth keystone or "
                           "token_file" % listen_host)
    if args.enable and args.prefix != "/":
        raise InstallError("--enable: only with --prefix / (systemd reads /etc/systemd)")
    if not os.path.isfile(os.path.join(args.venv, "bin", "uwsgi")):
        raise InstallError("--venv: %s has no bin/uwsgi (pip install uWSGI)" % args.venv)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="cloudpulse-install", description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Secrets (a database password) are read from the environment, never "
               "from arguments: they would show in ps. docs/deployment.md.")
    parser.add_argument("--prefix", default="/",
                        help="install under this directory, and refer to it in what is "
                             "written (default /; a test's temporary directory)")
    parser.add_argument("--listen", default=None,
                        help="nginx's HOST:PORT (default 0.0.0.0:443 with TLS, else "
                             "127.0.0.1:80)")
    parser.add_argument("--server-name", default="_", help="nginx server_name")
    parser.add_argument("--tls-cert", help="PEM certificate (chain) nginx serves")
    parser.add_argument("--tls-key", help="its private key")
    parser.add_argument("--uwsgi-socket", default="127.0.0.1:9999",
                        help="HOST:PORT uwsgi listens on (uwsgi protocol, for nginx)")
    parser.add_argument("--processes", type=int, default=2, help="uwsgi processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per process")
    parser.add_argument("--venv", default=sys.prefix,
                        help="the virtualenv with CloudPulse and uWSGI (default: this "
                             "Python's, %(default)s)")
    parser.add_argument("--user", default="cloudpulse", help="the services' user")
    parser.add_argument("--group", default="cloudpulse",
                        help="the services' group; owns the configuration files")
    parser.add_argument("--auth", default=auth.KEYSTONE,
                        choices=[auth.KEYSTONE, auth.TOKEN_FILE, auth.NOAUTH],
                        help="[api] auth_strategy (keystone: add [keystone_authtoken] "
                             "with --set)")
    parser.add_argument("--token-file", help="[api] token_file (with --auth token_file)")
    parser.add_argument("--cloud", help="[cloud] cloud: the clouds.yaml entry to check")
    parser.add_argument("--clouds-file", help="[cloud] clouds_file")
    parser.add_argument("--database-env", metavar="VAR",
                        help="environment variable holding the shared PostgreSQL's "
                             "postgresql://user:password@host/db ([rally] connection and "
                             "[coordination] backend_url); unset: SQLite, one runner")
    parser.add_argument("--set", action="append", default=[], metavar="GROUP.OPTION=VALUE",
                        help="any other cloudpulse.conf option (repeatable)")
    parser.add_argument("--set-env", action="append", default=[],
                        metavar="GROUP.OPTION=VAR",
                        help="an option whose value (a password) is in $VAR (repeatable)")
    parser.add_argument("--force", action="store_true",
                        help="replace files changed since cloudpulse-install wrote them")
    parser.add_argument("--enable", action="store_true",
                        help="then systemctl enable --now the units and reload nginx")
    return parser


def _enable():
    for argv in (["systemctl", "daemon-reload"],
                 ["systemctl", "enable", "--now", API_UNIT, RUNNER_UNIT],
                 ["systemctl", "reload-or-restart", "nginx"]):
        subprocess.run(argv, check=True)


def install(args, out=sys.stdout):
    """Install as `args` ask; the list of changes.  InstallError before anything is
    written when the arguments are wrong or a changed file would be replaced."""
    if args.listen is None:
        args.listen = "0.0.0.0:443" if args.tls_cert else "127.0.0.1:80"
    for name in ("tls_cert", "tls_key", "token_file", "clouds_file", "venv"):
        if getattr(args, name):   # the services do not start where the installer ran
            setattr(args, name, os.path.abspath(getattr(args, name)))
    _check_args(args)
    prefix = os.path.abspath(args.prefix)
    files = planned_files(args, prefix)
    installation = Installation(prefix)
    conflicts = installation.conflicts(files)
    if conflicts and not args.force:
        raise InstallError("%s: changed since cloudpulse-install wrote it (or not written "
                           "by it); keep your change by moving it to --set, or replace "
                           "it with --force" % ", ".join(conflicts))
    changes = installation.apply(files, [
        Directory(CONF_DIR, CONF_DIR_MODE, group=args.group),
        Directory(STATE_DIR, STATE_DIR_MODE, user=args.user, group=args.group),
        Directory(CACHE_DIR, 0o755)])
    for action, path in changes:
        print("%s: %s" % (action, path), file=out)
    if not changes:
        print("nothing changed: the installation under %s is as asked" % prefix, file=out)
    if args.enable:
        _enable()
    elif changes:
        print("not started (--enable starts them): systemctl enable --now %s %s; "
              "systemctl reload nginx" % (API_UNIT, RUNNER_UNIT), file=out)
    return changes


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        install(args)
    except InstallError as exc:
        print("cloudpulse-install: %s" % exc, file=sys.stderr)
        return 2
    except (OSError, subprocess.CalledProcessError) as exc:
        print("cloudpulse-install: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
