"""POST, GET /cpulse/webhooks and DELETE /cpulse/webhooks/<id> through the app, behind a
static token file (a member of each of two projects, an admin), on a real SQLite store:
a member's webhooks are their project's; an admin's get everything; secrets are answered
once and never listed."""

import json
import threading

import jsonschema
import pytest
import sqlalchemy as sa
from werkzeug import serving

from cloudpulse_api import app as app_mod
from cloudpulse_api import cli
from cloudpulse_api import openapi
from cloudpulse_rally import notifications
from tests.unit import api_access

TOKENS, _as = api_access.TOKENS, api_access.as_


class Service:
    """What the webhook routes ask of a CheckService: its configuration and store."""

    def __init__(self, conf, store):
        self.conf, self.notifications, self.types = conf, store, []


@pytest.fixture
def app(tmp_path):
    conf = api_access.token_file_conf(tmp_path)
    store = notifications.NotificationStore(
        sa.create_engine("sqlite:///%s" % (tmp_path / "n.sqlite")))
    return app_mod.create_app(Service(conf, store))


@pytest.fixture
def client(app):
    return app.test_client()


def test_a_members_webhook_is_their_projects_and_its_secret_is_shown_once(client):
    made = client.post("/cpulse/webhooks", json={"url": "https://hooks.example/a"},
                       headers=_as("a"))
    assert made.status_code == 201, made.get_json()
    hook = made.get_json()
    assert hook["project_id"] == "project-a" and hook["all_projects"] is False
    assert len(hook["secret"]) == 64
    assert made.headers["Location"] == "/cpulse/webhooks/" + hook["id"]
    jsonschema.validate(hook, openapi.document()["components"]["schemas"]["Webhook"])
    chosen = client.post("/cpulse/webhooks", json={"url": "http://127.0.0.1:8/b",
                                                   "secret": "x" * 20}, headers=_as("b"))
    assert "secret" not in chosen.get_json()

    listed = client.get("/cpulse/webhooks", headers=_as("a")).get_json()["webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]]
    assert all("secret" not in h for h in listed)
    assert len(client.get("/cpulse/webhooks", headers=_as("admin")).get_json()[
        "webhooks"]) == 2
    # another project's webhook is a webhook that does not exist
    assert client.delete("/cpulse/webhooks/" + hook["id"], headers=_as("b")).status_code \
        == 404
    assert client.delete("/cpulse/webhooks/" + hook["id"], headers=_as("a")).status_code \
        == 204
    assert client.get("/cpulse/webhooks", headers=_as("a")).get_json()["webhooks"] == []
    assert client.delete("/cpulse/webhooks/" + hook["id"], headers=_as("a")).status_code \
        == 404


def test_an_admins_webhook_gets_every_transition_a_members_may_not(client):
    admin = client.post("/cpulse/webhooks", json={"url": "https://ops.example/hook"},
                        headers=_as("admin")).get_json()
    assert admin["all_projects"] is True
    refused = client.post("/cpulse/webhooks", json={"url": "https://x.example/",
                                                    "all_projects": True},
                          headers=_as("a"))
    assert refused.status_code == 403
    assert "cloudpulse:webhooks:all_projects" in refused.get_json()["message"]
    assert refused.get_json()["message"].startswith("all_projects:")
    # an admin deletes any
    mine = client.post("/cpulse/webhooks", json={"url": "https://x.example/"},
                       headers=_as("a")).get_json()
    assert client.delete("/cpulse/webhooks/" + mine["id"], headers=_as("admin")
                         ).status_code == 204


@pytest.mark.parametrize("body, field", [
    (None, "body"),
    ([], "body"),
    ({}, "url"),
    ({"url": "ftp://x.example/"}, "url"),
    ({"url": "https://"}, "url"),
    ({"url": "https://x.example/" + "a" * 2048}, "url"),
    ({"url": "https://x.example/", "secret": "short"}, "secret"),
    ({"url": "https://x.example/", "secret": 12345678901234567}, "secret"),
    ({"url": "https://x.example/", "all_projects": "yes"}, "all_projects"),
    ({"url": "https://x.example/", "events": ["failed"]}, "body"),   # names "events"
    ({"": 0.0, "url": "https://x.example/"}, "body"),
])
def test_a_bad_body_is_400_naming_the_field(client, body, field):
    answer = client.post("/cpulse/webhooks", json=body, headers=_as("a"))
    assert answer.status_code == 400
    jsonschema.validate(answer.get_json(),
                        openapi.document()["components"]["schemas"]["Error"])
    assert answer.get_json()["message"].startswith(field + ":")
    assert "short" not in answer.get_json()["message"]   # never a secret echoed


def test_without_a_token_401(client):
    assert client.get("/cpulse/webhooks").status_code == 401


def test_cpulse_webhook_add_list_delete(app, capsys):
    server = serving.make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = ["--url", "http://127.0.0.1:%d" % server.server_port, "--os-token", TOKENS["a"],
            "webhook"]
    try:
        assert cli.main(base + ["add", "https://hooks.example/a"]) == 0
        made = json.loads(capsys.readouterr().out)
        assert made["project_id"] == "project-a" and len(made["secret"]) == 64
        assert cli.main(base + ["list"]) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split() == ["id", "url", "project", "gets", "created"]
        assert table[1].split()[:4] == [made["id"], "https://hooks.example/a", "project-a",
                                        "project"]
        assert made["secret"] not in "".join(table)
        assert cli.main(base + ["add", "https://x.example/", "--all-projects"]) == 2
        assert "cloudpulse:webhooks:all_projects" in capsys.readouterr().err
        assert cli.main(base + ["delete", made["id"]]) == 0
        assert cli.main(base + ["list", "-f", "json"]) == 0
        assert json.loads(capsys.readouterr().out) == []
        assert cli.main(base + ["delete", made["id"]]) == 2
        assert "webhook: no webhook" in capsys.readouterr().err
    finally:
        server.shutdown()
