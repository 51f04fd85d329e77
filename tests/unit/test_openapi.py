"""The OpenAPI document (cloudpulse_api/openapi.py): it documents every route of the app
and nothing else, validates as OpenAPI 3, and the app's errors have its Error shape."""

import re
import types

import jsonschema
import openapi_spec_validator
import pytest

from cloudpulse import conf as cp_conf
from cloudpulse import results
from cloudpulse_api import app as app_mod
from cloudpulse_api import checks
from cloudpulse_api import openapi
from cloudpulse_api import service as service_mod

OFFERED = [results.CheckType.ENDPOINT, results.CheckType.OPERATOR]
ERROR_CODES = {"400", "401", "403", "404", "409", "413", "429", "502"}


class Service:
    """What the routes tested here ask of a CheckService: its configuration, its one
    cloud and that cloud's types."""

    parse_types = service_mod.CheckService.parse_types
    cloud = service_mod.CheckService.cloud

    def __init__(self, conf):
        self.conf, self.types = conf, OFFERED
        self.clouds = {"box": types.SimpleNamespace(name="box", types=OFFERED)}


@pytest.fixture
def client(tmp_path):
    conf_file = tmp_path / "cloudpulse.conf"
    conf_file.write_text("[DEFAULT]\nstate_path = %s\n[api]\nauth_strategy = noauth\n"
                         % tmp_path)
    conf = cp_conf.load(["--config-file", str(conf_file)], default_config_files=[])
    return app_mod.create_app(Service(conf)).test_client()


def _app_operations(app):
    """{(path, METHOD)} of every route the app's blueprints register."""
    return {(re.sub(r"<(\w+)>", r"{\1}", rule.rule), method)
            for rule in app.url_map.iter_rules()
            if "." in rule.endpoint   # a blueprint's, not Flask's static route
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def _operations(item):
    return {method: op for method, op in item.items() if method != "servers"}


def _documented_operations(document):
    """{(URL path, METHOD)}: each path under its own servers, else the document's."""
    return {(server["url"].rstrip("/") + path, method.upper())
            for path, item in document["paths"].items()
            for server in item.get("servers", document["servers"])
            for method in _operations(item)}


def test_every_route_is_documented_and_every_documented_path_is_a_route(client):
    assert _app_operations(client.application) == _documented_operations(
        openapi.document())


@pytest.mark.parametrize("authenticated", [True, False])
def test_the_document_validates_as_openapi_3(authenticated):
    openapi_spec_validator.validate(openapi.document(authenticated=authenticated))


def test_every_operation_documents_its_errors_with_the_error_shape():
    document = openapi.document()
    assert set(document["components"]["responses"]) == ERROR_CODES
    for path, item in document["paths"].items():
        for method, operation in _operations(item).items():
            errors = {code for code in operation["responses"] if code.startswith("4")}
            assert "401" in errors and errors <= ERROR_CODES, (method, path)
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message"]


def test_the_served_document_offers_this_servers_check_types(client):
    served = client.get("/cpulse/openapi.json").get_json()
    body = served["paths"]["/check"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["type"]["enum"] == ["endpoint", "operator", "all"]
    # noauth: no token asked for, no 401
    assert served == openapi.document(OFFERED, authenticated=False)
    assert served["security"] == [] and "401" not in served["paths"]["/types"]["get"][
        "responses"]


@pytest.mark.parametrize("request_args, code, field", [
    (("post", "/cpulse/check"), 400, "body"),
    (("post", "/cpulse/check", {"json": {"type": "functional"}}), 400, "type"),
    (("post", "/cpulse/check", {"json": {"type": "endpoint", "cloud": "nowhere"}}), 400,
     "cloud"),
    (("post", "/cpulse/check", {"json": {"type": "endpoint", "cloud": ["box"]}}), 400,
     "cloud"),
    (("post", "/cpulse/check", {"data": b"{" * (checks.MAX_BODY + 1),
                                "content_type": "application/json"}), 413, "body"),
    (("get", "/cpulse/result"), 400, "handle"),
    (("get", "/cpulse/result", {"query_string": {"handle": "h", "wait": "nan"}}), 400,
     "wait"),
    (("get", "/cpulse/results", {"query_string": {"since": "99999999999d"}}), 400,
     "since"),
    (("get", "/cpulse/results", {"query_string": {"limit": "0"}}), 400, "limit"),
    (("get", "/cpulse/nowhere"), 404, None),
])
def test_errors_have_the_documented_shape_and_name_the_field(client, request_args, code,
                                                             field):
    method, path, kwargs = (request_args + ({},))[:3]
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == code
    jsonschema.validate(response.get_json(),
                        openapi.document()["components"]["schemas"]["Error"])
    if field:
        assert response.get_json()["message"].startswith(field + ":")
