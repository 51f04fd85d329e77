"""Upgrade checks: a snapshot of a project's resources before an upgrade, and the proof
after it that what was there still is, and still works as it did.

`take(conn, ...)` records a project's resources (images, VMs, networks, subnets, ports,
routers, security groups and their rules, floating IPs, volumes, and load balancers where
the cloud has Octavia) with their operational state, what the checker reaches of each VM
through its floating IP (ping, ssh, http: what its security groups let through), and the
API versions the cloud serves: a plain document, stored as JSON.  `verify(conn, snapshot)` takes
the same inventory again and gives one CheckResult per recorded resource: passed when it
is still there and nothing of its state changed for the worse, failed with the diff
(`status ACTIVE -> SHUTOFF`, `gateway lost`, `rule ingress tcp/22 from 0.0.0.0/0
removed`) otherwise.  What was created since is not the snapshot's business.

Nothing here creates anything in the cloud: the listings are the project's own (an
admin's are filtered by project), run in parallel, bounded.  The Rally scenarios
(cloudpulse_rally.scenarios.upgrade) and the server's `upgrade` runs are front ends over
these two functions; docs/upgrade.md says how to use them around an upgrade.
"""

import concurrent.futures
import contextlib
import dataclasses
import time
import typing

from cloudpulse.checks.operator import upgrade_status
from cloudpulse.checks import runner
from cloudpulse.checks import service_states
from cloudpulse.checks.upgrade import created
from cloudpulse import fanout
from cloudpulse import reach
from cloudpulse import results

CHECK_TYPE = results.CheckType.UPGRADE
FORMAT = 1   # the snapshot document's format, for the readers of stored snapshots

# The resource kinds, in the order they are reported (the spec's names where it has one).
KINDS = ("image", "vm", "net", "subnet", "port", "router", "security_group", "floating_ip",
         "volume", "load_balancer")

# The APIs whose versions are recorded: {name in the snapshot: openstacksdk proxy}.
VERSIONED = {"identity": "identity", "compute": "compute", "image": "image",
             "network": "network", "block-storage": "block_storage",
             "placement": "placement", "load-balancer": "load_balancer"}

# What the checker sends each VM's floating IP, as the snapshot names it: a ping, and a
# TCP connection to ssh and http.
PROBES = ("icmp", "tcp/22", "tcp/80")
PROBE_TIMEOUT = 2.0   # seconds: an answer from a VM comes in milliseconds

# Fields of a record that may change without anything being wrong: where the VM runs
# (a live migration is what an upgrade does to move VMs off a host).
_UNJUDGED = {"host"}


@dataclasses.dataclass(frozen=True)
class Scope:
    """Whose resources a snapshot records: one project's, or (admin) every project's."""
    project_id: typing.Optional[str] = None   # None with all_projects False: the caller's
    all_projects: bool = False

    def filters(self, conn):
        """(neutron/glance filters, nova/cinder filters) of this scope for `conn`."""
        if self.all_projects:
            return {}, {"all_projects": True}
        project = self.project_id or conn.current_project_id
        if project != conn.current_project_id:
            return {"project_id": project}, {"all_projects": True, "project_id": project}
        return {"project_id": project}, {}

    def describe(self):
        return "every project" if self.all_projects else "project %s" % self.project_id


def _rule(rule):
    """A security-group rule as one comparable line: `ingress IPv4 tcp/22 from 0.0.0.0/0`."""
    protocol = rule.get("protocol") or "any"
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    ports = "" if low is None else "/%s" % (low if low == high else "%s-%s" % (low, high))
    if protocol in ("icmp", "ipv6-icmp") and low is not None:
        ports = "/type %s" % low
    source = (rule.get("remote_ip_prefix") or
              ("group %s" % rule["remote_group_id"] if rule.get("remote_group_id") else "any"))
    return "%s %s %s%s %s %s" % (rule.get("direction"), rule.get("ethertype"), protocol,
                                 ports, "from" if rule.get("direction") == "ingress" else "to",
                                 source)


