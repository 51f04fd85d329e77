"""Schemathesis against a live `cloudpulse-server` (noauth) over the cloud in a box, from
the OpenAPI document it serves: no 5xx, answers as documented, and every 4xx a JSON error
whose message, for a 400, starts with the field's name.  Its POSTs start real endpoint
runs (at most one at a time: a POST of the types in flight gets that run's handle)."""

import re

import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from cloudpulse_api import openapi
from tests.integration import server as server_mod

MAX_EXAMPLES = 25   # per operation and mode: about 30 s in all
LONG_POLL = 1.0     # seconds a generated GET /cpulse/result?wait= may hold at most
# A handle or a marker that looks valid but names no run is rightly refused (404, 400);
# negative data is judged by negative_data_rejected_or_too_large.
EXCLUDED_CHECKS = [openapi_checks.positive_data_acceptance,
                   openapi_checks.negative_data_rejection]


@pytest.fixture(scope="module")
def openapi_url(venv_bin, tmp_path_factory, box):
    server = server_mod.Server(venv_bin, tmp_path_factory.mktemp("openapi"), box)
    yield server.url + "/cpulse/openapi.json"
    server.stop()


def _documented(operation):
    return openapi.document()["paths"][operation.path][operation.method.lower()]


def _fields(case):
    """The names a 400 of this operation may start its message with."""
    operation = _documented(case.operation)
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = body.get("schema", {})
    if "$ref" in schema:   # "#/components/schemas/<name>"
        schema = openapi.document()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return ({p["name"] for p in operation.get("parameters", ())} | {"body"}
            | set(schema.get("properties", ())))


def json_error_naming_the_field(ctx, response, case):
    """A 4xx is {"error", "message"} (JSON); a 400's message starts with a field's name."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError("%d is not JSON: %r" % (response.status_code,
                                                     response.text[:200])) from None
    assert isinstance(body, dict) and {"error", "message"} <= set(body), body
    if response.status_code == 400:
        # a field, or a path into one (resources.vm[0].net)
        field = re.split(r"[.\[]", body["message"].split(":", 1)[0])[0]
        assert field in _fields(case), "400 names no field: %r" % body["message"]
    return True


def negative_data_rejected_or_too_large(ctx, response, case):
    """Schemathesis' negative_data_rejection, a 413 (a body over the API's limit, refused
    before it is read: a generated URL of 16 KiB) counted as a rejection too."""
    if response.status_code == 413:
        return True
    return openapi_checks.negative_data_rejection(ctx, response, case)


def _call(case):
    wait = (case.query or {}).get("wait")
    if isinstance(wait, (int, float)) and wait > LONG_POLL:
        case.query["wait"] = LONG_POLL   # a long poll would only slow the run down
    case.call_and_validate(additional_checks=[json_error_naming_the_field,
                                              negative_data_rejected_or_too_large],
                           excluded_checks=EXCLUDED_CHECKS, timeout=30)


# Each operation in turn, as documented (positive) and not (negative); hypothesis itself
# rather than schemathesis' pytest plugin, which pytest 9 breaks ('_nodeid').
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_answers_as_documented(openapi_url, mode):
    api_schema = schemathesis.openapi.from_url(openapi_url)
    for operation in api_schema.get_all_operations():
        documented = _documented(operation.ok())
        if mode == GenerationMode.NEGATIVE and not (documented.get("parameters")
                                                    or documented.get("requestBody")):
            continue   # nothing to send wrong
        try:
            hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                                suppress_health_check=list(hypothesis.HealthCheck))(
                hypothesis.given(operation.ok().as_strategy(mode))(_call))()
        except hypothesis.errors.Unsatisfiable:
            # nothing can be sent wrong: a path's one parameter, any string (DELETE
            # /webhooks/{webhook_id}); its unknown ids are 404s of the positive mode
            assert mode == GenerationMode.NEGATIVE, operation.ok().label
