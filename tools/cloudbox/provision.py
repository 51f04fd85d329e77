"""What an operator provisions on a new cloud, for the checks to use (idempotent):
the external network `public` on br-ex (flat, physnet public, 198.19.0.0/24, floating
IPs 198.19.0.100-199, the host at 198.19.0.1) and small flavors for namespace instances."""

import openstack

EXTERNAL = {"name": "public", "cidr": "198.19.0.0/24", "gateway": "198.19.0.1",
            "pool": ("198.19.0.100", "198.19.0.199")}
FLAVORS = [("cbx.tiny", 1, 64, 1), ("cbx.small", 1, 128, 1)]   # name, vcpus, MiB, GiB


def main():
    conn = openstack.connect(cloud="cloudbox-admin")
    net = conn.network.find_network(EXTERNAL["name"])
    if net is None:
        net = conn.network.create_network(
            name=EXTERNAL["name"], is_router_external=True, is_shared=False,
            provider_network_type="flat", provider_physical_network="public")
    if not list(conn.network.subnets(network_id=net.id)):
        conn.network.create_subnet(
            name=EXTERNAL["name"] + "-subnet", network_id=net.id, ip_version=4,
            cidr=EXTERNAL["cidr"], gateway_ip=EXTERNAL["gateway"], is_dhcp_enabled=False,
            allocation_pools=[{"start": EXTERNAL["pool"][0], "end": EXTERNAL["pool"][1]}])
    for name, vcpus, ram, disk in FLAVORS:
        if conn.compute.find_flavor(name) is None:
            conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk)
    print("external network %s (%s), flavors %s" % (
        net.id, EXTERNAL["cidr"], ", ".join(f[0] for f in FLAVORS)))


if __name__ == "__main__":
    main()