def _addresses(server):
    """A VM's addresses, one "network address" each (its floating IPs too)."""
    return sorted("%s %s" % (net, a["addr"]) for net, addrs in (server.addresses or {}).items()
                  for a in addrs)


def _listings(conn, scope):
    """{kind: () -> [record]} for `scope`; a record is a dict with id, name and the
    fields judged after the upgrade."""
    neutron, nova = scope.filters(conn)
    net = conn.network
    owner = {} if scope.all_projects else {"owner": neutron["project_id"]}

    def images():
        return [{"id": i.id, "name": i.name, "status": i.status}
                for i in conn.image.images(**owner)]

    def vms():
        return [{"id": s.id, "name": s.name, "status": s.status, "host": s.compute_host,
                 "addresses": _addresses(s),
                 "volumes": sorted(v["id"] for v in s.attached_volumes or [])}
                for s in conn.compute.servers(**nova)]

    def nets():
        return [{"id": n.id, "name": n.name, "status": n.status,
                 "admin_state_up": n.is_admin_state_up} for n in net.networks(**neutron)]

    def subnets():
        return [{"id": s.id, "name": s.name, "network_id": s.network_id, "cidr": s.cidr,
                 "gateway_ip": s.gateway_ip, "dhcp": s.is_dhcp_enabled}
                for s in net.subnets(**neutron)]

    def ports():
        return [{"id": p.id, "name": p.name, "status": p.status,
                 "admin_state_up": p.is_admin_state_up, "device_owner": p.device_owner,
                 "device_id": p.device_id,
                 "fixed_ips": sorted(ip["ip_address"] for ip in p.fixed_ips or []),
                 "security_groups": sorted(p.security_group_ids or [])}
                for p in net.ports(**neutron)]

    def routers():
        interfaces = {}
        for port in net.ports(device_owner="network:router_interface", **neutron):
            interfaces.setdefault(port.device_id, []).extend(
                ip["subnet_id"] for ip in port.fixed_ips or [])
        return [{"id": r.id, "name": r.name, "status": r.status,
                 "admin_state_up": r.is_admin_state_up,
                 "gateway": (r.external_gateway_info or {}).get("network_id"),
                 "interfaces": sorted(interfaces.get(r.id, []))}
                for r in net.routers(**neutron)]

    def security_groups():
        return [{"id": g.id, "name": g.name,
                 "rules": sorted(_rule(r) for r in g.security_group_rules or [])}
                for g in net.security_groups(**neutron)]

    def floating_ips():
        return [{"id": f.id, "name": f.floating_ip_address, "status": f.status,
                 "port_id": f.port_id, "fixed_ip": f.fixed_ip_address}
                for f in net.ips(**neutron)]

    def volumes():
        return [{"id": v.id, "name": v.name, "status": v.status,
                 "attached_to": sorted(a["server_id"] for a in v.attachments or [])}
                for v in conn.block_storage.volumes(**nova)]

    def load_balancers():
        return [{"id": lb.id, "name": lb.name, "provisioning_status": lb.provisioning_status,
                 "operating_status": lb.operating_status}
                for lb in conn.load_balancer.load_balancers(**neutron)]

    found = {"image": images, "vm": vms, "net": nets, "subnet": subnets, "port": ports,
             "router": routers, "security_group": security_groups,
             "floating_ip": floating_ips, "volume": volumes}
    if _has_service(conn, "load-balancer"):
        found["load_balancer"] = load_balancers
    return found


def _has_service(conn, service_type):
    access = conn.session.auth.get_access(conn.session)   # the token's catalog
    return bool(access.service_catalog.get_endpoints(service_type=service_type))


