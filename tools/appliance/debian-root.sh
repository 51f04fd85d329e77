#!/bin/bash
# A stand-in for Debian 12's "genericcloud" image, as a tarball of a root made with
# debootstrap: systemd, cloud-init and what the image has around it (ssh, sudo), nothing
# of CloudPulse's (its user-data installs that).  The appliance test boots a copy of it.
#   tools/appliance/debian-root.sh /root/.cache/cloudpulse/debian12-root.tar
set -euo pipefail
tarball=${1:?usage: debian-root.sh TARBALL}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d "${TMPDIR:-/var/tmp}/debian12-root.XXXXXX")
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
chmod 0755 "$root"   # the image's / (mktemp's 0700 would lock out every service user)
debootstrap --include=systemd-sysv,dbus bookworm "$root" "$mirror" >&2
cat > "$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
# The image's packages that matter here, with apt (debootstrap does not resolve the
# virtual packages cloud-init's dependencies need); no service started meanwhile.
cp /etc/resolv.conf "$root/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
chroot "$root" apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq \
  cloud-init openssh-server sudo ca-certificates ifupdown locales >&2
# The image's locale, generated (cloud-init's locale module sets it, and fails on a
# locale that is not).
sed -i 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' "$root/etc/locale.gen"
chroot "$root" locale-gen >&2
chroot "$root" update-locale LANG=en_US.UTF-8
chroot "$root" apt-get clean
umount "$root/proc"
rm -f "$root/usr/sbin/policy-rc.d" "$root/var/lib/apt/lists/"*_* "$root/etc/ssh/ssh_host_"*
# A first boot: no machine-id yet (systemd makes one), no host keys (cloud-init's).
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
mkdir -p "$(dirname "$tarball")"
tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
echo "$tarball"
