"""The operator validators' per-run results (cloudpulse_rally.operator_validators) on a real
Rally DB and Rally's own validation machinery.  The SSH run itself is replaced by a
recorded list of results: the bed tests (tests/operator) run it for real."""

import threading
import time

import pytest
from rally.common import objects
from rally.common import validation

from cloudpulse.checks import operator
from cloudpulse import results
from cloudpulse_rally import operator_validators
from cloudpulse_rally import report
from cloudpulse_rally.scenarios import operator as operator_scenario

SCENARIO = operator_scenario.Operator


def _found(rabbit="passed"):
    now = results.utcnow()
    return [results.CheckResult("operator.rabbitmq", "operator", "rabbitmq@node2", rabbit,
                                "" if rabbit == "passed" else "rabbit@node2 not running",
                                0.4, now, now),
            results.CheckResult("operator.galera", "operator", "galera@node1", "passed",
                                "", 0.3, now, now)]


def _seen(found):
    return [(r.component, r.status.value) for r in found]


@pytest.fixture
def store(rally_store):
    return rally_store


@pytest.fixture
def ssh_runs(monkeypatch):
    """Stands in for the SSH run: counts runs, answers what the test sets."""
    state = {"runs": 0, "answer": _found(), "seconds": 0.0}

    def run_from_args(args):
        state["runs"] += 1
        time.sleep(state["seconds"])
        return list(state["answer"])

    monkeypatch.setattr(operator, "run_from_args", run_from_args)
    return state


def _validate(task, args):
    """Rally's semantic validation of one CloudPulse.operator workload, as the engine
    runs it (every validator of the scenario, in order): the failure messages."""
    workload = {"name": "CloudPulse.operator", "args": args, "position": 0}
    messages = []
    for name, _, kwargs in SCENARIO._meta_get("validators"):
        if not name.startswith("cloudpulse_operator_"):
            continue
        try:
            validation.Validator.get(name)(**kwargs).validate(
                {"task": task}, workload, SCENARIO, None)
        except validation.ValidationError as exc:
            messages.append(exc.message)
    return messages


ARGS = {"service_map": "/etc/cloudpulse/map.yaml", "checks": ["rabbitmq", "galera"]}


def test_checks_run_once_per_workload_and_the_scenario_finds_them(store, ssh_runs):
    task = objects.Task.get(store.create_run([results.CheckType.OPERATOR]))
    assert _validate(task, ARGS) == []
    # The scenario passes its arguments spelled out in full: still the same run.
    full = dict(ARGS, known_hosts_file="/etc/cloudpulse/known_hosts", ssh_user="root")
    assert _seen(operator_validators.take_results(task["uuid"], SCENARIO, full)) == _seen(
        _found())
    assert ssh_runs["runs"] == 1
    # ... and forgotten once read: a second iteration looks again.
    operator_validators.take_results(task["uuid"], SCENARIO, ARGS)
    assert ssh_runs["runs"] == 2


def test_a_failed_validation_records_every_result_into_the_task_and_forgets(store, ssh_runs):
    ssh_runs["answer"] = _found(rabbit="failed")
    handle = store.create_run([results.CheckType.OPERATOR])
    messages = _validate(objects.Task.get(handle), ARGS)
    assert messages == ["rabbitmq@node2: rabbit@node2 not running"]
    assert "cloudpulse-results" not in messages[0]
    run = store.get_run(handle)
    assert [(r.component, r.status.value) for r in run.results] == [
        ("rabbitmq@node2", "failed"), ("galera@node1", "passed")]
    # Nothing kept: the same task's next look runs the checks again.
    ssh_runs["answer"] = _found()
    assert _seen(operator_validators.take_results(handle, SCENARIO, ARGS)) == _seen(_found())
    assert ssh_runs["runs"] == 2


def test_runs_of_two_tasks_do_not_wait_for_each_other(store, ssh_runs):
    ssh_runs["seconds"] = 0.5
    tasks_ = [objects.Task.get(store.create_run([results.CheckType.OPERATOR]))
              for _ in range(2)]
    t0 = time.monotonic()
    threads = [threading.Thread(target=_validate, args=(t, ARGS)) for t in tasks_]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - t0 < 0.9   # one SSH run's time, not two
    assert ssh_runs["runs"] == 2


def test_the_results_table_is_what_report_reads(store, ssh_runs):
    ssh_runs["answer"] = _found(rabbit="failed")
    handle = store.create_run([results.CheckType.OPERATOR])
    _validate(objects.Task.get(handle), ARGS)
    task = store.api.task.get(handle, detailed=True)
    run = report.task_to_run(task)
    assert run.to_api()["tests_failed"] == [
        {"operator.rabbitmq": "rabbit@node2 not running"}]
