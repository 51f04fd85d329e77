"""Who may do what: oslo.policy's default rules (cloudpulse_api/policies.py) enforced
with credentials as keystonemiddleware leaves them, the static token file, and noauth's
place."""

import os

import pytest
from oslo_config import cfg

from cloudpulse import conf as cp_conf
from cloudpulse_api import auth
from cloudpulse_api import policies

MEMBER = {"project_id": "p1", "roles": ["member", "reader"], "user_id": "u1"}
OTHER_MEMBER = {"project_id": "p2", "roles": ["member"], "user_id": "u2"}
ADMIN = {"project_id": "p0", "roles": ["admin", "member", "reader"], "user_id": "u0"}
READER = {"project_id": "p1", "roles": ["reader"], "user_id": "u3"}


@pytest.fixture
def enforcer():
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    return policies.enforcer(conf)


@pytest.mark.parametrize("check_type,member_may", [
    ("endpoint", True), ("functional", True), ("upgrade", True),
    ("operator", False), ("comprehensive", False), ("all", False)])
def test_who_may_start_which_type(enforcer, check_type, member_may):
    rule = policies.start_rule(check_type)
    assert enforcer.enforce(rule, {}, MEMBER) is member_may
    assert enforcer.enforce(rule, {}, ADMIN) is True
    assert enforcer.enforce(rule, {}, READER) is False


def test_a_member_reads_their_projects_runs_and_an_admin_every_run(enforcer):
    mine, theirs, periodic = {"project_id": "p1"}, {"project_id": "p2"}, {"project_id": ""}
    assert enforcer.enforce(policies.RESULT_GET, mine, MEMBER)
    assert not enforcer.enforce(policies.RESULT_GET, theirs, MEMBER)
    assert not enforcer.enforce(policies.RESULT_GET, periodic, MEMBER)
    assert enforcer.enforce(policies.RESULT_GET, mine, OTHER_MEMBER) is False
    assert all(enforcer.enforce(policies.RESULT_GET, t, ADMIN)
               for t in (mine, theirs, periodic))
    # a caller with no project (a domain-scoped token) owns no run
    assert not enforcer.enforce(policies.RESULT_GET, periodic,
                                {"project_id": None, "roles": ["member"]})


def test_only_admin_sees_operator_detail(enforcer):
    assert enforcer.enforce(policies.RESULT_OPERATOR_DETAIL, {"project_id": "p1"}, ADMIN)
    assert not enforcer.enforce(policies.RESULT_OPERATOR_DETAIL, {"project_id": "p1"},
                                MEMBER)


def test_every_rule_is_documented_with_its_operations():
    documented = [r for r in policies.list_rules() if hasattr(r, "operations")]
    assert {r.name for r in documented} >= {policies.start_rule("endpoint"),
                                            policies.RESULT_GET, policies.TYPES_LIST}
    assert all(r.scope_types == ["project"] and r.operations for r in documented)


def _token_file(tmp_path, text, mode=0o600):
    path = tmp_path / "tokens"
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def test_token_file_entries_and_constant_time_lookup(tmp_path):
    admin, member = "a" * 24, "m" * 32
    path = _token_file(tmp_path, "# token project roles\n\n%s ops admin\n%s vnf-1 "
                                 "member,reader  # the VNF manager\n" % (admin, member))
    tokens = auth.TokenFile(None, path)
    assert tokens.find(member) == ("vnf-1", ["member", "reader"])
    assert tokens.find(admin) == ("ops", ["admin"])
    assert tokens.find("m" * 31) is None and tokens.find("") is None


@pytest.mark.parametrize("text,mode,says", [
    ("%s p member\n" % ("t" * 20), 0o644, "readable by others (mode 644)"),
    ("short p member\n", 0o600, "line 1: a token of at least 20 characters"),
    ("%s p\n" % ("t" * 20), 0o600, "line 1: expected `<token> <project_id>"),
    ("%s p member\n%s q admin\n" % ("t" * 20, "t" * 20), 0o600,
     "line 2: the same token as an earlier line"),
    ("# nothing\n", 0o600, "no token in it"),
])
def test_a_bad_token_file_is_refused_naming_the_option_never_the_token(tmp_path, text,
                                                                       mode, says):
    with pytest.raises(cp_conf.ConfigError) as err:
        auth.load_token_file(_token_file(tmp_path, text, mode))
    assert str(err.value).startswith("[api] token_file: ") and says in str(err.value)
    assert "t" * 20 not in str(err.value)


def _load(tmp_path, text):
    path = tmp_path / "cloudpulse.conf"
    path.write_text(text)
    return cp_conf.load(["--config-file", str(path)], default_config_files=[])


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "198.18.0.5", "cloudpulse.example.com"])
def test_noauth_refuses_a_non_loopback_host(tmp_path, host):
    with pytest.raises(cp_conf.ConfigError) as err:
        _load(tmp_path, "[api]\nauth_strategy = noauth\nhost = %s\n" % host)
    assert "[api] auth_strategy = noauth" in str(err.value)
    assert "[api] host" in str(err.value) and host in str(err.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_noauth_on_loopback_is_allowed(tmp_path, host):
    assert _load(tmp_path, "[api]\nauth_strategy = noauth\nhost = %s\n" % host)


def test_keystone_is_the_default_and_token_file_needs_its_file(tmp_path):
    assert _load(tmp_path, "").api.auth_strategy == "keystone"
    with pytest.raises(cp_conf.ConfigError) as err:
        _load(tmp_path, "[api]\nauth_strategy = token_file\n")
    assert "[api] token_file: unset" in str(err.value)


def test_identity_headers_sent_by_a_client_are_dropped(tmp_path):
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        return []
    member = "m" * 32
    tokens = auth.TokenFile(app, _token_file(tmp_path, "%s vnf-1 member\n" % member))
    tokens({"HTTP_X_AUTH_TOKEN": member, "HTTP_X_ROLES": "admin",
            "HTTP_X_PROJECT_ID": "ops", "HTTP_X_IS_ADMIN_PROJECT": "true"},
           lambda *a: None)
    caller = auth.caller(seen)
    assert (caller.project_id, caller.roles) == ("vnf-1", ["member"])
    assert "HTTP_X_AUTH_TOKEN" not in seen and "HTTP_X_IS_ADMIN_PROJECT" not in seen
