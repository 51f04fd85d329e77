#!/bin/bash
# Debian packages the cloud in a box needs: a private MariaDB and RabbitMQ, Open vSwitch + OVN
# (userspace datapath) for neutron ML2/OVN, and the bits that plug namespace "instances".
# Idempotent; daemons are NOT started by the packages (policy-rc.d), the box starts its own.
set -euo pipefail
PKGS=(mariadb-server mariadb-client rabbitmq-server openvswitch-switch ovn-central ovn-host
      iproute2 ethtool busybox curl openssh-server openssh-client
      iputils-ping                 # the instances' ping (the MTU probe needs iputils' -M)
      postgresql gcc python3-dev   # the shared-database tests; uWSGI builds from PyPI
      nginx openssl                # the deployment test: cloudpulse-install's site, TLS
      debootstrap systemd-container    # the appliance test: a Debian 12 root, booted
      prometheus                   # a real scrape of /cpulse/metrics
      chromium fonts-dejavu-core)  # the status page as a browser renders it
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
$SUDO chmod +x /usr/sbin/policy-rc.d
trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
