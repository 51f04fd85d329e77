"""Running probes: timing, error mapping and bounded parallelism shared by every check type.

A probe is a callable returning an `Outcome`.  `run_probe` turns it into a timed
`CheckResult`, mapping the exceptions that clients raise (connection refused, timeouts,
HTTP errors) to details a person on call can act on.  A probe that crashes is an
ERROR of the check, never an exception escaping to the caller.
"""

import dataclasses
import html
import logging
import re
import time
import typing

from keystoneauth1 import exceptions as ksa_exc
import openstack.exceptions
import requests

from cloudpulse import fanout
from cloudpulse import results

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: results.Status
    component: typing.Optional[str] = None   # defaults to the probe's component
    details: str = ""


def passed(details=""):
    return Outcome(results.Status.PASSED, details=details)


def failed(details, component=None):
    return Outcome(results.Status.FAILED, component=component, details=details)


def skipped(details):
    return Outcome(results.Status.SKIPPED, details=details)


class ProbeFailure(Exception):
    """Raised inside a probe when the component is unhealthy; the message is the details."""

    def __init__(self, details, component=None):
        super().__init__(details)
        self.details = details
        self.component = component


@dataclasses.dataclass(frozen=True)
class Probe:
    name: str                       # the check's stable name, e.g. "endpoint.glance"
    check_type: results.CheckType
    component: str
    func: typing.Callable[[], Outcome]


def describe_error(exc, timeout=None, cloud=None):
    """One line naming what went wrong, for the clients' exceptions we know: for a person
    on call, so no HTML and no traceback, and the request id kept when there is one.
    `cloud` names the cloud in an authentication failure."""
    if isinstance(exc, ProbeFailure):
        return exc.details
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, openstack.exceptions.SDKException) and isinstance(
            cause, ksa_exc.ClientException) and not isinstance(
            exc, openstack.exceptions.HttpException):
        exc = cause   # openstacksdk wraps keystoneauth's error (e.g. in authorize())
    if isinstance(exc, ksa_exc.Unauthorized):
        return "authentication failed%s: HTTP %s%s" % (
            " for cloud %s" % cloud if cloud else "", exc.http_status or 401,
            _request_id(exc))
    if isinstance(exc, (ksa_exc.ConnectTimeout, requests.Timeout)):
        url = getattr(getattr(exc, "request", None), "url", None) or _url_in(exc)
        return "timeout after %s s%s" % (timeout, " (%s)" % url if url else "")
    if isinstance(exc, (ksa_exc.ConnectFailure, requests.ConnectionError)):
        url = _url_in(exc)
        return "cannot connect%s: %s" % (" to %s" % url if url else "", _socket_reason(exc))
    if isinstance(exc, ksa_exc.EndpointNotFound):
        return "no endpoint in the service catalog: %s" % _first_line(exc)
    if isinstance(exc, ksa_exc.HttpError):
        text = readable(exc.message or exc)
        return "HTTP %s: %s%s" % (exc.http_status, text, _request_id(exc, text))
    if isinstance(exc, openstack.exceptions.HttpException):
        text = readable(exc.details or exc.message or "")
        return "HTTP %s from %s: %s%s" % (exc.status_code, exc.url or "?", text,
                                         _request_id(exc, text))
    if isinstance(exc, openstack.exceptions.SDKException):
        return _first_line(exc)
    return "%s: %s" % (type(exc).__name__, _first_line(exc))


def is_auth_failure(exc):
    """Whether keystone refused the credentials (openstacksdk wraps keystoneauth's error)."""
    return isinstance(exc, ksa_exc.Unauthorized) or isinstance(
        exc.__cause__ or exc.__context__, ksa_exc.Unauthorized)


_SOCKET_REASONS = [("Connection refused", "connection refused"),
                   ("Name or service not known", "host name not found"),
                   ("No route to host", "no route to host"),
                   ("Network is unreachable", "network unreachable"),
                   ("Connection reset", "connection reset"),
                   ("RemoteDisconnected", "connection closed without a response"),
                   ("CERTIFICATE_VERIFY_FAILED", "TLS certificate verification failed")]


def _socket_reason(exc):
    text = str(exc)
    for needle, reason in _SOCKET_REASONS:
        if needle in text:
            return reason
    return _first_line(text)[:200]


def _url_in(exc):
    match = re.search(r"(https?://[^\s:'\"]+(?::\d+)?[^\s:'\"]*)", str(exc))
    return match.group(1) if match else None


def _first_line(value):
    text = str(value).strip()
    return text.splitlines()[0] if text else ""


_TAG = re.compile(r"<[^>]*>")
_READABLE_LIMIT = 300


def readable(value):
    """An error body as one line a person can read: HTML tags and entities out (a WSGI
    error page says "...operation.<br /><br />"), whitespace folded, a traceback cut
    off, at most a few hundred characters."""
    text = str(value or "")
    text = text.split("Traceback (most recent call last)", 1)[0]
    text = html.unescape(_TAG.sub(" ", text))
    text = " ".join(text.split())
    if len(text) > _READABLE_LIMIT:
        text = text[:_READABLE_LIMIT - 3].rstrip() + "..."
    return text


def _request_id(exc, text=""):
    """" (request req-...)" for an error that has one and does not already say it."""
    rid = getattr(exc, "request_id", None)
    return " (request %s)" % rid if rid and rid not in text else ""


def run_probe(probe, timeout=None):
    started_at = results.utcnow()
    t0 = time.monotonic()
    try:
        outcome = probe.func()
    except ProbeFailure as exc:
        outcome = failed(exc.details, exc.component)
    except Exception as exc:
        # Client errors reaching here are the cloud's faults (refused, timeout, HTTP 5xx).
        status = (results.Status.FAILED if is_cloud_fault(exc)
                  else results.Status.ERROR)
        if status == results.Status.ERROR:
            LOG.warning("probe %s crashed", probe.name, exc_info=True)
        outcome = Outcome(status, details=describe_error(exc, timeout))
    duration = time.monotonic() - t0
    return results.CheckResult(
        name=probe.name, check_type=probe.check_type,
        component=outcome.component or probe.component, status=outcome.status,
        details=outcome.details, duration=duration,
        started_at=started_at, finished_at=results.utcnow())


def is_cloud_fault(exc):
    return isinstance(exc, (ksa_exc.ClientException, openstack.exceptions.SDKException,
                            requests.RequestException))


def run_parallel(probes, timeout=None, max_workers=8):
    """Run probes concurrently; results keep the probes' order."""
    return [r.value for r in fanout.fan_out(lambda p: run_probe(p, timeout), probes,
                                            max_workers=max_workers, name="cpulse-probe")]


def not_checked_result(probe, why):
    """Result for a probe that could not run because something it needs failed first."""
    now = results.utcnow()
    return results.CheckResult(
        name=probe.name, check_type=probe.check_type, component=probe.component,
        status=results.Status.ERROR, details=results.NOT_CHECKED + why,
        started_at=now, finished_at=now)
