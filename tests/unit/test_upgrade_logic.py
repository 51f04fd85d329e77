"""The upgrade check's logic (cloudpulse.checks.upgrade) on snapshots recorded from the
cloud in a box: the demo project's workload (a VM with a volume, its network, subnet,
router, a port, a security group and a floating IP), before and after a VM stopped, a
volume detached, a port deleted, a security-group rule removed, the floating IP deleted
and a router's gateway cleared; and the
snapshot store (cloudpulse_rally.snapshots) on a real SQLite database."""

import datetime
import json
import os

import pytest
import sqlalchemy as sa

from cloudpulse.checks import upgrade
from cloudpulse.checks.upgrade import created
from cloudpulse_rally import snapshots

DATA = os.path.join(os.path.dirname(__file__), "data", "upgrade")


def _load(name):
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


@pytest.fixture
def before():
    return _load("before.json")


def test_each_break_reads_as_what_changed_and_nothing_else_is_named(before):
    after = _load("after_broken.json")
    names = upgrade.labels(before["resources"])
    found = {(kind, names[kind][ident]): changes
             for kind, by_id in upgrade.diff(before["resources"], after).items()
             for ident, changes in by_id.items()}
    assert found == {
        ("vm", "up-vm"): ["status ACTIVE -> SHUTOFF", "address up-net 198.19.0.186 removed",
                          "volume up-vol detached"],
        ("floating_ip", "198.19.0.186"): ["gone"],
        ("volume", "up-vol"): ["status in-use -> available", "detached from up-vm"],
        ("port", "up-port"): ["gone"],
        ("security_group", "up-web"): ["rule ingress IPv4 tcp/80 from 0.0.0.0/0 removed"],
        ("router", "up-router"): ["gateway lost"],
    }


def test_an_untouched_project_has_an_empty_diff(before):
    assert upgrade.diff(before["resources"], before["resources"]) == {}


def test_a_vm_that_moved_host_is_not_a_change(before):
    after = json.loads(json.dumps(before["resources"]))
    after["vm"][0]["host"] = "compute-1"   # a live migration, as upgrades do
    assert upgrade.diff(before["resources"], after) == {}


def test_a_port_without_a_name_is_labelled_by_its_device_and_address(before):
    assert upgrade.summary(before)["port"] == [
        "up-port", "up-router 198.18.77.1", "up-vm 198.18.77.5"]


def test_labels_stay_unique_when_names_are_not():
    records = {"vm": [{"id": "11111111-aaaa", "name": "web"},
                      {"id": "22222222-bbbb", "name": "web"},
                      {"id": "33333333-cccc", "name": ""}]}
    assert upgrade.labels(records)["vm"] == {
        "11111111-aaaa": "web#11111111", "22222222-bbbb": "web#22222222",
        "33333333-cccc": "33333333-cccc"}


def test_a_rule_reads_as_one_line_from_neutrons_fields():
    rule = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
            "port_range_min": 8000, "port_range_max": 8080, "remote_ip_prefix": None,
            "remote_group_id": "f82910a0"}
    assert upgrade._rule(rule) == "ingress IPv4 tcp/8000-8080 from group f82910a0"
    icmp = dict(rule, protocol="icmp", port_range_min=8, port_range_max=None,
                remote_group_id=None, remote_ip_prefix="198.18.0.0/15")
    assert upgrade._rule(icmp) == "ingress IPv4 icmp/type 8 from 198.18.0.0/15"
    assert upgrade._rule({"direction": "egress", "ethertype": "IPv6", "protocol": None}) \
        == "egress IPv6 any to any"


def test_versions_side_by_side(before):
    now = dict(before["versions"], compute=dict(before["versions"]["compute"], max="2.105"))
    del now["placement"]
    lines = upgrade.version_changes(before["versions"], now)
    assert "compute 2.1-2.104 -> 2.1-2.105" in lines
    assert "placement gone" in lines and "image 2.17 (unchanged)" in lines


def test_a_vm_recorded_active_is_down_with_its_host(before):
    vm = before["resources"]["vm"][0]
    assert upgrade._host_down(vm, {vm["host"]: False}) == (
        "its host %s: nova-compute down or disabled" % vm["host"])
    assert upgrade._host_down(vm, {vm["host"]: True}) is None
    assert upgrade._host_down(vm, None) is None   # a member cannot see the hosts


@pytest.fixture
def store(tmp_path):
    return snapshots.SnapshotStore(sa.create_engine("sqlite:///%s" % (tmp_path / "s.db")))


