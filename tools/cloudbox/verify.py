"""API-level readiness check of the cloud box (openstacksdk, clouds.yaml).

usage: OS_CLIENT_CONFIG_FILE=$CLOUDBOX_DIR/clouds.yaml verify.py TIMEOUT GATEWAY COMPUTE...
Retries until every check passes or TIMEOUT seconds pass (exit 1): every compute host's
nova-compute is up, and every chassis has a live OVN agent of its kind.
"""
import sys
import time

import openstack

GATEWAY = sys.argv[2]
COMPUTES = sys.argv[3:]


def problems(admin, demo):
    out = []
    for name, conn, allp in (("admin", admin, True), ("demo", demo, False)):
        list(conn.image.images())
        list(conn.compute.servers(all_projects=allp) if allp else conn.compute.servers())
        list(conn.network.networks())
        list(conn.block_storage.volumes(all_projects=allp) if allp else conn.block_storage.volumes())
    svcs = list(admin.compute.services())
    for s in svcs:
        if s.state != "up":
            out.append("compute service %s@%s is %s" % (s.binary, s.host, s.state))
    missing = set(COMPUTES) - {s.host for s in svcs if s.binary == "nova-compute"}
    if missing:
        out.append("nova-compute not registered on %s" % ", ".join(sorted(missing)))
    vsvcs = list(admin.block_storage.services())
    for s in vsvcs:
        if s.state != "up":
            out.append("volume service %s@%s is %s" % (s.binary, s.host, s.state))
    if "cinder-volume" not in {s.binary for s in vsvcs}:
        out.append("cinder-volume not registered")
    # the gateway chassis (ovn-cms-options=enable-chassis-as-gw) is a "Gateway" agent
    want = {GATEWAY: "OVN Controller Gateway agent"}
    want.update((host, "OVN Controller agent") for host in COMPUTES)
    agents = {a.host: a for a in admin.network.agents() if a.agent_type in want.values()}
    for host, kind in want.items():
        agent = agents.get(host)
        if agent is None or agent.agent_type != kind:
            out.append("no %s on %s" % (kind, host))
        elif not agent.is_alive:
            out.append("%s on %s not alive" % (kind, host))
    return out


def main():
    timeout = float(sys.argv[1]) if len(sys.argv) > 1 else 90
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            admin = openstack.connect(cloud="cloudbox-admin")
            demo = openstack.connect(cloud="cloudbox-demo")
            last = problems(admin, demo)
        except Exception as exc:  # noqa: BLE001
            last = ["%s: %s" % (type(exc).__name__, str(exc)[:300])]
        if not last:
            print("verify: all API checks passed (admin + demo)")
            return 0
        if time.time() > deadline:
            print("verify: FAILED: " + "; ".join(last))
            return 1
        time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
