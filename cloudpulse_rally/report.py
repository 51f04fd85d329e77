"""CloudPulse results inside Rally: written as a Table output, read back from a task.

A CloudPulse scenario stores its `CheckResult`s as one "complete" output table per
iteration (visible in `rally task report` under Scenario Data).  `task_to_run` reads a
Rally task (engine-run or recorded by the facade) back into the one result model.
"""

from cloudpulse import results

OUTPUT_TITLE = "CloudPulse results"
COLUMNS = ["name", "check_type", "component", "status", "details", "duration",
           "started_at", "finished_at"]
TAG = "cloudpulse"
INTERRUPTED = "Interrupted"   # the error type of runs the server could not finish
TYPE_TAG_PREFIX = "cloudpulse-type:"
PROJECT_TAG_PREFIX = "cloudpulse-project:"   # the project that asked for the run
CLOUD_TAG_PREFIX = "cloudpulse-cloud:"       # the cloud checked

# Rally task statuses -> the run's state.
RUNNING = {"init", "validating", "validated", "running", "aborting", "soft_aborting"}
FINISHED = "finished"   # ran to its end (crashed, aborted, validation_failed did not)


def to_output(check_results):
    """Rally `complete` output (Table chart) for a list of CheckResult."""
    rows = []
    for r in check_results:
        d = r.to_dict()
        rows.append([d[c] if d[c] is not None else "" for c in COLUMNS])
    return {"title": OUTPUT_TITLE, "chart_plugin": "Table",
            "description": "One row per check (CloudPulse result model)",
            "data": {"cols": list(COLUMNS), "rows": rows}}


def from_output(output):
    cols = output["data"]["cols"]
    return [results.CheckResult.from_dict(
        {k: (v if v != "" or k == "details" else None) for k, v in zip(cols, row)})
        for row in output["data"]["rows"]]


def atomic_actions(check_results):
    """One Rally atomic action per check, so the report times each probe."""
    return [{"name": r.name, "children": [],
             "started_at": r.started_at.timestamp(),
             "finished_at": r.finished_at.timestamp(),
             **({"failed": True} if not r.ok else {})}
            for r in check_results if r.started_at and r.finished_at]


def run_tags(check_types, project_id=None, cloud=None):
    """A run's task tags: CloudPulse's, one per check type, the asking project's (none
    for the server's own runs: periodic, or an API without authentication) and the
    cloud's."""
    return ([TAG] + [TYPE_TAG_PREFIX + t.value for t in check_types]
            + ([PROJECT_TAG_PREFIX + project_id] if project_id else [])
            + ([CLOUD_TAG_PREFIX + cloud] if cloud else []))


def _tag_values(tags, prefix):
    return [t[len(prefix):] for t in tags or [] if t.startswith(prefix)]


def run_state(status, validation_result):
    """The RunState of a Rally task's status and validation_result."""
    if status in RUNNING:
        return results.RunState.RUNNING if status != "init" else results.RunState.QUEUED
    if (validation_result or {}).get("etype") == INTERRUPTED:
        return results.RunState.INTERRUPTED
    return results.RunState.FINISHED


def _project_of(tags):
    return (_tag_values(tags, PROJECT_TAG_PREFIX) or [None])[0]


def _cloud_of(tags):
    return (_tag_values(tags, CLOUD_TAG_PREFIX) or [None])[0]


def task_summary(task, tags, iterations):
    """RunSummary of a Rally task row (uuid, status, validation_result, pass_sla,
    created_at, updated_at), its tags and how many iterations its workloads recorded:
    healthy when it finished with iterations and passed its SLA (a check that did not
    pass fails its iteration, which fails the failure_rate SLA)."""
    status = task["status"]
    state = run_state(status, task["validation_result"])
    return results.RunSummary(
        handle=task["uuid"], check_types=_tag_values(tags, TYPE_TAG_PREFIX), state=state,
        healthy=(state == results.RunState.FINISHED and status == FINISHED
                 and bool(task["pass_sla"]) and iterations > 0),
        created_at=task["created_at"],
        finished_at=task["updated_at"] if status not in RUNNING else None,
        project_id=_project_of(tags), cloud=_cloud_of(tags))


def task_to_run(task):
    """CheckRun from a detailed Rally task dict (rally.api task.get(..., detailed=True))."""
    check_types = _tag_values(task.get("tags"), TYPE_TAG_PREFIX)
    status = task["status"]
    run = results.CheckRun(handle=task["uuid"], check_types=check_types,
                           state=run_state(status, task.get("validation_result")),
                           created_at=task["created_at"],
                           finished_at=task["updated_at"] if status not in RUNNING
                           else None, project_id=_project_of(task.get("tags")),
                           cloud=_cloud_of(task.get("tags")))
    for subtask in task.get("subtasks", []):
        for workload in subtask.get("workloads", []):
            run.results.extend(_workload_results(workload, check_types))
    if status in ("crashed", "validation_failed", "aborted") and not run.results:
        # Stopped before any workload recorded results (operator validators record
        # theirs into the task when they fail it): the task's own error is the result.
        run.results.append(_task_error(task, check_types))
    return run


def _workload_results(workload, check_types):
    out = []
    for iteration in workload.get("data", []):
        tables = [o for o in iteration.get("output", {}).get("complete", [])
                  if o.get("title") == OUTPUT_TITLE]
        for table in tables:
            out.extend(from_output(table))
        if iteration.get("error") and not tables:
            # The scenario failed before it could report (e.g. no token at all).
            etype, message = (iteration["error"] + ["", ""])[:2]
            out.append(results.CheckResult(
                name=workload["name"], check_type=_type_of(workload, check_types),
                component=workload["name"], status=results.Status.ERROR,
                details="%s: %s" % (etype, message)))
    return out


def _type_of(workload, check_types):
    # Workloads are named CloudPulse.<type>; a task tag is the fallback.
    kind = workload["name"].rpartition(".")[2]
    if kind in {t.value for t in results.CheckType}:
        return kind
    return check_types[0] if check_types else results.CheckType.ENDPOINT


def _task_error(task, check_types):
    info = task.get("validation_result") or {}
    details = ("rally task %s: %s %s" % (task["status"], info.get("etype", ""),
                                          info.get("msg", ""))).strip()
    return results.CheckResult(
        name="rally.task", check_type=check_types[0] if check_types else "endpoint",
        component="rally", status=results.Status.ERROR, details=details)