def test_a_snapshot_is_its_projects_only_and_the_newest_is_verified(store, before):
    now = datetime.datetime.now(datetime.timezone.utc)
    older = store.add("box", "p1", before, now - datetime.timedelta(hours=1))
    newer = store.add("box", "p1", before, now)
    theirs = store.add("box", "p2", before, now)
    other_cloud = store.add("box-b", "p1", before, now + datetime.timedelta(seconds=1))
    assert store.newest("box", "p1").handle == newer
    assert store.get(older, "p1").document == before
    assert store.get(older, "p2") is None and store.get(older, all_projects=True)
    assert [s.handle for s in store.list("box", "p1")] == [newer, older]
    assert {s.handle for s in store.list(all_projects=True)} == {
        older, newer, theirs, other_cloud}
    assert store.delete(theirs, "p1") is False
    assert store.delete(newer, "p1") is True
    assert store.newest("box", "p1").handle == older
    assert store.newest("box", None) is None   # the server's own: none taken


def test_a_probe_that_changes_verdict_is_named_a_deny_that_stops_denying_too():
    before = {"address": "198.19.0.7", "icmp": "silent", "tcp/22": "refused",
              "tcp/80": "open"}
    assert upgrade.reach_changes(before, dict(before)) == []
    after = dict(before, icmp="answered", **{"tcp/80": "silent", "tcp/22": "open"})
    assert upgrade.reach_changes(before, after) == [
        "icmp was blocked, now allowed", "tcp/22 was refused, now open",
        "tcp/80 was allowed, now blocked"]
    # a probe that could not run (no ping here) says nothing
    assert upgrade.reach_changes(before, {"tcp/22": "refused", "tcp/80": "open"}) == []


def test_only_active_vms_with_a_floating_ip_are_probed():
    resources = {
        "vm": [{"id": "vm1", "status": "ACTIVE"}, {"id": "vm2", "status": "SHUTOFF"}],
        "port": [{"id": "p1", "device_id": "vm1"}, {"id": "p2", "device_id": "vm2"},
                 {"id": "p3", "device_id": "router1"}],
        "floating_ip": [{"id": "f1", "name": "198.19.0.7", "port_id": "p1"},
                        {"id": "f2", "name": "198.19.0.8", "port_id": "p2"},
                        {"id": "f3", "name": "198.19.0.9", "port_id": None}]}
    assert upgrade.floating_ips_of_vms(resources) == {"vm1": "198.19.0.7"}


def test_a_watch_counts_each_cut_from_its_first_lost_round_to_the_next_good_one():
    watched = upgrade.Watched("198.19.0.7", ("icmp", "tcp/80"))
    rounds = [(0, True, True), (1, True, False), (2, False, False), (3, True, True),
              (4, True, True), (5, True, False)]
    for at, icmp, http in rounds:
        watched.add(at, {"icmp": icmp, "tcp/80": http})
    watched.end(6.5)
    assert watched.outages == [[1, 3], [5, 6.5, "ongoing"]]
    assert watched.longest == 2 and watched.lost == {"icmp": 1, "tcp/80": 3}
    assert watched.loss == pytest.approx(100.0 * 4 / 12)


def test_only_the_probes_that_passed_before_are_watched():
    snapshot = {"reach": {
        "vm1": {"address": "198.19.0.7", "icmp": "silent", "tcp/22": "refused",
                "tcp/80": "open"},
        "vm2": {"address": "198.19.0.8", "icmp": "silent", "tcp/22": "silent"}}}
    assert upgrade.watch_targets(snapshot) == {"vm1": ("198.19.0.7", ("tcp/22", "tcp/80"))}


def test_a_watch_fails_a_workload_over_its_outage_or_loss(before):
    vm = before["resources"]["vm"][0]
    cut = upgrade.Watched("198.19.0.186", ("tcp/80",))
    for at in range(100):
        cut.add(at, {"tcp/80": not 10 <= at < 12})
    cut.end(100)
    started = datetime.datetime.now(datetime.timezone.utc)
    snapshot_result, result = upgrade.watch_results(before, "s1", {vm["id"]: cut}, started,
                                                    max_outage=60, max_loss=1.0)
    assert snapshot_result.name == "upgrade.snapshot"
    assert (result.name, result.status.value) == ("upgrade.watch/up-vm", "failed")
    assert result.details == ("198.19.0.186: 100 rounds, loss 2.0% (tcp/80 2), longest "
                              "outage 2 s; outages at +10 s for 2 s (allowed: 60 s, 1.0%)")
    _, lenient = upgrade.watch_results(before, "s1", {vm["id"]: cut}, started,
                                       max_outage=60, max_loss=5.0)
    assert lenient.status.value == "passed"
    nothing = upgrade.watch_results(before, "s1", {}, started, 60, 1.0)
    assert [r.status.value for r in nothing] == ["skipped"]