def _versions(conn):
    """{API: {"version", "min", "max"}} of the APIs in the catalog (microversions where
    the API has them)."""
    def version(proxy):
        data = getattr(conn, proxy).get_endpoint_data()
        as_text = lambda v: ".".join(map(str, v)) if v else None   # noqa: E731
        return {"version": as_text(data.api_version), "min": as_text(data.min_microversion),
                "max": as_text(data.max_microversion)}
    names = [name for name in VERSIONED if _has_service(conn, name)]
    found = fanout.fan_out(lambda name: version(VERSIONED[name]), names, name="cpulse-version")
    return {name: r.value for name, r in zip(names, found) if r.ok}


def _compute_hosts_up(conn):
    """{host: nova-compute up and enabled} as an admin sees it; None for a member."""
    services = service_states.admin_listing(conn, conn.compute.services)
    if services is None:
        return None
    return {s.host: s.state == "up" and s.status == "enabled" for s in services
            if s.binary == "nova-compute"}


class InventoryFailed(Exception):
    """A listing of the inventory failed: a snapshot (or its verify) would be partial."""


def inventory(conn, scope, timeout=None, max_workers=8):
    """{kind: [record]} of `scope` now, listed in parallel; InventoryFailed naming the
    kinds that could not be listed."""
    listings = _listings(conn, scope)
    kinds = list(listings)
    found = fanout.fan_out(lambda kind: listings[kind](), kinds, max_workers=max_workers,
                           timeout=timeout, name="cpulse-inventory")
    failed = ["%s: %s" % (kind, runner.describe_error(r.error, timeout))
              for kind, r in zip(kinds, found) if not r.ok]
    if failed:
        raise InventoryFailed("cannot list %s" % "; ".join(failed))
    return {kind: sorted(r.value, key=lambda rec: (rec["name"] or "", rec["id"]))
            for kind, r in zip(kinds, found)}


def take(conn, scope=Scope(), timeout=None, max_workers=8, only=None, readiness=None):
    """A snapshot document of `scope` (see the module's docstring); with `only` (ids),
    of those resources and their ports only (a set CloudPulse created); with
    `readiness` (() -> {service@node: upgrade_status.Readiness}: an operator's), the
    control plane's own upgrade checks too, read meanwhile."""
    scope = Scope(scope.project_id or (None if scope.all_projects else
                                       conn.current_project_id), scope.all_projects)
    taken_at = results.utcnow()
    with _meanwhile(readiness) as ready:
        resources = inventory(conn, scope, timeout, max_workers)
        if only is not None:
            resources = {kind: [r for r in records if r["id"] in only or
                                (kind == "port" and r["device_id"] in only)]
                         for kind, records in resources.items()}
        document = {"format": FORMAT, "taken_at": taken_at.isoformat(),
                    "project_id": scope.project_id, "all_projects": scope.all_projects,
                    "resources": resources, "versions": _versions(conn),
                    "reach": probe_all(floating_ips_of_vms(resources), max_workers)}
    if readiness is not None:
        document["readiness"] = {key: r.to_dict() for key, r in ready().items()}
    return document


@contextlib.contextmanager
def _meanwhile(func):
    """Yields () -> func()'s value, func running in a thread of its own meanwhile (the
    status tools take seconds, the listings too); a func of None yields () -> None."""
    if func is None:
        yield lambda: None
        return
    with concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="cpulse-readiness") as pool:
        future = pool.submit(func)
        yield future.result


def floating_ips_of_vms(resources):
    """{VM id: its first floating IP} of the VMs recorded ACTIVE with one."""
    port_vm = {p["id"]: p["device_id"] for p in resources.get("port", ())}
    active = {vm["id"] for vm in resources.get("vm", ()) if vm["status"] == "ACTIVE"}
    found = {}
    for fip in resources.get("floating_ip", ()):
        vm = port_vm.get(fip["port_id"])
        if vm in active:
            found.setdefault(vm, fip["name"])
    return found


