"""The operator checks as Rally validators: `cloudpulse_operator_<check>`.

Each validator is one operator check (cloudpulse.checks.operator).  It fails the task's
validation when its check finds a fault, with a message a person can read followed by
one machine-readable line, `cloudpulse-results: [...]` (the check's CheckResults as
JSON), which cloudpulse_rally.report reads back into the typed model.

The first validator of a workload runs every check of the workload over one set of SSH
connections and keeps the results for that workload (same process, keyed by the
workload's arguments, for `_FRESH_FOR` seconds); the other validators and the
CloudPulse.operator scenario reuse them instead of reconnecting.
"""

import json
import threading
import time

from rally.common import validation

from cloudpulse.checks import operator
from cloudpulse_rally import report

_FRESH_FOR = 300.0   # seconds: a validation and the run it precedes

_LOCK = threading.Lock()
_RUNS = {}


def _key(args):
    return json.dumps(args, sort_keys=True, default=str)


def workload_results(args, refresh=False):
    """The operator results of a workload's arguments, run once per workload."""
    key = _key(args)
    with _LOCK:
        cached = _RUNS.get(key)
        if cached and not refresh and time.monotonic() - cached[0] < _FRESH_FOR:
            return cached[1]
        out = operator.run_from_args(args)
        _RUNS[key] = (time.monotonic(), out)
        return out


def forget(args):
    with _LOCK:
        _RUNS.pop(_key(args), None)


class _OperatorCheckValidator(validation.Validator):
    """Base: run the workload's operator checks and fail when CHECK found a fault."""

    CHECK = None

    def validate(self, context, config, plugin_cls, plugin_cfg):
        args = (config or {}).get("args", {})
        if self.CHECK not in (args.get("checks") or operator.CHECKS):
            return
        if not args.get("service_map"):
            self.fail("service_map: missing (path of the service map)")
        try:
            everything = workload_results(args)
        except (operator.ServiceMapError, ValueError) as exc:
            self.fail(str(exc))
        bad = [r for r in everything
               if not r.ok and r.name == "operator.%s" % self.CHECK]
        if bad:
            # Every check's results ride along, passed ones included: a failed validation
            # stops the task before the scenario could report them.
            self.fail("\n".join(["%s: %s" % (r.component, r.details) for r in bad]
                                + [report.encode(everything)]))


@validation.configure(name="cloudpulse_operator_services", platform="openstack")
class ServicesValidator(_OperatorCheckValidator):
    """Every service of the map listens on its ports and has its process alive."""
    CHECK = "services"


@validation.configure(name="cloudpulse_operator_rabbitmq", platform="openstack")
class RabbitMQValidator(_OperatorCheckValidator):
    """RabbitMQ cluster: every node running, no partition, no resource alarm."""
    CHECK = "rabbitmq"


@validation.configure(name="cloudpulse_operator_galera", platform="openstack")
class GaleraValidator(_OperatorCheckValidator):
    """Galera: every node Primary, ready, Synced, in a cluster of the expected size."""
    CHECK = "galera"


@validation.configure(name="cloudpulse_operator_haproxy", platform="openstack")
class HAProxyValidator(_OperatorCheckValidator):
    """HAProxy: nothing DOWN on any node's stats socket; every server answers directly."""
    CHECK = "haproxy"


@validation.configure(name="cloudpulse_operator_pacemaker", platform="openstack")
class PacemakerValidator(_OperatorCheckValidator):
    """Pacemaker: quorum, every node online, no stopped or failed resource."""
    CHECK = "pacemaker"
