"""Control-plane states through the APIs (admin credentials, no SSH), compared with the
service map: every node the map gives nova-compute has an up and enabled nova-compute
service and hypervisor, every node with a neutron agent has a live one, every node with
cinder-volume an up cinder-volume; and nothing enabled is down anywhere."""

import openstack.exceptions

from cloudpulse.checks.operator import base
from cloudpulse.checks import runner
from cloudpulse.checks import service_states

CHECK = "control_plane"


def _short(host):
    return (host or "").split("@", 1)[0].split(".", 1)[0]


def _listing(found, api, func):
    try:
        return list(func())
    except openstack.exceptions.ForbiddenException:
        found.skip(api, "%s service states need admin credentials" % api)
    except Exception as exc:
        found.fail(api, "%s: %s" % (api, runner.describe_error(exc)))
    return None


def _registered(found, smap, services, binary, api):
    """(node, component, rows) for every node the map gives `binary`; a node with no row
    in the API's service list is a failure."""
    for node in smap.nodes_running(binary):
        comp = "%s@%s" % (binary, node.hostname)
        rows = [s for s in services if s.binary == binary
                and _short(s.host) == _short(node.hostname)]
        if not rows:
            found.fail(comp, "%s (node %s in the service map) is not registered in %s"
                       % (comp, node.name, api))
        yield node, comp, rows


def _nova(found, smap, conn):
    services = _listing(found, "nova", conn.compute.services)
    hypervisors = _listing(found, "nova", lambda: conn.compute.hypervisors(details=True))
    if services is None:
        return
    for comp, detail in service_states.services_down(services):
        found.fail(comp, detail)
    for node, comp, rows in _registered(found, smap, services, "nova-compute", "nova"):
        if not rows:
            continue
        for s in rows:
            if s.status != "enabled":
                found.fail(comp, "%s is disabled (%s)" % (comp, s.disabled_reason or "no reason"))
            elif s.state != "up":
                found.fail(comp, "%s is down (last report %s)" % (comp, s.updated_at or "never"))
        hv = [h for h in hypervisors or [] if _short(h.name) == _short(node.hostname)]
        if hypervisors is not None and not hv:
            found.fail(comp, "no hypervisor %s in nova" % node.hostname)
        for h in hv:
            if h.state != "up" or h.status != "enabled":
                found.fail(comp, "hypervisor %s is %s/%s" % (h.name, h.state, h.status))
        found.ok(comp)


def _neutron(found, smap, conn):
    agents = _listing(found, "neutron", conn.network.agents)
    if agents is None:
        return
    for comp, detail in service_states.dead_agents(agents):
        found.fail(comp, detail)
    for node in smap.nodes_running("neutron-agent"):
        comp = "neutron-agent@%s" % node.hostname
        if not any(_short(a.host) == _short(node.hostname) for a in agents):
            found.fail(comp, "no neutron agent registered for %s (node %s in the service map)"
                       % (node.hostname, node.name))
        found.ok(comp)


def _cinder(found, smap, conn):
    services = _listing(found, "cinder", conn.block_storage.services)
    if services is None:
        return
    for comp, detail in service_states.services_down(services):
        found.fail(comp, detail)
    for _node, comp, _rows in _registered(found, smap, services, "cinder-volume", "cinder"):
        found.ok(comp)


def check(ctx):
    found = base.Findings(CHECK)
    conn = ctx.api_connection
    if conn is None:
        found.skip("control_plane", "no admin API connection (the operator check runs "
                   "without cloud credentials)")
        return found.results()
    if not service_states.can_read_states(conn):
        found.skip("control_plane", "service and agent states need admin credentials")
        return found.results()
    for part in (_nova, _neutron, _cinder):
        part(found, ctx.service_map, conn)
    for api in ("nova", "neutron", "cinder"):
        found.ok(api)
    return found.results()
