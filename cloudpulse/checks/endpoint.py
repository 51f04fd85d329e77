"""Endpoint checks: every API answers with what it should, and Horizon lets a user log in.

One probe per service.  A probe lists something cheap (limit=1, creates nothing) and,
where the caller may see them, reads the service's own view of its components: a list
that answers while nova-compute, cinder-volume or a neutron agent is down is a failure.
Keystone goes first (one token, reused by every other probe); the rest run in parallel,
each call bounded by the connection's timeout.

The Rally scenario (cloudpulse_rally) and the Tempest tests (cloudpulse_tempest) are
thin front ends over `run_endpoint_checks` and `endpoint_probes`.
"""

import html.parser
import threading
import urllib.parse

from keystoneauth1.access import service_catalog as ksa_catalog
from keystoneauth1 import plugin as ksa_plugin
import openstack.exceptions
import requests

from cloudpulse.checks import runner
from cloudpulse.checks import service_states
from cloudpulse import cloud
from cloudpulse import fanout
from cloudpulse import results

CHECK_TYPE = results.CheckType.ENDPOINT

# The services an endpoint check covers, in report order.
SERVICES = ("keystone", "glance", "nova", "neutron", "cinder", "horizon")

# Each API's service type in the catalog; keystoneauth also matches the type's aliases
# (block-storage: volumev3, volumev2, volume), as the clients do.
_SERVICE_TYPES = {
    "keystone": "identity",
    "glance": "image",
    "nova": "compute",
    "neutron": "network",
    "cinder": "block-storage",
}


def check_name(service):
    return "endpoint.%s" % service


def _first(iterable):
    # Only the first page is fetched: the sdk paginates lazily.
    return next(iter(iterable), None)


def _proxy(conn, service_type):
    """The sdk proxy of a service.  When the service does not answer on first use, the
    sdk's version discovery fails with a misleading "exists but does not have any
    supported versions": ask the catalog URL directly to report the real cause
    (refused, timeout, HTTP status)."""
    try:
        return getattr(conn, service_type.replace("-", "_"))
    except (openstack.exceptions.NotSupported,
            openstack.exceptions.ServiceDiscoveryException) as exc:
        url = conn.endpoint_for(service_type)
        if not url:
            raise
        resp = conn.session.get(url, authenticated=False, raise_exc=False)
        raise runner.ProbeFailure("version discovery at %s failed: HTTP %s"
                                  % (url, resp.status_code)) from exc


def _verdict(problems, service):
    """Fail naming the one blamed component, or the service when several are down."""
    if not problems:
        return runner.passed()
    component = problems[0][0] if len(problems) == 1 else service
    return runner.failed("; ".join(p[1] for p in problems), component=component)


class FreshCatalog:
    """The service catalog as keystone serves it at this moment, read once per run.

    A token carries the catalog of its issue time, possibly an hour old: an endpoint
    disabled since then would still look usable.  `GET /v3/auth/catalog` with the held
    token reads the catalog as keystone serves it now; it is also the run's one request
    that proves keystone answers, for a tenant too (whose token needs no renewal).
    Thread-safe: the probes running in parallel share the one read."""

    def __init__(self, conn):
        self._conn = conn
        self._lock = threading.Lock()
        self._outcome = None   # (ServiceCatalogV3, None) or (None, the exception)
        self.renewed = False   # the endpoints had moved: a new token was fetched

    def read(self):
        """The catalog; raises what the read raised (every caller sees the same)."""
        with self._lock:
            if self._outcome is None:
                try:
                    self._outcome = (self._fetch(), None)
                except Exception as exc:
                    self._outcome = (None, exc)
        catalog, error = self._outcome
        if error is not None:
            raise error
        return catalog

    def _fetch(self):
        session = self._conn.session
        resp = session.get("/auth/catalog", endpoint_filter={
            "interface": ksa_plugin.AUTH_INTERFACE, "version": (3, 0)})
        catalog = _usable(resp.json().get("catalog"))
        if self._urls(catalog) != self._urls(_usable(session.auth.get_access(
                session).service_catalog.catalog)):
            # The endpoints moved since the token was issued: the probes must call the
            # ones keystone serves now, so get a token (and its catalog) anew.
            session.auth.invalidate()
            self._conn.authorize()
            self.renewed = True
        return catalog

    def _urls(self, catalog):
        return {(svc, e.url) for svc in _SERVICE_TYPES for e in self.endpoints(catalog, svc)}

    def endpoints(self, catalog, service):
        """The service's endpoints for this connection's interface and region."""
        service_type, cfg = _SERVICE_TYPES[service], self._conn.config
        found = catalog.get_endpoints_data(
            service_type=service_type, interface=cfg.get_interface(service_type),
            region_name=cfg.get_region_name(service_type))
        return [e for by_type in found.values() for e in by_type]

    def missing(self, service):
        """Why `service` has no usable endpoint in the catalog now, or None.  Also None
        when the catalog could not be read: keystone's own check reports that."""
        try:
            catalog = self.read()
        except Exception:
            return None
        if self.endpoints(catalog, service):
            return None
        cfg = self._conn.config
        return ("no usable %s endpoint in the catalog keystone serves now (service type "
                "%s, interface %s, region %s)" % (
                    service, _SERVICE_TYPES[service], cfg.get_interface() or "public",
                    cfg.get_region_name() or "any"))


