import dataclasses
import datetime

from cloudpulse import results


def _result(status, name="endpoint.glance", details=""):
    now = results.utcnow()
    return results.CheckResult(name=name, check_type="endpoint", component="glance",
                               status=status, details=details, duration=0.12,
                               started_at=now, finished_at=now)


def test_round_trip_through_dict():
    r = _result("failed", details="HTTP 503 from http://127.0.0.1:9292/v2/images")
    again = results.CheckResult.from_dict(r.to_dict())
    # Timestamps travel at millisecond precision: compare with the original at that.
    ms = r.started_at.replace(microsecond=r.started_at.microsecond // 1000 * 1000)
    assert again == dataclasses.replace(r, started_at=ms, finished_at=ms)
    assert again.status is results.Status.FAILED
    assert again.check_type is results.CheckType.ENDPOINT
    assert isinstance(again.started_at, datetime.datetime)


def test_api_document_has_the_spec_shape():
    run = results.CheckRun(handle="h1", check_types=["endpoint"], state="finished",
                           results=[_result("passed", "endpoint.keystone"),
                                    _result("failed", "endpoint.glance", "timeout after 2 s"),
                                    _result("skipped", "endpoint.horizon", "no horizon URL")])
    doc = run.to_api()
    assert doc["handle"] == "h1"
    assert doc["tests_passed"] == ["endpoint.keystone"]
    assert doc["tests_failed"] == [{"endpoint.glance": "timeout after 2 s"}]
    assert doc["tests_skipped"] == [{"endpoint.horizon": "no horizon URL"}]
    assert doc["healthy"] is False
    assert results.CheckRun.from_api(doc).to_api() == doc


def test_error_counts_as_failed_and_empty_run_is_not_healthy():
    run = results.CheckRun(handle="h", check_types=["endpoint"], state="finished",
                           results=[_result("error", details="not checked")])
    assert [r.name for r in run.failed] == ["endpoint.glance"]
    assert not results.CheckRun(handle="h", check_types=["endpoint"],
                                state="finished").healthy


def test_secrets_are_redacted_from_details():
    r = _result("failed", details="connect mysql+pymysql://os:s3cr3t@127.0.0.1/nova "
                                  "password=hunter2 X-Auth-Token: gAAAAABl")
    assert "s3cr3t" not in r.details
    assert "hunter2" not in r.details
    assert "gAAAAABl" not in r.details
    assert "127.0.0.1/nova" in r.details


def _component_result(name, component, status="passed", details=""):
    return results.CheckResult(name=name, check_type=name.split(".")[0],
                               component=component, status=status, details=details)


def test_keys_name_the_component_where_a_check_reports_several():
    run = results.CheckRun(handle="h", check_types=["operator"], state="finished", results=[
        _component_result("operator.ssh", "ssh@node1"),
        _component_result("operator.ssh", "ssh@node2"),
        _component_result("operator.rabbitmq", "rabbitmq@node1"),
        _component_result("operator.rabbitmq", "rabbitmq@node2", "failed", "not running"),
        _component_result("operator.services", "keystone@node1"),
        _component_result("operator.services", "galera@node1", "failed", "port 3306"),
        _component_result("operator.haproxy", "haproxy/keystone_api/node2", "failed", "DOWN"),
        _component_result("operator.haproxy", "haproxy"),
        _component_result("operator.galera", "galera@node1"),
    ])
    doc = run.to_api()
    assert doc["tests_failed"] == [{"operator.rabbitmq@node2": "not running"},
                                   {"operator.services/galera@node1": "port 3306"},
                                   {"operator.haproxy/keystone_api/node2": "DOWN"}]
    assert doc["tests_passed"] == ["operator.ssh@node1", "operator.ssh@node2",
                                   "operator.rabbitmq@node1", "operator.services/keystone@node1",
                                   "operator.haproxy", "operator.galera"]
    keys = [r["key"] for r in doc["results"]]
    assert len(set(keys)) == len(keys) == 9
    assert results.CheckRun.from_api(doc).to_api() == doc


def test_a_repeated_component_still_gets_a_unique_key():
    run = results.CheckRun(handle="h", check_types=["operator"], state="finished", results=[
        _component_result("operator.ssh", "ssh@node1"),
        _component_result("operator.ssh", "ssh@node1", "failed", "refused")])
    assert run.to_api()["tests_failed"] == [{"operator.ssh@node1#2": "refused"}]
