"""The operator checks as Rally validators: `cloudpulse_operator_<check>`.

Each validator is one operator check (cloudpulse.checks.operator) and fails the task's
validation, with a message a person can read, when its check finds a fault.

The checks of one workload run once, over one set of SSH connections: the first of the
workload's validators runs them all, the others and the CloudPulse.operator scenario
read the same results.  They are kept per run, under the task's uuid and the workload's
full arguments (the scenario's defaults filled in, so the scenario finds them whatever
the template spelled out), and forgotten whatever the outcome: by the scenario once it
has read them, or by the last validator when validation fails.  A run computing its
results never holds another run back.

Results travel typed.  When validation fails, the task never reaches the scenario, so the
last validator writes the workload's results into the task itself, as a CloudPulse.operator
workload with the results table (cloudpulse_rally.tasks.record_workload), where every
reader of a CloudPulse task finds them; the failure message is only for people.
"""

import inspect
import json
import threading
import time

from rally.common import validation

from cloudpulse.checks import operator
from cloudpulse import results
from cloudpulse_rally import tasks

_PREFIX = "cloudpulse_operator_"
# A run whose scenario never came (another validator failed the task) is dropped after
# this long: a safety net, not a cache; entries are forgotten as soon as they are used.
_ABANDONED_AFTER = 3600.0


class _WorkloadRun:
    """The operator results of one workload of one task, computed once."""

    def __init__(self, expected):
        self.lock = threading.Lock()        # held while this run's checks run, only
        self.results = None
        self.started = self.finished = None
        self.pending = set(expected)        # validators of this workload still to run
        self.failed = False
        self.created = time.monotonic()

    def compute(self, args):
        with self.lock:
            if self.results is None:
                self.started = time.time()
                self.results = operator.run_from_args(args)
                self.finished = time.time()
            return self.results


_RUNS_LOCK = threading.Lock()   # guards the dict only, never a run
_RUNS = {}


def full_args(scenario_cls, args):
    """The workload's arguments with the scenario's defaults filled in."""
    bound = inspect.signature(scenario_cls.run).bind_partial(None, **(args or {}))
    bound.apply_defaults()
    out = dict(bound.arguments)
    out.pop("self", None)
    if out.get("checks") is not None:
        out["checks"] = list(out["checks"])
    return out


def _key(task_uuid, args):
    return task_uuid, json.dumps(args, sort_keys=True, default=str)


def _expected_checks(scenario_cls, args):
    """The operator checks whose validators this workload runs."""
    names = [v[0] for v in scenario_cls._meta_get("validators", default=[])]
    wanted = args.get("checks") or operator.CHECKS
    return {n[len(_PREFIX):] for n in names if n.startswith(_PREFIX)} & set(wanted)


def _run_for(task_uuid, scenario_cls, args):
    now = time.monotonic()
    with _RUNS_LOCK:
        for key in [k for k, r in _RUNS.items() if now - r.created > _ABANDONED_AFTER]:
            del _RUNS[key]
        return _RUNS.setdefault(_key(task_uuid, args),
                                _WorkloadRun(_expected_checks(scenario_cls, args)))


def _forget(task_uuid, args):
    with _RUNS_LOCK:
        return _RUNS.pop(_key(task_uuid, args), None)


def take_results(task_uuid, scenario_cls, args):
    """For the scenario: the results its validators computed (run now if there were
    none, e.g. under `rally task start --abort-on-sla-failure` with validation off), and
    the entry forgotten: the next run looks again."""
    args = full_args(scenario_cls, args)
    run = _forget(task_uuid, args) or _WorkloadRun(())
    return run.compute(args)


class _OperatorCheckValidator(validation.Validator):
    """Base: run the workload's operator checks and fail when CHECK found a fault."""

    CHECK = None

    def validate(self, context, config, plugin_cls, plugin_cfg):
        args = full_args(plugin_cls, (config or {}).get("args"))
        if self.CHECK not in (args.get("checks") or operator.CHECKS):
            return
        if not args.get("service_map"):
            self.fail("service_map: missing (path of the service map)")
        task = context["task"]
        run = _run_for(task["uuid"], plugin_cls, args)
        try:
            everything = run.compute(args)
        except (operator.ServiceMapError, ValueError) as exc:
            _forget(task["uuid"], args)
            self.fail(str(exc))
        bad = [r for r in everything
               if not r.ok and r.name == "operator.%s" % self.CHECK]
        with run.lock:
            run.failed = run.failed or bool(bad)
            run.pending.discard(self.CHECK)
            last = not run.pending
        if last and run.failed:
            # Validation stops the task here: record what every check found, passed
            # ones included, so the run's report is complete.
            _forget(task["uuid"], args)
            tasks.record_workload(task, results.CheckType.OPERATOR, args, everything,
                                  run.started, run.finished,
                                  "the operator checks, run by their Rally validators")
        if bad:
            self.fail("\n".join("%s: %s" % (r.component, r.details) for r in bad))


def _semantic(cls):
    # A validator with a platform requirement runs in Rally's semantic phase, whose
    # context carries the task: the key of this run's results.
    return validation.add("required_platform", platform="openstack", users=True)(cls)


@_semantic
@validation.configure(name="cloudpulse_operator_services", platform="openstack")
class ServicesValidator(_OperatorCheckValidator):
    """Every service of the map listens on its ports and has its process alive."""
    CHECK = "services"


@_semantic
@validation.configure(name="cloudpulse_operator_rabbitmq", platform="openstack")
class RabbitMQValidator(_OperatorCheckValidator):
    """RabbitMQ cluster: every node running, no partition, no resource alarm."""
    CHECK = "rabbitmq"


@_semantic
@validation.configure(name="cloudpulse_operator_galera", platform="openstack")
class GaleraValidator(_OperatorCheckValidator):
    """Galera: every node Primary, ready, Synced, in a cluster of the expected size."""
    CHECK = "galera"


@_semantic
@validation.configure(name="cloudpulse_operator_haproxy", platform="openstack")
class HAProxyValidator(_OperatorCheckValidator):
    """HAProxy: nothing DOWN on any node's stats socket; every server answers."""
    CHECK = "haproxy"


@_semantic
@validation.configure(name="cloudpulse_operator_pacemaker", platform="openstack")
class PacemakerValidator(_OperatorCheckValidator):
    """Pacemaker: quorum, every node online, no stopped or failed resource."""
    CHECK = "pacemaker"
