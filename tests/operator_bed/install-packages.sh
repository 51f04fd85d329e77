#!/bin/bash
# Debian packages of the operator bed. Idempotent; no daemon is started by the packages
# (policy-rc.d denies it): the bed starts its own copies inside the node namespaces.
set -euo pipefail
PKGS=(openssh-server openssh-client rabbitmq-server mariadb-server mariadb-client galera-4 haproxy
      pacemaker pacemaker-cli-utils corosync pcs crmsh rsync socat nftables tini iproute2 procps
      util-linux openssl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
[ "$(id -u)" = 0 ] || { echo "operator bed: root needed to install ${missing[*]}" >&2; exit 1; }
# Another installer (the cloud in a box) may hold its own policy-rc.d: only remove ours.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# cpulse-opbed\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'grep -q cpulse-opbed /usr/sbin/policy-rc.d 2>/dev/null && rm -f /usr/sbin/policy-rc.d' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
