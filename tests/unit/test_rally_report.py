"""The result model inside Rally: table output round trip and task -> CheckRun mapping."""

from rally.task.processing import charts

from cloudpulse import results
from cloudpulse_rally import report


def _results():
    now = results.utcnow()
    return [results.CheckResult("endpoint.keystone", "endpoint", "keystone", "passed",
                                "", 0.05, now, now),
            results.CheckResult("endpoint.nova", "endpoint", "nova-compute@host1", "failed",
                                "nova-compute@host1 is down (last report 2026-11-24T16:00:00)",
                                0.2, now, now)]


def test_output_is_a_valid_rally_table_and_round_trips():
    original = _results()
    out = report.to_output(original)
    assert charts.validate_output("complete", out) is None
    assert [r.to_dict() for r in report.from_output(out)] == [r.to_dict() for r in original]


def _task(status="finished", data=None, tags=("cloudpulse", "cloudpulse-type:endpoint")):
    return {"uuid": "6d3c0d0e-0000-4000-8000-000000000001", "status": status,
            "tags": list(tags), "created_at": "2026-11-24T16:00:00",
            "updated_at": "2026-11-24T16:00:01", "validation_result": {},
            "subtasks": [{"workloads": [{"name": "CloudPulse.endpoint",
                                         "data": data or []}]}]}


def test_task_with_results_table():
    iteration = {"output": {"complete": [report.to_output(_results())]},
                 "error": ["ChecksFailed", "endpoint.nova: down", ""]}
    run = report.task_to_run(_task(data=[iteration]))
    assert run.state == results.RunState.FINISHED
    assert run.check_types == [results.CheckType.ENDPOINT]
    assert run.to_api()["tests_passed"] == ["endpoint.keystone"]
    assert list(run.to_api()["tests_failed"][0]) == ["endpoint.nova"]


def test_iteration_error_without_table_is_an_error_result():
    iteration = {"output": {"complete": []},
                 "error": ["AuthenticationFailed", "Failed to authenticate to "
                           "http://127.0.0.1:5000/v3 for user 'admin'", "tb"]}
    run = report.task_to_run(_task(data=[iteration]))
    assert [(r.name, r.status.value) for r in run.results] == [
        ("CloudPulse.endpoint", "error")]
    assert run.results[0].details.startswith("AuthenticationFailed: Failed to authenticate")


def test_crashed_task_without_workload_data_reports_the_rally_error():
    task = _task(status="crashed")
    task["validation_result"] = {"etype": "Interrupted", "msg": "the server stopped"}
    run = report.task_to_run(task)
    assert run.state == results.RunState.INTERRUPTED
    assert run.results[0].status == results.Status.ERROR
    assert "Interrupted the server stopped" in run.results[0].details


def test_running_task_is_running():
    assert report.task_to_run(_task(status="running")).state == results.RunState.RUNNING
    assert report.task_to_run(_task(status="init")).state == results.RunState.QUEUED


def test_the_asking_project_is_a_tag_and_comes_back_in_the_run():
    tags = report.run_tags([results.CheckType.ENDPOINT], "p-123")
    assert tags == ["cloudpulse", "cloudpulse-type:endpoint", "cloudpulse-project:p-123"]
    assert report.task_to_run(_task(tags=tags)).project_id == "p-123"
    # the server's own runs (periodic, noauth) belong to no project
    assert report.run_tags([results.CheckType.ENDPOINT]) == tags[:2]
    assert report.task_to_run(_task()).project_id is None