def _usable(raw_catalog):
    """A ServiceCatalogV3 of the services that have endpoints.  keystone lists a service
    whose endpoints are all disabled with none, and keystoneauth's alias matching fails
    on such an entry ("Programming error choosing an endpoint")."""
    return ksa_catalog.ServiceCatalogV3(
        [svc for svc in raw_catalog or [] if svc.get("endpoints")])


def _cloud_name(conn):
    return conn.config.name or "from OS_* variables"


def probe_keystone(conn, catalog):
    """Keystone answers with the catalog it serves now (FreshCatalog), and lists itself
    there.  That one read replaces the admin's service list: the same call on keystone's
    side (token validation and a catalog lookup), and it proves the catalog too."""
    try:
        conn.authorize()   # one token for every probe after this one (none when held)
        catalog.read()
    except Exception as exc:
        if runner.is_auth_failure(exc):
            raise runner.ProbeFailure(runner.describe_error(exc, cloud=_cloud_name(conn)))
        raise
    why = catalog.missing("keystone")
    if why:
        return runner.failed(why)
    return runner.passed()


def _in_catalog(catalog, service, probe):
    """A service probe judged against the fresh catalog too.  The probe's own calls go
    out while the catalog is read (a run costs the slower of the two, not their sum);
    when that read found the endpoints moved (and got a new token), the probe runs again
    against the endpoints keystone serves now."""
    def run():
        try:
            outcome, error = probe(), None
        except Exception as exc:   # judged after the catalog: it may explain it
            outcome, error = None, exc
        why = catalog.missing(service)
        if why:
            return runner.failed(why)
        if catalog.renewed:
            return probe()
        if error is not None:
            raise error
        return outcome
    return run


def probe_glance(conn):
    _first(_proxy(conn, "image").images(limit=1))
    return runner.passed()


def _list_and_states(conn, service, first_page, states, problems, what="service states"):
    """The API lists (one page) and, for a user allowed to, reads the service's own view of
    its components: any problem found there fails the check.  The two calls go out
    together, so a probe costs its slower call, not their sum."""
    listing, rows = fanout.fan_out(lambda call: call(), [
        lambda: _first(first_page()),
        lambda: service_states.admin_listing(conn, states)], max_workers=2, name="cpulse-states")
    listing.get()
    rows = rows.get()
    if rows is None:
        return runner.passed("%s not visible to this user" % what)
    return _verdict(problems(rows), service)


def probe_nova(conn):
    compute = _proxy(conn, "compute")
    return _list_and_states(conn, "nova", lambda: compute.servers(details=False, limit=1),
                             compute.services, service_states.services_down)


def probe_cinder(conn):
    volume = _proxy(conn, "block-storage")
    return _list_and_states(conn, "cinder", lambda: volume.volumes(details=False, limit=1),
                             volume.services, service_states.services_down)


def probe_neutron(conn):
    network = _proxy(conn, "network")
    return _list_and_states(conn, "neutron", lambda: network.networks(limit=1),
                             network.agents, service_states.dead_agents, "agent states")


class _LoginFormParser(html.parser.HTMLParser):
    """Collects the inputs of Horizon's login form (CSRF token, region, domain...) and
    the error messages shown inside it ("Invalid credentials.")."""

    def __init__(self):
        super().__init__()
        self.fields = {}
        self.errors = []
        self._in_form = False
        self._in_error = False
        self._select = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        css = attrs.get("class") or ""
        if tag == "form":
            self._in_form = True
        elif tag == "input" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""
        elif tag == "select" and attrs.get("name"):
            self._select = attrs["name"]
            self.fields.setdefault(self._select, "")
        elif tag == "option" and self._select:
            if not self.fields[self._select] or "selected" in attrs:
                self.fields[self._select] = attrs.get("value") or ""
        elif self._in_form and ("alert-danger" in css or "error" in css.split()):
            self._in_error = True

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "div":
            self._in_error = False

    def handle_data(self, data):
        if self._in_error and data.strip():
            self.errors.append(data.strip())


