"""The control plane's own upgrade checks (cloudpulse.checks.operator.upgrade_status) on
the outputs of the cloud in a box's real tools: nova-status (a table: no --json),
neutron-status --json (a warning), placement-status (a table, though asked for JSON),
glance-status (a traceback, exit 255)."""

import os

import pytest

from cloudpulse.checks.operator import parsers
from cloudpulse.checks.operator import upgrade_status
from cloudpulse import ssh

DATA = os.path.join(os.path.dirname(__file__), "data", "operator", "upgrade_status")


def _read(name):
    with open(os.path.join(DATA, name)) as f:
        return f.read()


def test_nova_status_has_no_json_and_its_table_is_read():
    refused = ssh.CommandResult(2, "", _read("nova-status-json.stderr"))
    assert upgrade_status.refused_json(refused)
    table = ssh.CommandResult(0, _read("nova-status.table"), "")
    readiness = upgrade_status.judge("nova", "ctl1", refused, table)
    assert readiness.verdict == "success" and readiness.key == "nova@ctl1"
    assert readiness.checks[0] == ("Cells v2", "success", "")
    assert ("Older than N-1 computes", "success", "") in readiness.checks
    assert readiness.says() == "success"


def test_a_warning_names_its_check_with_its_details_unwrapped():
    table = upgrade_status.parse_table(_read("neutron-status.table"))
    [workers] = [c for c in table if c[0] == "Worker counts configured"]
    assert workers[1] == "warning" and workers[2] == (
        "The default number of RPC workers has changed. Please see release notes for the "
        "new values, but it is strongly encouraged for deployers to manually set the "
        "values for rpc_workers.")
    readiness = upgrade_status.judge(
        "neutron", "ctl1", ssh.CommandResult(1, _read("neutron-status.json"), ""))
    assert readiness.verdict == "warning"
    assert readiness.says().startswith("warning; Worker counts configured: warning (The "
                                       "default number of RPC workers")
    # the same checks either way
    assert [c[:2] for c in readiness.checks] == [c[:2] for c in table]


def test_placement_prints_its_table_even_when_asked_for_json():
    readiness = upgrade_status.judge(
        "placement", "ctl1", ssh.CommandResult(0, _read("placement-status.table"), ""))
    assert readiness.verdict == "success" and readiness.checks[0][1] == "success"
    with pytest.raises(parsers.ParseError):
        upgrade_status.parse_json(_read("placement-status.table"))


def test_a_tool_that_crashes_is_an_error_naming_its_last_line():
    readiness = upgrade_status.judge(
        "glance", "ctl1", ssh.CommandResult(255, _read("glance-status.stdout"), ""))
    assert readiness.verdict == "error"
    assert readiness.note == ("exit status 255: oslo_config.cfg.NoSuchOptError: no such "
                              "option enabled_backends in group [DEFAULT]")


def test_a_tool_not_installed_is_absent():
    readiness = upgrade_status.judge("cinder", "ctl1", ssh.CommandResult(
        127, "", "sh: 1: cinder-status: not found"))
    assert readiness.verdict == "absent"
    assert readiness.note == "cinder-status is not installed on ctl1"


def test_a_recorded_readiness_reads_back_as_it_was():
    readiness = upgrade_status.judge(
        "neutron", "ctl1", ssh.CommandResult(1, _read("neutron-status.json"), ""))
    again = upgrade_status.Readiness.from_dict(readiness.key, readiness.to_dict())
    assert again == readiness


@pytest.mark.parametrize("text", ["", "+---+\n| Upgrade Check Results |\n+---+\n",
                                  "| Check: x |\n"])
def test_what_is_not_a_table_is_refused(text):
    with pytest.raises(parsers.ParseError):
        upgrade_status.parse_table(text)


def test_the_release_is_the_services_python_distributions_version():
    # commands.CODE_VERSION["placement"] run on the box's host, its placement-status
    # found, then on a host without it
    found = ssh.CommandResult(0, _read("placement-release.stdout"), "")
    assert upgrade_status.release(found) == "16.0.0"
    assert upgrade_status.release(ssh.CommandResult(
        127, "", _read("release-no-tool.stderr"))) is None
    assert upgrade_status.release(ssh.CommandResult(0, "Traceback (most recent\n", "")) \
        is None
    readiness = upgrade_status.Readiness("placement", "ctl1", "success", release="16.0.0")
    assert readiness.says() == "success (release 16.0.0)"
    assert upgrade_status.Readiness.from_dict(readiness.key, readiness.to_dict()) \
        == readiness