def _probe(address, probe, timeout=PROBE_TIMEOUT):
    """What the checker gets of one probe: "answered" or "silent" for a ping; a TCP
    outcome (open, refused, silent) for a port."""
    if probe == "icmp":
        return "answered" if reach.ping(address, timeout) else "silent"
    return reach.tcp(address, int(probe.partition("/")[2]), timeout)[0].value


def probe_all(addresses, max_workers=8):
    """{VM id: {"address", probe: outcome}} of each VM's address (`addresses`: {VM id:
    address}), every probe in parallel; a probe that could not run is left out."""
    items = [(vm, address, probe) for vm, address in addresses.items() for probe in PROBES]
    found = fanout.fan_out(lambda item: _probe(item[1], item[2]), items,
                           max_workers=max_workers, timeout=PROBE_TIMEOUT + 10,
                           name="cpulse-reach")
    out = {vm: {"address": address} for vm, address in addresses.items()}
    for (vm, _, probe), result in zip(items, found):
        if result.ok:
            out[vm][probe] = result.value
    return out


def _passes(outcome):
    """Whether what a probe sent got to the VM (a security group let it through)."""
    return outcome in ("answered", reach.TCP.OPEN.value, reach.TCP.REFUSED.value)


def reach_changes(before, after):
    """[str] of how what the checker reached of a VM changed, probe by probe:
    `tcp/80 was allowed, now blocked`, `icmp was blocked, now allowed` (a deny must still
    deny), `tcp/22 was open, now refused` (through, but nothing listens any more)."""
    out = []
    for probe in PROBES:
        was, now = before.get(probe), after.get(probe)
        if was is None or now is None or was == now:
            continue
        if _passes(was) != _passes(now):
            out.append("%s was %s, now %s" % (probe, "allowed" if _passes(was) else "blocked",
                                              "allowed" if _passes(now) else "blocked"))
        else:
            out.append("%s was %s, now %s" % (probe, was, now))
    return out


def from_api(answer):
    """The snapshot document of GET /cpulse/snapshot's answer (its records as they were
    taken; a member's without the VMs' hosts, which are never judged)."""
    return {"format": FORMAT, "taken_at": answer["timestamp"],
            "project_id": answer["project_id"], "all_projects": answer["all_projects"],
            "resources": answer["records"], "versions": answer["versions"],
            "reach": answer.get("reach", {})}


def taken_at(snapshot):
    """When a snapshot was taken (an aware datetime)."""
    return results.parse_ts(snapshot["taken_at"])


def labels(resources):
    """{kind: {id: label}}: a resource's name; a port without one, its device's label and
    its addresses (`up-vm 198.18.77.13`); the name and short id when a label is not unique
    in its kind; the id when there is nothing else."""
    named = {r["id"]: r["name"] for records in resources.values() for r in records
             if r.get("name")}

    def label(kind, record):
        if record.get("name"):
            return record["name"]
        if kind == "port" and record.get("fixed_ips"):
            device = named.get(record.get("device_id")) or record.get("device_owner") or ""
            return " ".join([device] + record["fixed_ips"]).strip()
        return ""
    out = {}
    for kind, records in resources.items():
        found = {r["id"]: label(kind, r) for r in records}
        taken = list(found.values())
        out[kind] = {ident: (text if text and taken.count(text) == 1 else
                             "%s#%s" % (text, ident[:8]) if text else ident)
                     for ident, text in found.items()}
    return out


def summary(snapshot):
    """{kind: [label]} of what a snapshot recorded (the API's `resources`)."""
    return {kind: sorted(by_id.values())
            for kind, by_id in labels(snapshot["resources"]).items() if by_id}


# What a list field's lost and added items read as, by field: "{}" is the item's label.
_LIST_CHANGES = {
    "rules": ("rule {} removed", "rule {} added"),
    "volumes": ("volume {} detached", "volume {} attached"),
    "attached_to": ("detached from {}", "attached to {}"),
    "interfaces": ("interface on subnet {} removed", "interface on subnet {} added"),
    "fixed_ips": ("address {} removed", "address {} added"),
    "addresses": ("address {} removed", "address {} added"),
    "security_groups": ("security group {} removed", "security group {} added"),
}


