#!/bin/bash
# The operator bed: a real 3-node OpenStack-style control plane on this machine, for the
# operator checks' integration tests and benchmark.
#
#   bed.sh up | down | exec N CMD... | power-off N | boot N | part N on|off | status
#
# Each node is a network namespace (cpop1..3 on bridge cpobr0, 198.18.10.11-13; the host side
# is 198.18.10.1) with its own UTS, mount and PID namespace (tini as PID 1), running sshd
# (key-only, its own host key), RabbitMQ (3-node cluster), MariaDB Galera (3 nodes,
# replicating on the internal network below),
# corosync + pacemaker (VIP 198.18.10.100 and two clones), HAProxy with its stats socket
# (VIP frontends, non-local bind) and stand-in APIs behind it (api_server.py): "keystone" on
# :5000, "glance" over TLS on :9292 (certificates of the bed's CA, $OPBED_DIR/tls/ca.pem),
# and "placement" on :8778 of an internal network (198.18.11.0/24) that the nodes reach
# and the host cannot (an unreachable route: nothing leaves the machine).
# Everything lives under $OPBED_DIR (default /tmp/cpulse-opbed); only the processes started
# here are ever stopped (by killing the nodes' tini), never the system's MariaDB/RabbitMQ.
set -euo pipefail
BED=${OPBED_DIR:-/tmp/cpulse-opbed}
HERE=$(cd "$(dirname "$0")" && pwd)
NODES=(1 2 3)
NET=198.18.10
INTERNAL=198.18.11
BRIDGE=cpobr0

t0=$(date +%s.%N)
say() { printf '[opbed %5.1fs] %s\n' "$(echo "$(date +%s.%N) - $t0" | bc)" "$*" >&2; }
die() { echo "opbed: $*" >&2; exit 1; }

anchor_pid() { cat "$BED/n$1/anchor.pid" 2>/dev/null; }
tini_pid() { local a; a=$(anchor_pid "$1") || return 1; pgrep -P "$a" -x tini; }
node_exec() {  # run a command inside every namespace of node $1
  local i=$1; shift; local t
  t=$(tini_pid "$i") || die "node$i is not running"
  nsenter -t "$t" -n -u -m -p -- "$@"
}
in_bg() {  # start a daemon inside node $1, detached from this shell
  local i=$1; shift
  node_exec "$i" sh -c "nohup $* >/dev/null 2>&1 &"
}
wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
  local limit=$1 what=$2; shift 2; local end=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "timeout after ${limit}s waiting for $what"
    sleep 0.5
  done
}

make_network() {
  ip link add "$BRIDGE" type bridge
  ip addr add "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for i in "${NODES[@]}"; do
    ip netns add "cpop$i"
    ip link add "vcpop$i" type veth peer name eth0 netns "cpop$i"
    ip link set "vcpop$i" master "$BRIDGE" up
    ip -n "cpop$i" addr add "$NET.1$i/24" dev eth0
    ip -n "cpop$i" addr add "$INTERNAL.1$i/24" dev eth0
    ip -n "cpop$i" link set eth0 up
    ip -n "cpop$i" link set lo up
    # HAProxy binds the VIP frontends on every node, wherever pacemaker put the VIP.
    ip netns exec "cpop$i" sysctl -qw net.ipv4.ip_nonlocal_bind=1
  done
  # The internal network is the nodes' own: the host (the checker) has no way there.
  ip route add unreachable "$INTERNAL.0/24"
}

make_tls() {  # a CA, and a certificate per node for its TLS API
  local T=$BED/tls
  mkdir -p "$T"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=cpulse-opbed CA" -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
  for i in "${NODES[@]}"; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=node$i" \
      -keyout "$T/node$i.key" -out "$T/node$i.csr" 2>/dev/null
    printf 'subjectAltName=IP:%s\n' "$NET.1$i" > "$T/node$i.ext"
    openssl x509 -req -in "$T/node$i.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
      -CAcreateserial -days 2 -extfile "$T/node$i.ext" -out "$T/node$i.pem" 2>/dev/null
  done
}