def probe_horizon(conn, horizon_url, timeout):
    if not horizon_url:
        return runner.skipped("no horizon URL configured")
    creds = cloud.password_credentials(conn)
    if creds is None:
        return runner.skipped("horizon login needs password credentials")
    username, password, domain = creds
    login_url = urllib.parse.urljoin(horizon_url.rstrip("/") + "/", "auth/login/")
    with requests.Session() as http:
        # The APIs' TLS settings (CA bundle or verification off, client cert), on each
        # request: requests lets REQUESTS_CA_BUNDLE override a Session's own `verify`.
        tls = {"verify": conn.session.verify, "cert": conn.session.cert}
        page = http.get(login_url, timeout=timeout, **tls)
        if page.status_code != 200:
            return runner.failed("login page %s: HTTP %s" % (login_url, page.status_code))
        form = _LoginFormParser()
        form.feed(page.text)
        if "csrfmiddlewaretoken" not in form.fields:
            return runner.failed("login page %s has no login form" % login_url)
        data = dict(form.fields, username=username, password=password)
        if "domain" in data:
            data["domain"] = domain
        resp = http.post(login_url, data=data, timeout=timeout, allow_redirects=False,
                         headers={"Referer": login_url}, **tls)
    location = resp.headers.get("Location", "")
    if resp.status_code in (301, 302, 303) and "/auth/login" not in location:
        return runner.passed()
    if resp.status_code == 200:
        answer = _LoginFormParser()
        answer.feed(resp.text)
        reason = "; ".join(answer.errors) or "the login form came back"
        return runner.failed("login as %s refused: %s" % (username, reason))
    return runner.failed("login POST %s: HTTP %s" % (login_url, resp.status_code))


def check_services(services):
    """Raise ValueError naming the field when `services` holds an unknown service."""
    unknown = [s for s in services if s not in SERVICES]
    if unknown:
        raise ValueError("services: unknown %s (known: %s)"
                         % (", ".join(map(str, unknown)), ", ".join(SERVICES)))


def endpoint_probes(conn, services=SERVICES, horizon_url=None, timeout=10.0):
    """The probes for the given services, keyed by service name, in report order.  They
    share one read of the catalog as keystone serves it now (FreshCatalog): a service
    without a usable endpoint there fails, whatever the token's catalog says."""
    check_services(services)
    catalog = FreshCatalog(conn)
    funcs = {
        "keystone": lambda: probe_keystone(conn, catalog),
        "glance": _in_catalog(catalog, "glance", lambda: probe_glance(conn)),
        "nova": _in_catalog(catalog, "nova", lambda: probe_nova(conn)),
        "neutron": _in_catalog(catalog, "neutron", lambda: probe_neutron(conn)),
        "cinder": _in_catalog(catalog, "cinder", lambda: probe_cinder(conn)),
        "horizon": lambda: probe_horizon(conn, horizon_url, timeout),
    }
    return {s: runner.Probe(check_name(s), CHECK_TYPE, s, funcs[s])
            for s in SERVICES if s in services}


def run_endpoint_checks(conn, services=SERVICES, horizon_url=None, timeout=10.0):
    """Authenticate once (the token every probe reuses; no request when the connection
    already holds a valid one), then every probe in parallel; each run reads the catalog
    keystone serves now.  Without a token, keystone is the one blamed and the other
    services are not checked."""
    probes = endpoint_probes(conn, services, horizon_url, timeout)
    if "keystone" in probes and not _has_token(conn):
        first = runner.run_probe(probes.pop("keystone"), timeout)
        if first.status != results.Status.PASSED and not _has_token(conn):
            why = "keystone failed (%s)" % first.details
            return [first] + [runner.not_checked_result(p, why) for p in probes.values()]
        return [first] + runner.run_parallel(probes.values(), timeout)
    return runner.run_parallel(probes.values(), timeout)


def _has_token(conn):
    # The identity plugin caches the token it got; no new request here.
    ref = getattr(conn.session.auth, "auth_ref", None)
    return ref is not None and not ref.will_expire_soon(30)