def _says(field, before, after, names):
    """One difference of a field, as a person on call reads it (ids of recorded
    resources by their labels, `names`)."""
    if field in _LIST_CHANGES and isinstance(after, list):
        lost, added = _LIST_CHANGES[field]
        return "; ".join([lost.format(names.get(v, v)) for v in before if v not in after] +
                         [added.format(names.get(v, v)) for v in after if v not in before])
    if field == "gateway":
        return "gateway lost" if after is None else (
            "gateway set on %s" % after if before is None else
            "gateway %s -> %s" % (before, after))
    if field == "admin_state_up":
        return "admin state %s -> %s" % (_updown(before), _updown(after))
    return "%s %s -> %s" % (field, before, after)


def _updown(value):
    return "up" if value else "down"


def changes(before, after, names=None):
    """[str] of what changed from record `before` to record `after` (None: gone)."""
    if after is None:
        return ["gone"]
    # the state first, then the rest by name (a stored record's fields come sorted)
    fields = sorted(before, key=lambda field: (not field.endswith("status"), field))
    return [_says(field, before[field], after.get(field), names or {}) for field in fields
            if field not in _UNJUDGED | {"id", "name"} and after.get(field) != before[field]]


def diff(before, after):
    """{kind: {id: [change]}} of the resources recorded `before` (a snapshot's
    resources) that are gone or changed in `after` (an inventory)."""
    names = {ident: label for by_id in labels(before).values()
             for ident, label in by_id.items()}
    out = {}
    for kind, records in before.items():
        now = {r["id"]: r for r in after.get(kind, ())}
        for record in records:
            found = changes(record, now.get(record["id"]), names)
            if found:
                out.setdefault(kind, {})[record["id"]] = found
    return out


def version_changes(before, after):
    """[str] per API: `compute 2.1-2.95 -> 2.1-2.96`, `placement 1.39 (unchanged)`,
    `load-balancer gone`."""
    def text(v):
        if v["max"]:
            return "%s-%s" % (v["min"], v["max"])
        return v["version"] or "?"
    out = []
    for name in sorted(set(before) | set(after)):
        if name not in after:
            out.append("%s gone" % name)
        elif name not in before:
            out.append("%s %s (new)" % (name, text(after[name])))
        elif text(before[name]) == text(after[name]):
            out.append("%s %s (unchanged)" % (name, text(after[name])))
        else:
            out.append("%s %s -> %s" % (name, text(before[name]), text(after[name])))
    return out


def _vm_found(vm_id, now, hosts_up, recorded_reach, reach_now, recorded, named):
    """What is wrong with a recorded VM beyond its record's changes: its host down (`now`:
    its record now, None when gone), and what the checker reaches of it."""
    found = []
    down = _host_down(now, hosts_up) if now is not None else None
    if down:
        found.append(down)
    if vm_id in recorded_reach:
        found += _reach_found(vm_id, recorded_reach[vm_id], reach_now[vm_id], recorded, named)
    return found


def _reach_found(vm_id, before, after, recorded, named):
    """A VM's reach changes as its result says them: through which address, and the
    security groups of its ports (those the snapshot recorded) when a verdict changed."""
    changes_seen = reach_changes(before, after)
    if not changes_seen:
        return []
    group_names = named.get("security_group", {})
    groups = sorted({group_names.get(g, g)
                     for p in recorded.get("port", ()) if p["device_id"] == vm_id
                     for g in p.get("security_groups", ())})
    return ["%s %s%s" % (before["address"], change,
                         " (security groups: %s)" % ", ".join(groups)
                         if groups and ("allowed" in change) else "")
            for change in changes_seen]


