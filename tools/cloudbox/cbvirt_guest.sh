#!/bin/sh
# The "guest" of a cloud-in-a-box instance (cbvirt.py): runs in the instance's network,
# mount and UTS namespaces; what it prints is the instance's console log.
#   cbvirt_guest.sh INSTANCE_DIR UDHCPC_SCRIPT
D=$1 DHCP=$2
hostname "$(cat "$D/hostname")"
echo "cloudbox guest $(hostname) booting at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
# A private /run (sshd's privilege separation directory lives there), and the guest's own
# /etc/hosts (its host name) and /etc/resolv.conf (from DHCP), as cloud-init keeps them.
mount -t tmpfs tmpfs /run && mkdir -p /run/sshd
echo $$ > "$D/guest.pid"   # the driver enters this mount namespace to plug volumes
# A private /dev, as a VM has: the volumes attached to this instance appear here only, at
# the device path nova reports (devices/<name> holds "<major> <minor>" of its loop device).
mount -t tmpfs -o mode=0755,size=64k cbxdev /dev
mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5; mknod -m 666 /dev/full c 1 7
mknod -m 666 /dev/random c 1 8; mknod -m 666 /dev/urandom c 1 9; mknod -m 666 /dev/tty c 5 0
mkdir /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts && ln -s pts/ptmx /dev/ptmx
ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
for dev in "$D"/devices/*; do
  [ -f "$dev" ] && mknod -m 660 "/dev/$(basename "$dev")" b $(cat "$dev")
done
mount --bind "$D/hosts" /etc/hosts
mount --bind "$D/resolv.conf" /etc/resolv.conf
for dev in $(ls /sys/class/net); do
  [ "$dev" = lo ] && continue
  busybox udhcpc -i "$dev" -n -q -t 20 -T 1 -s "$DHCP" -O mtu || echo "DHCP on $dev failed"
done
(cd "$D/www" && exec /usr/bin/python3 -m http.server 80 >/dev/null 2>&1) &
for _ in $(seq 50); do ss -Hltn 'sport = :80' | grep -q . && break; sleep 0.1; done
ss -Hltn 'sport = :80' | grep -q . && echo "http server listening on port 80" \
  || echo "http server did not start"
# sshd last: once a user can log in, every service of the guest answers.
/usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log" && echo "sshd listening on port 22"
if [ -s "$D/user-data" ]; then
  echo "running user-data"
  sh "$D/user-data"
  echo "user-data finished: exit $?"
fi
echo "$(hostname) login: ready"
exec sleep infinity