make_keys() {
  mkdir -p "$BED/ssh"
  ssh-keygen -q -t ed25519 -N '' -C cpulse-opbed-client -f "$BED/ssh/client_key"
  cp "$BED/ssh/client_key.pub" "$BED/ssh/authorized_keys"
  : > "$BED/ssh/known_hosts"
  for i in "${NODES[@]}"; do
    ssh-keygen -q -t ed25519 -N '' -C "node$i" -f "$BED/n$i/hostkey"
    echo "$NET.1$i $(cut -d' ' -f1,2 "$BED/n$i/hostkey.pub")" >> "$BED/ssh/known_hosts"
    cat > "$BED/n$i/sshd_config" <<EOF
Port 22
ListenAddress 0.0.0.0
HostKey $BED/n$i/hostkey
PidFile /run/sshd.pid
AuthorizedKeysFile $BED/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
StrictModes no
LogLevel VERBOSE
MaxStartups 100
Subsystem sftp internal-sftp
EOF
  done
}

make_node_dirs() {
  local cookie; cookie=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
  local dbpass; dbpass=$(head -c 18 /dev/urandom | base64 | tr -d '+/=')
  echo "$dbpass" > "$BED/galera_monitor_password"; chmod 600 "$BED/galera_monitor_password"
  for i in "${NODES[@]}"; do
    local R=$BED/n$i
    mkdir -p "$R"/{lib-rabbitmq,lib-mysql,lib-corosync,home,www} "$R"/log/{rabbitmq,mysql,cluster,pacemaker,crmsh,haproxy}
    chown rabbitmq:rabbitmq "$R/lib-rabbitmq" "$R/log/rabbitmq"
    chown mysql:mysql "$R/lib-mysql" "$R/log/mysql"
    chown hacluster:haclient "$R/log/pacemaker"
    printf '%s' "$cookie" > "$R/lib-rabbitmq/.erlang.cookie"
    chown rabbitmq:rabbitmq "$R/lib-rabbitmq/.erlang.cookie"; chmod 400 "$R/lib-rabbitmq/.erlang.cookie"
    cp -a /etc/rabbitmq "$R/etc-rabbitmq"; cp "$HERE"/conf/{rabbitmq.conf,advanced.config} "$R/etc-rabbitmq/"
    cp -a /etc/mysql "$R/etc-mysql"
    sed "s/@I@/$i/g" "$HERE/conf/galera.cnf" > "$R/etc-mysql/mariadb.conf.d/99-cpulse-opbed-galera.cnf"
    cp -a /etc/corosync "$R/etc-corosync"; cp "$HERE/conf/corosync.conf" "$R/etc-corosync/"
    cp -a /var/lib/pacemaker "$R/lib-pacemaker"
    # The Galera monitoring credentials, in the SSH user's client config file (~/.my.cnf).
    printf '[client]\nuser = cloudpulse\npassword = %s\n' "$dbpass" > "$R/home/.my.cnf"
    chmod 600 "$R/home/.my.cnf"
  done
  for i in "${NODES[@]}"; do
    mariadb-install-db --no-defaults --user=mysql --datadir="$BED/n$i/lib-mysql" \
      --auth-root-authentication-method=socket >/dev/null 2>&1 &
  done
  wait
}

start_node() {  # the node's namespaces, its bind mounts and sshd (the node's "boot")
  local i=$1 R=$BED/n$i
  ip netns exec "cpop$i" unshare --uts --mount --pid --fork --mount-proc --propagation private \
    /usr/bin/tini -s -- sh -c "
      mount --bind $HERE/conf/hosts /etc/hosts
      mount -t tmpfs tmpfs /run
      mkdir -p /run/sshd /run/mysqld /run/rabbitmq /run/crm /run/haproxy
      chown mysql:mysql /run/mysqld; chown rabbitmq:rabbitmq /run/rabbitmq
      mount -t tmpfs tmpfs /dev/shm; chmod 1777 /dev/shm
      mount --bind $R/home /root
      mount --bind $R/lib-rabbitmq /var/lib/rabbitmq; mount --bind $R/etc-rabbitmq /etc/rabbitmq
      mount --bind $R/lib-mysql /var/lib/mysql; mount --bind $R/etc-mysql /etc/mysql
      mount --bind $R/log /var/log
      mount --bind $R/etc-corosync /etc/corosync; mount --bind $R/lib-corosync /var/lib/corosync
      mount --bind $R/lib-pacemaker /var/lib/pacemaker
      hostname node$i
      exec /usr/sbin/sshd -D -e -f $R/sshd_config" > "$R/sshd.log" 2>&1 &
  echo $! > "$R/anchor.pid"
  wait_for 10 "node$i" tini_pid "$i"
  wait_for 10 "sshd on node$i" node_exec "$i" test -s /run/sshd.pid
}

