"""The comprehensive check's own logic without a cloud: which host a set of failed pings
blames, the search for the largest payload a path carries, and its settings.  The check
itself runs against the cloud in a box (tests/integration/test_comprehensive.py)."""

import types

import pytest

from cloudpulse.checks import comprehensive
from cloudpulse.checks import workload


def _vms(*hosts):
    return {h: workload.VM(h, types.SimpleNamespace(compute_host=h), "198.18.43.%d" % i)
            for i, h in enumerate(hosts, 10)}


def _replies(vms, cut=(), gateway_ok=True):
    return {a: dict({"gateway": gateway_ok},
                    **{b: a not in cut and b not in cut for b in vms if b != a})
            for a in vms if a not in cut}


def test_a_cut_host_is_blamed_and_its_peers_are_not():
    vms = _vms("compute-1", "compute-2", "compute-3")
    unreachable = {"compute-3": "vm on compute-3: no SSH through floating IP"}
    out = comprehensive.judge_data_path(vms, unreachable, _replies(vms, cut=("compute-3",)),
                                        "198.18.43.1")
    assert out["compute-1"] == [] and out["compute-2"] == []
    assert out["compute-3"] == ["vm on compute-3: no SSH through floating IP"]


def test_a_host_reached_over_ssh_but_isolated_on_the_tenant_network_is_blamed():
    vms = _vms("compute-1", "compute-2", "compute-3")
    replies = _replies(vms)
    for other in ("compute-1", "compute-2"):
        replies[other]["compute-2" if other == "compute-1" else "compute-1"] = True
    replies["compute-3"].update({"compute-1": False, "compute-2": False})
    replies["compute-1"]["compute-3"] = replies["compute-2"]["compute-3"] = False
    out = comprehensive.judge_data_path(vms, {}, replies, "198.18.43.1")
    assert out["compute-1"] == [] and out["compute-2"] == []
    assert out["compute-3"] == [
        "the VM on compute-3: no ping reply from the VM on compute-1 (198.18.43.10)",
        "the VM on compute-3: no ping reply from the VM on compute-2 (198.18.43.11)"]


def test_one_broken_pair_fails_both_ends():
    vms = _vms("compute-1", "compute-2", "compute-3")
    replies = _replies(vms)
    replies["compute-1"]["compute-2"] = False
    out = comprehensive.judge_data_path(vms, {}, replies, "198.18.43.1")
    assert out["compute-1"] == [
        "the VM on compute-1: no ping reply from the VM on compute-2 (198.18.43.11)"]
    assert out["compute-2"] == [] and out["compute-3"] == []


def test_no_gateway_reply_is_the_vms_own_problem():
    vms = _vms("compute-1")
    out = comprehensive.judge_data_path(vms, {}, _replies(vms, gateway_ok=False),
                                        "198.18.43.1")
    assert out["compute-1"] == [
        "the VM on compute-1: no ping reply from the gateway 198.18.43.1"]


class _Path:
    """A path that carries `carries` bytes of ICMP payload: pings above it vanish."""

    def __init__(self, carries, reachable=True, dont_fragment=True):
        self.carries, self.reachable, self.sizes = carries, reachable, []
        self.dont_fragment = dont_fragment

    def run(self, command, timeout=None):
        if "-M do" not in command:
            return types.SimpleNamespace(exit_status=0 if self.reachable else 1, stdout="",
                                         stderr="")
        if not self.dont_fragment:
            return types.SimpleNamespace(exit_status=1, stdout="",
                                         stderr="ping: unrecognized option: M")
        size = int(command.split("-s ")[1].split()[0])
        self.sizes.append(size)
        ok = self.reachable and size <= self.carries
        return types.SimpleNamespace(exit_status=0 if ok else 1, stdout="", stderr="")


def test_a_path_that_carries_the_mtu_costs_one_ping():
    path = _Path(1414)
    assert comprehensive.largest_payload(path, "198.18.43.11", 1414) == (1414, "")
    assert path.sizes == [1414]


@pytest.mark.parametrize("carries", [57, 1000, 1314, 1413])
def test_the_search_finds_what_a_smaller_path_carries(carries):
    path = _Path(carries)
    assert comprehensive.largest_payload(path, "198.18.43.11", 1414)[0] == carries
    assert len(path.sizes) < 40


def test_no_reply_at_all_is_not_a_size():
    assert comprehensive.largest_payload(_Path(1414, reachable=False), "198.18.43.11",
                                         1414)[0] is None


def test_a_ping_without_dont_fragment_is_an_error_not_a_small_path():
    with pytest.raises(ValueError, match="iputils"):
        comprehensive.largest_payload(_Path(1414, dont_fragment=False), "198.18.43.11", 1414)


@pytest.mark.parametrize("field, kwargs", [
    ("max_parallel_boots", {"max_parallel_boots": 0}),
    ("jumbo_mtu", {"jumbo_mtu": 100}),
])
def test_settings_name_the_bad_field(field, kwargs):
    with pytest.raises(ValueError, match=field):
        comprehensive.Settings(image_file="/srv/img", flavor="m1.small", **kwargs)
