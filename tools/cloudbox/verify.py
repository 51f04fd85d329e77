"""API-level readiness check of the cloud box (openstacksdk, clouds.yaml).

usage: OS_CLIENT_CONFIG_FILE=$CLOUDBOX_DIR/clouds.yaml verify.py [TIMEOUT]
Retries until every check passes or TIMEOUT seconds pass (exit 1).
"""
import sys
import time

import openstack

HOST = sys.argv[2] if len(sys.argv) > 2 else "cloudbox"


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
    if "nova-compute" not in {s.binary for s in svcs}:
        out.append("nova-compute not registered")
    vsvcs = list(admin.block_storage.services())
    for s in vsvcs:
        if s.state != "up":
            out.append("volume service %s@%s is %s" % (s.binary, s.host, s.state))
    if "cinder-volume" not in {s.binary for s in vsvcs}:
        out.append("cinder-volume not registered")
    # "OVN Controller Gateway agent" because the chassis is also the gateway
    # (ovn-cms-options=enable-chassis-as-gw); plain "OVN Controller agent" otherwise
    agents = [a for a in admin.network.agents()
              if a.agent_type in ("OVN Controller agent", "OVN Controller Gateway agent")]
    if not agents:
        out.append("no OVN Controller (Gateway) agent")
    for a in agents:
        if not a.is_alive:
            out.append("OVN agent on %s not alive" % a.host)
        if a.host != HOST:
            out.append("OVN agent host %r != nova host %r" % (a.host, HOST))
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
