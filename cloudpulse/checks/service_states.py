"""The services' own view of their components, as their APIs report it: nova and cinder
os-services, neutron agents.  Shared by the endpoint checks (any service down) and the
operator control-plane check (compared with the service map)."""

import openstack.exceptions

# The neutron agents a compute host's VMs need for their ports (ML2/OVN, ML2/OVS, ML2/LB).
L2_AGENTS = ("ovn-controller", "neutron-openvswitch-agent", "neutron-linuxbridge-agent")


def can_read_states(conn):
    """Whether this user may read service and agent states (the admin role).  Asked of the
    token, not of the listings: neutron answers a tenant's agent list with an empty list
    rather than 403, which would read as "no agents"."""
    access = conn.session.auth.get_access(conn.session)   # cached token, no request
    return "admin" in access.role_names


def admin_listing(conn, func):
    """An admin-only listing, or None when this user may not read it."""
    if not can_read_states(conn):
        return None
    try:
        return list(func())
    except openstack.exceptions.ForbiddenException:
        return None


def services_down(services):
    """Nova/cinder os-services rows that are enabled but reported down:
    [(component, details)] with component "binary@host"."""
    down = [s for s in services
            if s.state == "down" and s.status == "enabled"]
    return [("%s@%s" % (s.binary, s.host),
             "%s@%s is down (last report %s)" % (s.binary, s.host, s.updated_at or "never"))
            for s in down]


def is_dead(agent):
    """A neutron agent administratively up whose heartbeat stopped."""
    return not agent.is_alive and agent.is_admin_state_up


def dead_agents(agents):
    """Neutron agents administratively up whose heartbeat stopped: [(component, details)]."""
    return [("%s@%s" % (a.binary or a.agent_type, a.host),
             "%s on %s is dead (last heartbeat %s)"
             % (a.agent_type, a.host, a.last_heartbeat_at or "never"))
            for a in agents if is_dead(a)]


def host_names(conn):
    """The hosts the cloud's services run on, as an admin sees them (nova and cinder
    services, neutron agents): operator-only detail.  Empty for a project member."""
    listings = (conn.compute.services, conn.block_storage.services, conn.network.agents)
    return {row.host for func in listings for row in admin_listing(conn, func) or ()
            if row.host}