def _host_down(record, hosts_up):
    """Why a VM recorded ACTIVE is not operational for its host now, or None."""
    host = record.get("host")
    if hosts_up is None or record.get("status") != "ACTIVE" or not host:
        return None
    if not hosts_up.get(host, False):
        return "its host %s: nova-compute down or disabled" % host
    return None


def verify(conn, snapshot, handle, timeout=None, max_workers=8, secret=None,
           readiness=None):
    """[CheckResult] of a snapshot now: `upgrade.snapshot` (which snapshot, of when),
    `upgrade.versions` (before and after, side by side), then one result per recorded
    resource, `upgrade.<kind>/<label>` (the resource's label is its component too), and
    for a set CloudPulse created, one per listed connection, `upgrade.connection/<a>-<b>`
    (pinged both ways from inside the VMs with the set's key, `secret`); and, for a
    snapshot that recorded the control plane's upgrade checks, one per tool,
    `upgrade.readiness/<service>@<node>`, read again by `readiness` (as take's)."""
    started = results.utcnow()
    before = snapshot.get("readiness")
    with _meanwhile(readiness if before is not None else None) as ready:
        out = _verify(conn, snapshot, handle, timeout, max_workers, secret, started)
    if before is not None and out[0].status == results.Status.PASSED:
        out += readiness_results(before, ready(), started)
    return out


def readiness_results(before, now, started):
    """One CheckResult per status tool: its verdict now (failure fails, an error of the
    tool errs, a tool not installed is skipped), beside the one before the upgrade."""
    status = {"success": results.Status.PASSED, "warning": results.Status.PASSED,
              "failure": results.Status.FAILED, "absent": results.Status.SKIPPED}
    out = []
    for key in sorted(set(before) | set(now or {})):
        was, found = before.get(key), (now or {}).get(key)
        if found is None:
            out.append(_result("readiness/%s" % key, key, results.Status.ERROR,
                               "not read now (no node of the service map runs it)",
                               started))
            continue
        details = "now %s" % found.says()
        if was is not None:
            details += "; before the upgrade %s" % upgrade_status.Readiness.from_dict(
                key, was).says()
        out.append(_result("readiness/%s" % key, key,
                           status.get(found.verdict, results.Status.ERROR), details,
                           started))
    return out


def _verify(conn, snapshot, handle, timeout, max_workers, secret, started):
    scope = Scope(snapshot["project_id"], snapshot["all_projects"])
    try:
        now = inventory(conn, scope, timeout, max_workers)
    except InventoryFailed as exc:
        return [_result("snapshot", handle, results.Status.FAILED, str(exc), started)]
    hosts_up = _compute_hosts_up(conn) if now.get("vm") else None
    recorded = snapshot["resources"]
    named = labels(recorded)
    gone_or_changed = diff(recorded, now)
    current = {kind: {r["id"]: r for r in records} for kind, records in now.items()}
    out = [snapshot_result(snapshot, handle, started)]
    recorded_reach = snapshot.get("reach", {})
    reach_now = probe_all({vm: seen["address"] for vm, seen in recorded_reach.items()},
                          max_workers)
    versions_now = _versions(conn)
    lost = [name for name in snapshot["versions"] if name not in versions_now]
    out.append(_result("versions", "apis", results.Status.FAILED if lost else
                       results.Status.PASSED,
                       "; ".join(version_changes(snapshot["versions"], versions_now)),
                       started))
    for kind in KINDS:
        for record in recorded.get(kind, ()):
            found = list(gone_or_changed.get(kind, {}).get(record["id"], ()))
            if kind == "vm":
                found += _vm_found(record["id"], current.get("vm", {}).get(record["id"]),
                                   hosts_up, recorded_reach, reach_now, recorded, named)
            label = named[kind][record["id"]]
            # one check per resource: its key names it, however many the snapshot has
            out.append(_result("%s/%s" % (kind, label), label,
                               results.Status.FAILED if found else results.Status.PASSED,
                               "; ".join(found), started))
    if snapshot.get("created", {}).get("connections"):
        out += connection_results(snapshot, secret, started, timeout or 10.0)
    return out


