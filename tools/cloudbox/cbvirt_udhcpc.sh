#!/bin/sh
# busybox udhcpc's script for cbvirt_guest.sh: address, default route, MTU and name servers
# from OVN's DHCP (/etc/resolv.conf is the guest's own file there).
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    [ -n "$dns" ] && for ns in $dns; do echo "nameserver $ns"; done > /etc/resolv.conf
    echo "DHCP $1 on $interface: ip=$ip mask=$mask router=$router mtu=$mtu" ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
