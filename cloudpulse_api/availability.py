"""GET /cpulse/availability and GET /cpulse/metrics: how available the cloud has been,
against the SLO, from the stored history (docs/availability.md).

A member reads their project's runs (hosts masked); an admin reads the server's own
(periodic) runs, or a project's with project_id=.  /cpulse/metrics is the same history
as Prometheus' text exposition, of the server's own runs (admin: a Prometheus scrape
sends a static token of [api] token_file as `Authorization: Bearer`).
"""

import flask
import prometheus_client
from prometheus_client import core as prom_core
from prometheus_client import exposition as prom_exposition

from cloudpulse import availability as avail
from cloudpulse import conf as cp_conf
from cloudpulse import health
from cloudpulse import results
from cloudpulse_api import apidoc
from cloudpulse_api import handling
from cloudpulse_api import policies
from cloudpulse_api import service as service_mod

blueprint = flask.Blueprint("availability", __name__)
# Prometheus' default metrics_path, at the server's root (the same view as /cpulse/metrics)
root_blueprint = flask.Blueprint("metrics", __name__)


class BadParameter(ValueError):
    pass


def windows_param(args, conf):
    """The windows (seconds) of `window=24h,30d` (or repeated), else [availability]
    windows; BadParameter naming `window` when one is not a period kept in the history."""
    values = [v for arg in args.getlist("window") for v in arg.split(",") if v.strip()]
    if not values:
        return list(conf.availability.windows)
    kept = conf.availability.history_days * 86400
    windows = []
    for value in values:
        try:
            seconds = cp_conf.Interval()(value)
        except ValueError:
            seconds = -1
        if not 0 < seconds <= kept:
            raise BadParameter("window: %r is not a period from 1s to the %d days of "
                               "history kept, such as 1h, 24h, 30d" % (value, kept // 86400))
        windows.append(seconds)
    return windows


def _check_type_param(args):
    value = args.get("type")
    if value is None:
        return None
    try:
        return results.CheckType(value)
    except ValueError:
        raise BadParameter("type: %r is not a check type (%s)" % (
            value, ", ".join(t.value for t in results.CheckType))) from None


@blueprint.get("/availability")
def get_availability():
    if not handling.allowed(policies.AVAILABILITY_GET):
        return handling.forbidden(policies.AVAILABILITY_GET, "reading availability")
    service = handling.service()
    try:
        windows = windows_param(flask.request.args, service.conf)
        check_type = _check_type_param(flask.request.args)
        checks = service.cloud(flask.request.args.get("cloud"))
    except BadParameter as exc:
        return handling.bad_request(str(exc))
    except service_mod.UnknownCloud as exc:
        return handling.bad_request(str(exc), allowed=exc.allowed)
    project_id = flask.request.args.get("project_id") or None
    if not handling.allowed(policies.AVAILABILITY_ALL_PROJECTS):
        own = handling.caller().project_id
        if project_id not in (None, own):
            return handling.forbidden(policies.AVAILABILITY_ALL_PROJECTS,
                                      "project_id: another project's availability")
        project_id = own
    # else: the server's own runs, or the project asked for
    report = service.history.report(checks.name, project_id, windows,
                                    service.conf.availability.slo, check_type)
    if not handling.allowed(policies.RESULT_OPERATOR_DETAIL,
                            {"project_id": project_id or ""}):
        report = report.member_view(checks.host_names())
    return flask.jsonify(report.to_api())


class _HistoryCollector:
    """The server's own runs' history on every cloud as Prometheus metric families,
    read per scrape (the same in every API process: the history is in the database)."""

    def __init__(self, service, now):
        self.service = service
        self.now = now

    def collect(self):
        service, labels = self.service, ["cloud", "check_type", "key"]
        up = prom_core.GaugeMetricFamily(
            "cloudpulse_check_up", "1 when the newest run of the check passed, 0 when "
            "it failed or could not run.", labels=labels)
        error = prom_core.GaugeMetricFamily(
            "cloudpulse_check_error", "1 when the newest run of the check could not run "
            "(neither up nor down).", labels=labels)
        duration = prom_core.GaugeMetricFamily(
            "cloudpulse_check_duration_seconds", "How long the newest run of the check "
            "took.", labels=labels)
        last_run = prom_core.GaugeMetricFamily(
            "cloudpulse_check_last_run_timestamp_seconds", "When the check last ran.",
            labels=labels)
        last_success = prom_core.GaugeMetricFamily(
            "cloudpulse_check_last_success_timestamp_seconds", "When the check last "
            "passed (absent: never, in the history kept).", labels=labels)
        ratio = prom_core.GaugeMetricFamily(
            "cloudpulse_availability_ratio", "Passed time over measured (passed and "
            "failed) time in the window.", labels=labels + ["window"])
        budget = prom_core.GaugeMetricFamily(
            "cloudpulse_error_budget_remaining_seconds", "Failure the SLO still allows in "
            "the window (negative: missed).", labels=labels + ["window"])
        slo = prom_core.GaugeMetricFamily("cloudpulse_slo_ratio", "The availability "
                                          "objective ([availability] slo).",
                                          labels=["cloud"])
        for cloud in service.clouds:
            for key, (span, passed_at) in sorted(service.history.latest(cloud, None).items()):
                values = [cloud, span.check_type.value, key]
                up.add_metric(values, 1.0 if span.state.ok else 0.0)
                error.add_metric(values, 1.0 if span.state == health.State.ERROR else 0.0)
                duration.add_metric(values, span.duration)
                last_run.add_metric(values, span.until.timestamp())
                if passed_at is not None:
                    last_success.add_metric(values, passed_at.timestamp())
            report = service.history.report(cloud, None, service.conf.availability.windows,
                                            service.conf.availability.slo, now=self.now)
            for seconds, checks in report.windows:
                window = avail.format_period(seconds)
                for item in checks:
                    values = [cloud, item.check_type.value, item.key, window]
                    if item.ratio is not None:
                        ratio.add_metric(values, item.ratio)
                        budget.add_metric(values, item.budget_left)
            slo.add_metric([cloud], report.slo)
        yield from (up, error, duration, last_run, last_success, ratio, budget, slo)


@blueprint.get("/metrics")
@root_blueprint.get("/metrics")
def get_metrics():
    if not handling.allowed(policies.METRICS_GET):
        return handling.forbidden(policies.METRICS_GET, "reading the metrics")
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(_HistoryCollector(handling.service(), results.utcnow()))
    # the format the scraper asks for: OpenMetrics, or the classic text format
    encoder, content_type = prom_exposition.choose_encoder(
        flask.request.headers.get("Accept"))
    return flask.Response(encoder(registry), content_type=content_type)


# -- this area in the OpenAPI document (cloudpulse_api/openapi.py) ------------------------
_SECONDS = {"type": "number"}
OPENAPI_SCHEMAS = {
    "Outage": {"type": "object",
               "required": ["key", "state", "start", "end", "seconds", "ongoing", "details"],
               "properties": {
                   "key": {"type": "string"},
                   "state": {"type": "string", "enum": ["failed", "error"]},
                   "start": apidoc.TIME, "end": apidoc.TIME, "seconds": _SECONDS,
                   "ongoing": {"type": "boolean",
                               "description": "Still so at the window's end."},
                   "details": {"type": "string"}}},
    "KeyAvailability": {
        "type": "object",
        "required": ["key", "check_type", "window", "availability", "slo", "slo_met",
                     "up_seconds", "down_seconds", "error_seconds", "unknown_seconds",
                     "error_budget_seconds", "error_budget_left_seconds", "outages"],
        "properties": {
            "key": {"type": "string", "description": "A check key (endpoint.glance), or "
                                                     "a check type for its runs as a whole."},
            "check_type": {"type": "string", "enum": [t.value for t in results.CheckType]},
            "component": {"type": "string", "nullable": True},
            "window": {"type": "integer", "description": "Seconds."},
            "availability": {"type": "number", "nullable": True,
                             "description": "up / (up + down); null: nothing measured."},
            "slo": {"type": "number"},
            "slo_met": {"type": "boolean", "nullable": True},
            "up_seconds": _SECONDS, "down_seconds": _SECONDS,
            "error_seconds": dict(_SECONDS, description="The check could not run: "
                                                        "neither up nor down."),
            "unknown_seconds": dict(_SECONDS, description="No run looked."),
            "error_budget_seconds": _SECONDS, "error_budget_left_seconds": _SECONDS,
            "error_budget_left": {"type": "number", "nullable": True},
            "outages": {"type": "array", "items": {"$ref": "#/components/schemas/Outage"}},
        },
    },
    "Availability": {
        "type": "object", "required": ["cloud", "project_id", "timestamp", "slo", "windows"],
        "properties": {
            "cloud": {"type": "string"},
            "project_id": {"type": "string", "nullable": True,
                           "description": "null: the server's own (periodic) runs."},
            "timestamp": apidoc.TIME, "slo": {"type": "number"},
            "windows": {"type": "array", "items": {
                "type": "object", "required": ["window", "checks"],
                "properties": {"window": {"type": "integer"},
                               "checks": {"type": "array", "items": {
                                   "$ref": "#/components/schemas/KeyAvailability"}}}}}},
    },
}


def openapi_paths(check_types):
    """This area's paths in the OpenAPI document."""
    return {
        "/availability": {"get": {
            "operationId": "getAvailability",
            "summary": "Availability, outages and error budget per check over windows "
                       "(docs/availability.md).",
            "parameters": [
                apidoc.query("window", {"type": "string"},
                             "Periods ending now, comma-separated (1h,24h,30d); default "
                             "[availability] windows."),
                apidoc.query("type", {"type": "string",
                                      "enum": [t.value for t in results.CheckType]},
                             "One check type's keys only."),
                apidoc.query("project_id", {"type": "string"},
                             "A project's runs (admin); an admin's default: the server's "
                             "own."),
            ],
            "responses": apidoc.responses(
                200, apidoc.json_response("Availability", "The report."), 400, 403),
        }},
        "/metrics": {
            # Prometheus' default metrics_path (/metrics) as well as under /cpulse
            "servers": [{"url": apidoc.PREFIX}, {"url": "/"}],
            "get": {
                "operationId": "getMetrics",
                "summary": "The server's own runs as Prometheus metrics (text "
                           "exposition), at /metrics and /cpulse/metrics.",
                "responses": apidoc.responses(200, {
                    "description": "Prometheus text format 0.0.4.",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}, 403),
            }},
    }
