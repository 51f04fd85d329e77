"""Error descriptions for the exceptions clients raised against the cloud in a box
(messages recorded from real runs: keystone stopped, neutron SIGSTOPped)."""

from keystoneauth1 import exceptions as ksa_exc
import openstack.exceptions

from cloudpulse.checks import runner
from cloudpulse import results

REFUSED = ("Unable to establish connection to http://127.0.0.1:5000/v3/auth/tokens: "
           "HTTPConnectionPool(host='127.0.0.1', port=5000): Max retries exceeded with url: "
           "/v3/auth/tokens (Caused by NewConnectionError('<urllib3.connection.HTTPConnection "
           "object at 0x7f3c>: Failed to establish a new connection: [Errno 111] Connection "
           "refused'))")


def test_connection_refused_names_the_url():
    assert runner.describe_error(ksa_exc.ConnectFailure(REFUSED), 3) == (
        "cannot connect to http://127.0.0.1:5000/v3/auth/tokens: connection refused")


def test_sdk_wrapped_keystone_error_is_unwrapped():
    try:
        try:
            raise ksa_exc.ConnectFailure(REFUSED)
        except ksa_exc.ConnectFailure as inner:
            raise openstack.exceptions.SDKException(str(inner))
    except openstack.exceptions.SDKException as outer:
        assert runner.describe_error(outer, 3).startswith("cannot connect to http://127.0.0.1:5000")


def test_timeout_says_how_long():
    exc = ksa_exc.ConnectTimeout("Request to http://127.0.0.1:9696/v2.0/networks?limit=1 "
                                 "timed out")
    assert runner.describe_error(exc, 3.0) == (
        "timeout after 3.0 s (http://127.0.0.1:9696/v2.0/networks?limit=1)")


def test_probe_crash_is_an_error_not_an_exception():
    probe = runner.Probe("endpoint.x", "endpoint", "x", lambda: 1 / 0)
    result = runner.run_probe(probe)
    assert result.status == results.Status.ERROR
    assert result.details.startswith("ZeroDivisionError")


def test_cloud_fault_is_a_failure():
    def refused():
        raise ksa_exc.ConnectFailure(REFUSED)
    result = runner.run_probe(runner.Probe("endpoint.keystone", "endpoint", "keystone", refused))
    assert result.status == results.Status.FAILED
    assert result.component == "keystone" and result.duration >= 0