# -- create true: the set asked for ----------------------------------------------------
def test_a_set_takes_its_defaults_and_the_next_ranges():
    spec = created.parse({"vm": ["a", {"name": "b", "net": "n2"}],
                          "net": ["n1", "n2"]}, "198.18.50.0/24", 10)
    assert [(n.name, n.cidr) for n in spec.nets] == [("n1", "198.18.50.0/24"),
                                                    ("n2", "198.18.51.0/24")]
    assert spec.images == ("a-image",)
    assert spec.routers == (created.RouterSpec("a-router", ("n1", "n2")),)
    assert [(v.name, v.net, v.image) for v in spec.vms] == [("a", "n1", "a-image"),
                                                            ("b", "n2", "a-image")]
    assert spec.summary()["connections"] == []


@pytest.mark.parametrize("resources, message", [
    ([], "resources: an object with image, vm, net, router, connections"),
    ({"vm": []}, "resources.vm: at least one VM"),
    ({"vm": ["a"] * 11}, "resources.vm: at most 10 VMs ([upgrade] max_created_vms)"),
    ({"vm": ["a", "a"]}, "resources.vm[1]: 'a' is named twice"),
    ({"vm": ["a"], "volume": []}, "resources.volume: not a kind (image, vm, net, router, "
                                  "connections)"),
    ({"vm": [{"name": "a", "flavor": "x"}]},
     "resources.vm[0].flavor: not a field (name, net, image)"),
    ({"vm": [{"net": "n"}]}, "resources.vm[0].name: a name (1 to 64 characters)"),
    ({"vm": [{"name": "a", "image": "i9"}]},
     "resources.vm[0].image: no image 'i9' in resources.image"),
    ({"vm": ["a"], "net": [{"name": "n", "cidr": "10.0.0.300/24"}]},
     "resources.net[0].cidr: '10.0.0.300/24' is not a network address"),
    ({"vm": ["a"], "router": [{"name": "r", "nets": ["x"]}]},
     "resources.router[0].nets: no network 'x' in resources.net"),
    ({"vm": ["a", "b"], "connections": [["a", "a"]]},
     "resources.connections[0]: two names of resources.vm"),
    ({"vm": ["a", "b"], "connections": [["a", "c"]]},
     "resources.connections[0]: no VM 'c' in resources.vm"),
])
def test_a_bad_set_is_refused_naming_the_field(resources, message):
    with pytest.raises(ValueError) as exc:
        created.parse(resources, "198.18.50.0/24", 10)
    assert str(exc.value) == message


def test_a_created_sets_key_is_kept_apart_and_an_older_table_gains_its_column(tmp_path):
    engine = sa.create_engine("sqlite:///%s" % (tmp_path / "old.db"))
    with engine.begin() as conn:   # the table as the release before created sets made it
        conn.execute(sa.text(
            "CREATE TABLE cloudpulse_snapshots (handle VARCHAR(36) PRIMARY KEY, cloud "
            "VARCHAR(255) NOT NULL, project VARCHAR(64) NOT NULL, created_at DATETIME NOT "
            "NULL, document TEXT NOT NULL)"))
        conn.execute(sa.text("INSERT INTO cloudpulse_snapshots VALUES ('old', 'box', 'p1', "
                             "'2026-12-01 10:00:00', '{\"resources\": {}}')"))
    store = snapshots.SnapshotStore(engine)
    assert store.get("old", "p1").secret is None and store.get("old", "p1").created is None
    now = datetime.datetime.now(datetime.timezone.utc)
    handle = store.add("box", "p1", {"resources": {}, "created": {"run_id": "r1"}}, now,
                       handle="r1", secret="-----BEGIN OPENSSH PRIVATE KEY-----")
    stored = store.get(handle, "p1")
    assert handle == "r1" and stored.created == {"run_id": "r1"}
    assert stored.secret.startswith("-----BEGIN") and "PRIVATE" not in repr(stored)