def connection_results(snapshot, secret, started, api_timeout):
    """One CheckResult per connection pair of a created set: both ways, each from
    inside its VM; failed naming the way that does not ping."""
    made = snapshot["created"]
    named = labels(snapshot["resources"]).get("vm", {})
    pinged = created.ping_connections(made["connections"], made["ssh_user"], secret,
                                      api_timeout=api_timeout)
    pairs = {}
    for connection in made["connections"]:
        pair = tuple(sorted((connection["from"], connection["to"]),
                            key=lambda vm: named.get(vm, vm)))
        pairs.setdefault(pair, []).append(connection)
    out = []
    for (a, b), ways in pairs.items():
        pair = "%s-%s" % (named.get(a, a), named.get(b, b))
        problems = created.way_problems(ways, pinged, named)
        out.append(_result("connection/%s" % pair, pair, results.Status.FAILED if problems
                           else results.Status.PASSED, "; ".join(problems) or
                           "pings both ways", started))
    return out


def snapshot_result(snapshot, handle, started):
    """`upgrade.snapshot`: which snapshot a run judged, of when and what."""
    scope = Scope(snapshot["project_id"], snapshot["all_projects"])
    return _result("snapshot", handle, results.Status.PASSED, "taken %s, %d resources of %s"
                   % (snapshot["taken_at"], sum(map(len, snapshot["resources"].values())),
                      scope.describe()), started)


def _result(what, component, status, details, started):
    return results.CheckResult(
        name="%s.%s" % (CHECK_TYPE.value, what), check_type=CHECK_TYPE, component=component,
        status=status, details=details, started_at=started, finished_at=results.utcnow(),
        duration=(results.utcnow() - started).total_seconds())


def removal_result(handle, removed, problems, started):
    """`upgrade.remove`: what the removal of a snapshot's set took away, or what is
    left (the snapshot is then kept, for another try)."""
    if problems:
        return _result("remove", handle, results.Status.FAILED,
                       "could not remove %s; snapshot %s kept: delete it again"
                       % ("; ".join(problems), handle), started)
    return _result("remove", handle, results.Status.PASSED, "removed %s; snapshot %s "
                   "deleted" % (", ".join(removed) or "nothing (already gone)", handle),
                   started)


def no_snapshot(why, status=results.Status.SKIPPED):
    """The one result of an upgrade run that has no snapshot to verify."""
    now = results.utcnow()
    return [_result("snapshot", "none", status, why, now)]


# -- the watch during an upgrade -----------------------------------------------------------
WATCH_EVERY = 1.0   # seconds between two rounds of probes
WATCH_PROBE_TIMEOUT = 1.0   # a round lasts at most this: one probe a second each


@dataclasses.dataclass
class Watched:
    """One VM's probes over a watch: what each probe lost, and the outages (runs of
    rounds where a probe that passed before the upgrade was lost)."""
    address: str
    probes: typing.Tuple[str, ...]
    rounds: int = 0
    lost: typing.Dict[str, int] = dataclasses.field(default_factory=dict)
    outages: typing.List[typing.List[float]] = dataclasses.field(default_factory=list)
    _down_since: typing.Optional[float] = None

    def add(self, at, passed):
        """A round at `at` (seconds): {probe: passed}."""
        self.rounds += 1
        for probe, ok in passed.items():
            if not ok:
                self.lost[probe] = self.lost.get(probe, 0) + 1
        if not all(passed.values()) and self._down_since is None:
            self._down_since = at
        elif all(passed.values()) and self._down_since is not None:
            self.outages.append([self._down_since, at])
            self._down_since = None

    def end(self, at):
        """The watch ended at `at`: an outage still going ends there (marked ongoing)."""
        if self._down_since is not None:
            self.outages.append([self._down_since, at, "ongoing"])
            self._down_since = None

    @property
    def loss(self):
        """Percent of the probes sent that were lost."""
        sent = self.rounds * len(self.probes)
        return 100.0 * sum(self.lost.values()) / sent if sent else 0.0

    @property
    def longest(self):
        return max((o[1] - o[0] for o in self.outages), default=0.0)


