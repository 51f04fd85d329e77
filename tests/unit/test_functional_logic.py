"""The functional check's own logic (cloudpulse.checks.functional) without a cloud: its
settings name the field they miss, and its cleanup order.  The steps themselves run against
the cloud in a box (tests/integration/test_functional.py)."""

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


def test_cleanup_removes_in_waves_what_uses_a_thing_before_it():
    made = [workload.Undo(kind, ident, None) for kind, ident in [
        ("network", "n"), ("subnet", "s"), ("router", "r"), ("image", "i"), ("keypair", "k"),
        ("security group", "g"), ("server group", "sg"), ("port", "p"), ("server", "vm1"),
        ("server", "vm2"), ("volume", "v"), ("floating IP", "f")]]
    assert [[(e.kind, e.ident) for e in wave] for wave in workload.cleanup_waves(made)] == [
        [("floating IP", "f"), ("keypair", "k"), ("image", "i")],
        [("volume", "v"), ("server", "vm2"), ("server", "vm1"), ("router", "r")],
        [("port", "p"), ("server group", "sg")],
        [("security group", "g"), ("subnet", "s")],
        [("network", "n")]]


def test_cleanup_refuses_a_kind_it_has_no_wave_for():
    with pytest.raises(ValueError, match="no cleanup wave for trunk"):
        workload.cleanup_waves([workload.Undo("trunk", "t", None)])


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
