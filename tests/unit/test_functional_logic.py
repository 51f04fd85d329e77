"""The functional check's own logic (cloudpulse.checks.functional) without a cloud: its
settings name the field they miss, and its cleanup order.  The steps themselves run against
the cloud in a box (tests/integration/test_functional.py)."""

import time

import pytest

from cloudpulse.checks import functional
from cloudpulse.checks import workload


@pytest.mark.parametrize("field, kwargs", [
    ("image_file", {"image_file": "", "flavor": "m1.tiny"}),
    ("flavor", {"image_file": "/srv/cirros.img", "flavor": ""}),
])
def test_settings_name_the_missing_field(field, kwargs):
    with pytest.raises(ValueError, match="^%s: missing" % field):
        functional.Settings(**kwargs)


def _removal(log, name, seconds=0.05, fails=False):
    def remove():
        log.append(("start", name, time.monotonic()))
        time.sleep(seconds)
        log.append(("end", name, time.monotonic()))
        if fails:
            raise RuntimeError("%s would not go" % name)
    return remove


def test_cleanup_removes_a_thing_once_what_uses_it_is_gone_and_the_rest_at_once():
    log = []
    made = [workload.Undo(kind, ident, _removal(log, ident, seconds)) for kind, ident, seconds
            in [("network", "net", 0.05), ("subnet", "subnet", 0.05),
                ("router interface", "interface", 0.1), ("router", "router", 0.3),
                ("image", "image", 0.05),
                ("keypair", "key", 0.05), ("security group", "sg", 0.05),
                ("server group", "group", 0.05), ("port", "port", 0.05),
                ("server", "vm1", 0.2), ("server", "vm2", 0.2),
                ("floating IP", "fip", 0.1)]]
    assert workload.remove_all(made) == []
    at = {(event, name): t for event, name, t in log}
    # what waits for nothing goes at once: while the VMs are being removed
    vms_gone = min(at["end", "vm1"], at["end", "vm2"])
    for name in ("fip", "image", "key", "vm1", "vm2"):
        assert at["start", name] < vms_gone, name
    # the router's interface after its floating IP, not after the VMs: they go meanwhile
    assert at["start", "interface"] >= at["end", "fip"]
    assert at["start", "interface"] < at["end", "vm1"]
    assert at["start", "router"] >= at["end", "interface"]
    assert at["start", "port"] >= max(at["end", "vm1"], at["end", "vm2"])
    assert at["start", "sg"] >= at["end", "port"]
    # the subnet after the interface on it and the ports, while the router still goes
    assert at["start", "subnet"] >= max(at["end", "interface"], at["end", "port"])
    assert at["start", "subnet"] < at["end", "router"]
    assert at["start", "net"] >= at["end", "subnet"]


def test_cleanup_tries_everything_and_names_what_failed():
    log = []
    made = [workload.Undo("server", "vm1", _removal(log, "vm1", fails=True)),
            workload.Undo("port", "port", _removal(log, "port"))]
    failed = workload.remove_all(made)
    assert [(entry.ident, str(error)) for entry, error in failed] == [
        ("vm1", "vm1 would not go")]
    assert ("end", "port") in [(e, n) for e, n, _ in log]


def test_cleanup_refuses_a_kind_it_has_no_order_for():
    with pytest.raises(ValueError, match="no cleanup order for trunk"):
        workload.remove_all([workload.Undo("trunk", "t", None)])


def test_a_run_file_names_what_nova_cannot_tag_until_the_sweeper_is_done(tmp_path):
    registry = workload.RunRegistry(str(tmp_path))
    with registry.running("run-1", "cloud-a", queue_timeout=1) as run_file:
        run_file.note("keypair", "s_rally_1a2b3c4d_key")
        run_file.note("server group", "0f5c6f0e-3f8a-4c57-9b1a-8a0c3e0e2d11")
        with pytest.raises(ValueError, match="keypair name 'a\\\\tb'"):
            run_file.note("keypair", "a\tb")
        # another process's view: alive (locked), its notes readable
        seen = workload.RunRegistry(str(tmp_path))
        assert seen.dead_runs() == []
        assert seen.notes("run-1") == {
            "keypair": ["s_rally_1a2b3c4d_key"],
            "server group": ["0f5c6f0e-3f8a-4c57-9b1a-8a0c3e0e2d11"]}
        registry.keep("run-1")   # its cleanup left something
    assert registry.dead_runs() == ["run-1"]
    assert registry.notes("run-1")["keypair"] == ["s_rally_1a2b3c4d_key"]
    registry.forget("run-1")
    assert registry.dead_runs() == [] and registry.notes("run-1") == {}
