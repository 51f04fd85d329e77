"""What a project member sees of a run: no host names, no node addresses."""

from cloudpulse import results


def _result(name, component, details, status="failed"):
    return results.CheckResult(name, "endpoint", component, status, details)


def _run():
    return results.CheckRun("h", ["endpoint"], "finished", project_id="p1", results=[
        _result("endpoint.nova", "nova-compute@compute-3",
                "nova-compute@compute-3 is down (last report 2026-11-24T16:00:00)"),
        _result("endpoint.neutron", "ovn-controller@compute-1",
                "OVN Controller agent on compute-1 is dead (last heartbeat 12:03:10)"),
        _result("endpoint.glance", "glance",
                "HTTP 500 from http://198.18.0.5:9292/v2/images (request req-1); "
                "fe80::1 and [2001:db8::5]:80; port fa:16:3e:00:00:01"),
        _result("endpoint.cinder", "cinder", "", "passed")])


def test_components_lose_their_host_and_details_mask_hosts_and_addresses():
    view = _run().member_view()
    assert [r.component for r in view.results] == ["nova-compute", "ovn-controller",
                                                  "glance", "cinder"]
    assert [r.details for r in view.results] == [
        "nova-compute is down (last report 2026-11-24T16:00:00)",
        "OVN Controller agent on <host> is dead (last heartbeat 12:03:10)",
        "HTTP 500 from http://<address>:9292/v2/images (request req-1); "
        "<address> and [<address>]:80; port fa:16:3e:00:00:01",
        ""]


def test_a_host_named_by_one_result_is_masked_in_the_others():
    run = _run()
    run.results.append(_result("endpoint.horizon", "horizon",
                               "the VM on compute-3 and compute-30 failed"))
    assert run.member_view().results[-1].details == \
        "the VM on <host> and compute-30 failed"


def test_the_member_view_keeps_the_run_and_its_verdict_says_no_host():
    run = _run()
    view = run.member_view()
    assert (view.handle, view.project_id, view.state) == ("h", "p1", run.state)
    assert [r.status for r in view.results] == [r.status for r in run.results]
    assert "compute-3" in run.verdict()
    assert view.verdict() == "control plane failing: glance, nova-compute, ovn-controller"
    assert "compute" not in str(view.to_api()).replace("nova-compute", "")
    assert results.CheckRun.from_api(view.to_api()).project_id == "p1"


def test_hosts_the_server_knows_are_masked_where_no_result_names_them():
    run = results.CheckRun("h", ["functional"], "finished", project_id="p1", results=[
        results.CheckResult("functional.boot", "functional", "vm", "passed",
                            "vm1 on compute-2, vm2 on compute-3")])
    assert run.member_view().results[0].details == "vm1 on compute-2, vm2 on compute-3"
    assert run.member_view({"compute-2", "compute-3", "controller"}).results[0].details \
        == "vm1 on <host>, vm2 on <host>"