api() {  # api NODE NAME ARGS...: a stand-in API server named like the service's process
  local i=$1 name=$2; shift 2
  in_bg "$i" "sh -c 'cd $BED/n$i/www && exec bash -c \"exec -a $name python3 $HERE/api_server.py $*\"'"
}
start_keystone() { api "$1" keystone-wsgi-public "$NET.1$1" 5000; }
start_placement() { api "$1" placement-api "$INTERNAL.1$1" 8778; }
start_apis() {
  start_keystone "$1"
  api "$1" glance-api "$NET.1$1" 9292 "$BED/tls/node$1.pem" "$BED/tls/node$1.key"
  start_placement "$1"
}
start_haproxy() { node_exec "$1" haproxy -D -f "$HERE/conf/haproxy.cfg"; }
start_pacemaker() { in_bg "$1" pacemakerd; }
start_rabbit() { in_bg "$1" rabbitmq-server; }
start_mariadb() { in_bg "$1" /usr/sbin/mariadbd --user=mysql "${2:-}"; }

rabbit_running() { timeout 15 "$0" exec "$1" rabbitmqctl -q await_startup --timeout 5; }
rabbit_clustered() {
  [ "$(node_exec 1 rabbitmqctl cluster_status --formatter json | python3 -c \
      'import json,sys; print(len(json.load(sys.stdin)["running_nodes"]))')" = 3 ]
}
galera_synced() {
  local i n=0
  for i in "${NODES[@]}"; do
    node_exec "$i" mysql --no-defaults -N -B -e "SHOW STATUS WHERE Variable_name IN ('wsrep_local_state_comment','wsrep_cluster_size')" \
      | sort | tr '\n' ' ' | grep -q 'wsrep_cluster_size.3 wsrep_local_state_comment.Synced' && n=$((n + 1))
  done
  [ "$n" = 3 ]
}
pcmk_quorate() { node_exec 1 crm_mon -1 | grep -q 'Current DC: node.*with quorum'; }
pcmk_resources_up() {
  local out; out=$(node_exec 1 crm_mon -1)
  grep -q 'Promoted: \[' <<<"$out" && grep -q 'vip.*Started' <<<"$out" \
    && grep -q 'Started: \[ node1 node2 node3 \]' <<<"$out"
}
haproxy_all_up() {
  local i
  for i in "${NODES[@]}"; do
    [ "$(node_exec "$i" sh -c "echo 'show stat' | socat - UNIX-CONNECT:/run/haproxy/admin.sock" | grep -c ',UP,')" -ge 16 ] || return 1
  done
}

up() {
  [ "$(id -u)" = 0 ] || die "root needed (namespaces, packages)"
  [ ! -e "$BED/n1/anchor.pid" ] || die "already up ($BED); run $0 down first"
  bash "$HERE/install-packages.sh"
  mkdir -p "$BED"; for i in "${NODES[@]}"; do mkdir -p "$BED/n$i"; done
  make_network; make_keys; make_tls; make_node_dirs
  say "network, keys, node dirs ready"
  for i in "${NODES[@]}"; do start_node "$i"; done
  say "3 nodes (sshd) up"
  for i in "${NODES[@]}"; do start_rabbit "$i"; in_bg "$i" "corosync -f"; start_apis "$i"; done
  start_mariadb 1 --wsrep-new-cluster
  sleep 1
  for i in "${NODES[@]}"; do start_pacemaker "$i"; done
  wait_for 60 "galera bootstrap on node1" node_exec 1 mysql --no-defaults -e 'select 1'
  node_exec 1 mysql --no-defaults -e "CREATE USER IF NOT EXISTS 'cloudpulse'@'localhost' IDENTIFIED BY '$(cat "$BED/galera_monitor_password")'"
  for i in 2 3; do start_mariadb "$i"; done
  say "galera bootstrapped on node1"
  for i in "${NODES[@]}"; do wait_for 180 "rabbit on node$i" rabbit_running "$i"; done
  if ! rabbit_clustered; then
    say "classic_config did not form the cluster; joining by hand"
    for i in 2 3; do node_exec "$i" sh -c 'rabbitmqctl stop_app && rabbitmqctl reset && rabbitmqctl join_cluster rabbit@node1 && rabbitmqctl start_app' >/dev/null; done
  fi
  wait_for 60 "rabbit cluster of 3" rabbit_clustered
  say "rabbitmq cluster formed"
  wait_for 120 "galera 3/3 synced" galera_synced
  say "galera 3/3 synced"
  wait_for 120 "pacemaker quorum" pcmk_quorate
  local X="node_exec 1"
  $X crm_attribute --type crm_config --name stonith-enabled --update false
  $X pcs resource create vip ocf:heartbeat:IPaddr2 ip=$NET.100 cidr_netmask=24 op monitor interval=5s >/dev/null 2>&1
  $X pcs resource create api-dummy ocf:pacemaker:Dummy op monitor interval=5s clone >/dev/null 2>&1
  $X pcs resource create galera-like ocf:pacemaker:Stateful op monitor interval=5s role=Promoted \
    op monitor interval=6s role=Unpromoted promotable >/dev/null 2>&1
  wait_for 60 "pacemaker resources" pcmk_resources_up
  say "pacemaker DC elected, resources started"
  for i in "${NODES[@]}"; do start_haproxy "$i"; done
  wait_for 30 "haproxy: every server UP on every node" haproxy_all_up
  say "haproxy: all servers UP; bed ready (ssh key $BED/ssh/client_key, known_hosts $BED/ssh/known_hosts)"
}