def watch_targets(snapshot):
    """{VM id: (address, probes)}: each VM of the snapshot the checker reached, with the
    probes that passed before the upgrade (one that was blocked says nothing of a cut)."""
    out = {}
    for vm, seen in snapshot.get("reach", {}).items():
        probes = tuple(p for p in PROBES if _passes(seen.get(p)))
        if probes:
            out[vm] = (seen["address"], probes)
    return out


def watch(targets, seconds, should_stop=lambda: False, every=WATCH_EVERY, max_workers=64,
          inside=None):
    """{VM id: Watched} of `targets` (watch_targets) probed every `every` seconds for
    `seconds`, or until should_stop() (asked once a round); with `inside` ({label:
    created.InsidePing}), the connections of a created set too, each pinged from inside
    its VM ({label: Watched}).  A lost probe waits its timeout: a round sends its
    probes together (up to `max_workers`), so that it still lasts a second."""
    inside = inside or {}
    watched = {vm: Watched(address, probes) for vm, (address, probes) in targets.items()}
    watched.update((label, Watched(ping.describe(), ("icmp",)))
                   for label, ping in inside.items())
    items = [(vm, probe, lambda a=address, p=probe: _passes(_probe(a, p, WATCH_PROBE_TIMEOUT)))
             for vm, (address, probes) in targets.items() for probe in probes]
    items += [(label, "icmp", ping) for label, ping in inside.items()]
    start = time.monotonic()
    next_round = start
    while items and time.monotonic() - start < seconds and not should_stop():
        at = time.monotonic() - start
        found = fanout.fan_out(lambda item: item[2](), items, max_workers=max_workers,
                               timeout=WATCH_PROBE_TIMEOUT + 5, name="cpulse-watch")
        rounds = {}
        for (vm, probe, _), result in zip(items, found):
            rounds.setdefault(vm, {})[probe] = result.ok and result.value
        for vm, passed in rounds.items():
            watched[vm].add(at, passed)
        next_round += every
        time.sleep(max(0.0, next_round - time.monotonic()))
    for record in watched.values():
        record.end(time.monotonic() - start)
    return watched


def watch_results(snapshot, handle, watched, started, max_outage, max_loss):
    """`upgrade.snapshot`, then one CheckResult per watched VM, `upgrade.watch/<label>`:
    failed when its longest outage is over `max_outage` seconds or its loss over
    `max_loss` percent."""
    if not watched:
        return no_snapshot("no VM of snapshot %s answered the checker before the upgrade "
                           "(none with a floating IP, or its security groups let none of "
                           "ping, ssh, http through): nothing to watch" % handle)
    named = labels(snapshot["resources"]).get("vm", {})
    out = [snapshot_result(snapshot, handle, started)]
    for vm, record in watched.items():
        bad = record.longest > max_outage or record.loss > max_loss
        details = "%s: %d rounds, loss %.1f%%%s, longest outage %.0f s%s" % (
            record.address, record.rounds, record.loss,
            " (%s)" % ", ".join("%s %d" % (p, n) for p, n in sorted(record.lost.items()))
            if record.lost else "", record.longest,
            "; outages at %s" % ", ".join(
                "+%.0f s for %.0f s%s" % (o[0], o[1] - o[0], " (ongoing)" if len(o) > 2
                                            else "") for o in record.outages)
            if record.outages else "")
        if bad:
            details += " (allowed: %.0f s, %.1f%%)" % (max_outage, max_loss)
        out.append(_result("watch/%s" % named.get(vm, vm), named.get(vm, vm),
                           results.Status.FAILED if bad else results.Status.PASSED,
                           details, started))
    return out