down() {
  for i in "${NODES[@]}"; do
    local a; a=$(anchor_pid "$i") || continue
    local t; t=$(pgrep -P "$a" -x tini) && kill -KILL "$t"
    for _ in $(seq 1 50); do kill -0 "$a" 2>/dev/null || break; sleep 0.1; done
    rm -f "$BED/n$i/anchor.pid"
  done
  for i in "${NODES[@]}"; do ip netns del "cpop$i" 2>/dev/null || true; done
  ip link del "$BRIDGE" 2>/dev/null || true
  ip route del unreachable "$INTERNAL.0/24" 2>/dev/null || true
  rm -rf "$BED"
}

power_off() {  # SIGKILL the node's PID 1: the kernel kills every process of the node
  local t; t=$(tini_pid "$1") || return 0
  kill -KILL "$t"
  local a; a=$(anchor_pid "$1")
  for _ in $(seq 1 50); do kill -0 "$a" 2>/dev/null || break; sleep 0.1; done
  rm -f "$BED/n$1/anchor.pid"
}

boot() {  # bring a powered-off node back with all its services; they rejoin their clusters
  local i=$1
  start_node "$i"
  in_bg "$i" "corosync -f"; sleep 1
  start_pacemaker "$i"; start_rabbit "$i"; start_mariadb "$i"; start_apis "$i"; start_haproxy "$i"
}

restart_rabbit() {  # hard restart (after a partition a plain stop_app/start_app can hang)
  local i=$1
  node_exec "$i" sh -c 'pkill -KILL -u rabbitmq; sleep 1'
  start_rabbit "$i"
  wait_for 120 "rabbit on node$i" rabbit_running "$i"
}

part() {  # isolate node $1 from its peers (the management path from 198.18.10.1 stays open)
  local i=$1
  node_exec "$i" nft add table inet cpulse_part
  node_exec "$i" nft 'add chain inet cpulse_part in { type filter hook input priority 0; }'
  node_exec "$i" nft 'add chain inet cpulse_part out { type filter hook output priority 0; }'
  node_exec "$i" nft flush table inet cpulse_part
  if [ "$2" = on ]; then
    local peers="{ $NET.11, $NET.12, $NET.13, $INTERNAL.11, $INTERNAL.12, $INTERNAL.13 }"
    node_exec "$i" nft add rule inet cpulse_part in iifname != lo ip saddr "$peers" drop
    node_exec "$i" nft add rule inet cpulse_part out oifname != lo ip daddr "$peers" drop
  fi
}

status() {
  for i in "${NODES[@]}"; do
    if tini_pid "$i" >/dev/null 2>&1; then echo "node$i: up"; else echo "node$i: down"; fi
  done
}

cmd=${1:-}; shift || true
case "$cmd" in
  up) up ;;
  down) down ;;
  exec) node_exec "$@" ;;
  power-off) power_off "$1" ;;
  boot) boot "$1" ;;
  part) part "$1" "$2" ;;
  status) status ;;
  start-keystone) start_keystone "$1" ;;
  start-apis) start_apis "$1" ;;
  start-placement) start_placement "$1" ;;
  start-haproxy) start_haproxy "$1" ;;
  start-pacemaker) start_pacemaker "$1" ;;
  restart-rabbit) restart_rabbit "$1" ;;
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
