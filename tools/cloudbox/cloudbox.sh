#!/bin/bash
# CloudPulse test harness "cloud in a box": real OpenStack services (PyPI, one venv)
# plus MariaDB, RabbitMQ, Open vSwitch (userspace datapath) and OVN, all private to
# $CLOUDBOX_DIR and listening on 127.0.0.1 only.  See README.md.
#
#   cloudbox.sh install               venv (+ Debian packages) from requirements/constraints
#   cloudbox.sh up                    start (fast no-op when already up and healthy)
#   cloudbox.sh down                  stop everything this box started, by PID
#   cloudbox.sh status                one line per service; exit 0 only if all healthy
#   cloudbox.sh stop|start|hang|resume SERVICE    fault hooks (per host: SERVICE@HOST)
#   cloudbox.sh cut|heal HOST         a host's uplink to the tunnel network down / up
#   cloudbox.sh underlay-mtu HOST MTU the MTU of a host's uplink
#   cloudbox.sh external down|up      the host's link to the external network (floating IPs)
#   cloudbox.sh horizon-login [USER]  real Horizon login (CSRF form POST)
#   cloudbox.sh services              list the service names
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
D=${CLOUDBOX_DIR:-/tmp/cpulse-box}
D=${D%/}
VENV=${CLOUDBOX_VENV:-/root/.cache/cloudpulse/cloud-venv}
V=$VENV/bin
DBCACHE=${CLOUDBOX_DBCACHE:-/root/.cache/cloudpulse/cloudbox-dbcache}
BOX_HOST=cloudbox                             # the controller: APIs, neutron, cinder-volume
GATEWAY=network                               # the network node: br-ex, router gateways
# compute hosts compute-1..N, one OVN chassis each: as asked, else as the running box has
WANT_COMPUTE=${CLOUDBOX_COMPUTE_HOSTS:-}
NCOMPUTE=${WANT_COMPUTE:-$(cat "$D/run/compute-hosts" 2>/dev/null || echo 3)}
[[ "$NCOMPUTE" =~ ^[1-9]$ ]] || { echo "cloudbox: CLOUDBOX_COMPUTE_HOSTS must be 1..9, not '$NCOMPUTE'" >&2; exit 1; }
UNDERLAY=198.18.64                            # tunnel network (Linux bridge cbxul), SB at .1
UNDERLAY_MTU=${CLOUDBOX_UNDERLAY_MTU:-1500}
MYSQL_PORT=${CLOUDBOX_MYSQL_PORT:-13306}
RABBIT_PORT=${CLOUDBOX_RABBIT_PORT:-15673}
RABBIT_DIST_PORT=${CLOUDBOX_RABBIT_DIST_PORT:-25673}
EPMD_PORT=${CLOUDBOX_EPMD_PORT:-14369}
HORIZON_PORT=8080
BREX_CIDR=198.19.0.1/24                      # the host's end of the external network
STOP_WAIT=${CLOUDBOX_STOP_WAIT:-10}          # seconds between SIGTERM and SIGKILL
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

# ------------------------------------------------------------------ services
# Per-host services are named SERVICE@HOST, as systemd template units are.
INFRA=(mariadb rabbitmq ovn-nb ovn-sb ovn-northd)
APIS=(keystone glance neutron placement nova-api cinder-api horizon)
set_hosts() {  # N: the host and service lists of a box with N compute hosts
  local h i
  COMPUTES=(); for i in $(seq "$1"); do COMPUTES+=("compute-$i"); done
  CHASSIS=("$GATEWAY" "${COMPUTES[@]}")      # each in its own netns cbh-<name>
  CHASSIS_SVCS=(); OVN_CONTROLLERS=(); NOVA_COMPUTES=()
  for h in "${CHASSIS[@]}"; do CHASSIS_SVCS+=("ovsdb-server@$h" "ovs-vswitchd@$h"); OVN_CONTROLLERS+=("ovn-controller@$h"); done
  for h in "${COMPUTES[@]}"; do NOVA_COMPUTES+=("nova-compute@$h"); done
  OPENSTACK=("${APIS[@]}" nova-conductor nova-scheduler "${NOVA_COMPUTES[@]}" cinder-scheduler cinder-volume)
  ALL=("${INFRA[@]}" "${CHASSIS_SVCS[@]}" "${OVN_CONTROLLERS[@]}" "${OPENSTACK[@]}")
}
set_hosts "$NCOMPUTE"
declare -A PORT=([keystone]=5000 [glance]=9292 [neutron]=9696 [placement]=8778
                 [nova-api]=8774 [cinder-api]=8776 [horizon]=$HORIZON_PORT)
declare -A URLPATH=([keystone]=/v3 [horizon]=/auth/login/)

T0=$(date +%s.%N)
ts() { printf '[%6.1fs] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*"; }
die() { echo "cloudbox: $*" >&2; exit 1; }
is_service() { local s; for s in "${ALL[@]}" epmd; do [ "$s" = "$1" ] && return 0; done; return 1; }

# chassis_env HOST: OVS/OVN tools and daemons of one chassis use its own directories
chassis_env() {
  local c=$D/hosts/$1
  export OVS_RUNDIR=$c/run OVS_DBDIR=$c/db OVS_LOGDIR=$D/log OVS_SYSCONFDIR=$c/etc
  export OVN_RUNDIR=$c/run OVN_DBDIR=$c/db OVN_LOGDIR=$D/log OVN_SYSCONFDIR=$c/etc
}
central_env() {
  export OVN_RUNDIR=$D/ovn/run OVN_DBDIR=$D/ovn/db OVN_LOGDIR=$D/log OVN_SYSCONFDIR=$D/ovn/etc
}
vsctl() { local h=$1; shift; ovs-vsctl --db="unix:$D/hosts/$h/run/db.sock" --timeout=10 "$@"; }
chassis_index() { local i; for i in "${!CHASSIS[@]}"; do [ "${CHASSIS[$i]}" = "$1" ] && echo $((i + 10)); done; return 0; }
sqlq() { timeout 10 mariadb --no-defaults -S "$D/mysql/run/mysqld.sock" -uroot -N -B -e "$1" 2>/dev/null; }

# ------------------------------------------------------------ process control
# pid of a service's leader; fails when gone or when the pid was reused (start time differs)
starttime() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }
pidof_svc() {
  local p
  [ -s "$D/run/$1.pid" ] || return 1
  p=$(cat "$D/run/$1.pid")
  if [ -s "$D/run/$1.start" ] && [ "$(starttime "$p")" != "$(cat "$D/run/$1.start")" ]; then return 1; fi
  echo "$p"
}
# state of a service's leader process: R (running/sleeping), T (stopped), - (gone)
pstate() {
  local p s; p=$(pidof_svc "$1" 2>/dev/null) || { echo -; return; }
  s=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -c1) || { echo -; return; }
  case "$s" in T|t) echo T;; Z|X|"") echo -;; *) echo R;; esac
}
alive() { [ "$(pstate "$1")" != - ]; }
group_pids() { ps -e -o pid=,pgid=,stat= | awk -v g="$1" '$2==g && $3 !~ /^Z/ {print $1}'; }
# all descendants of a pid (erlang port programs, for one, run in sessions of their own)
descendants() {
  ps -e -o pid=,ppid= | awk -v r="$1" '{kids[$2] = kids[$2] " " $1}
    END { q = r; while (q != "") { n = split(q, a, " "); q = "";
          for (i = 1; i <= n; i++) { m = split(kids[a[i]], k, " ");
            for (j = 1; j <= m; j++) { print k[j]; q = q " " k[j] } } } }'
}

# spawn NAME [ENV=VAL...] CMD...: run in a new session (own process group), pid file
# written by the process itself, stdio to the log, detached from the caller's pipes.
spawn() {
  local name=$1; shift
  rm -f "$D/run/$name.pid" "$D/run/$name.start"
  setsid bash -c 'echo $$ > "$0"; exec env "$@"' "$D/run/$name.pid" "$@" \
      >>"$D/log/$name.out" 2>&1 </dev/null 9>&- &
  local i
  for i in $(seq 200); do
    if [ -s "$D/run/$name.pid" ]; then starttime "$(cat "$D/run/$name.pid")" > "$D/run/$name.start"; return 0; fi
    sleep 0.01
  done
  die "could not start $name"
}

# stop_groups NAME...: SIGTERM (+SIGCONT for hung ones) to each whole process group,
# wait up to STOP_WAIT s, then SIGKILL what is left of the group.
stop_groups() {
  local n p pgs=() i left tree=()
  for n in "$@"; do
    p=$(pidof_svc "$n" 2>/dev/null) || continue
    [ -n "$(group_pids "$p")" ] || { rm -f "$D/run/$n.pid" "$D/run/$n.start"; continue; }
    tree+=($(descendants "$p"))
    kill -TERM -- "-$p" 2>/dev/null || true
    kill -CONT -- "-$p" 2>/dev/null || true
    pgs+=("$n:$p")
  done
  for i in $(seq $((STOP_WAIT * 5))); do
    left=0
    for n in "${pgs[@]}"; do [ -n "$(group_pids "${n#*:}")" ] && left=1; done
    [ $left = 0 ] && break
    sleep 0.2
  done
  for n in "${pgs[@]}"; do
    p=${n#*:}
    if [ -n "$(group_pids "$p")" ]; then
      echo "  ${n%%:*}: SIGKILL to process group $p"
      kill -KILL -- "-$p" 2>/dev/null || true
    fi
  done
  for n in "${pgs[@]}"; do
    for i in $(seq 25); do [ -z "$(group_pids "${n#*:}")" ] && break; sleep 0.2; done
    rm -f "$D/run/${n%%:*}.pid" "$D/run/${n%%:*}.start"
  done
  for p in "${tree[@]}"; do   # children that left the process group
    [ -d "/proc/$p" ] && kill -KILL "$p" 2>/dev/null || true
  done
}

gunicorn_args() {  # NAME PORT
  echo "$V/gunicorn --no-control-socket -k gthread -w 1 --threads 4 --keep-alive 0" \
       "--timeout 300 --graceful-timeout 3 -b 127.0.0.1:$2 --pythonpath $HERE" \
       "--worker-tmp-dir $D/tmp/gunicorn --error-logfile $D/log/$1-gunicorn.log" \
       "--access-logfile $D/log/$1-access.log --name cloudbox-$1 cbwsgi:application"
}

# launch SERVICE: the one command line of each service (start == restart the same way)
launch() {
  local n=$1 gargs host=${1#*@} c=$D/hosts/${1#*@}
  gargs=$(gunicorn_args "$n" "${PORT[$n]:-0}")
  case "$n" in
    mariadb) spawn mariadb mariadbd --defaults-file="$D/etc/mysql/my.cnf" ;;
    epmd)    spawn epmd epmd -address 127.0.0.1 -port "$EPMD_PORT" ;;
    rabbitmq)
      spawn rabbitmq HOME="$D/rabbit/home" RABBITMQ_NODENAME=cloudbox@localhost \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$RABBIT_PORT" \
        RABBITMQ_DIST_PORT="$RABBIT_DIST_PORT" ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$EPMD_PORT" \
        RABBITMQ_MNESIA_BASE="$D/rabbit/mnesia" RABBITMQ_LOG_BASE="$D/rabbit/log" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$D/etc/rabbit/enabled_plugins" \
        RABBITMQ_CONFIG_FILE="$D/etc/rabbit/rabbitmq" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$D/etc/rabbit/advanced.config" \
        RABBITMQ_CONF_ENV_FILE="$D/etc/rabbit/rabbitmq-env.conf" \
        RABBITMQ_PID_FILE="$D/rabbit/rabbit.pid" /usr/lib/rabbitmq/bin/rabbitmq-server ;;
    ovsdb-server@*)   # unix sockets are not namespaced: it runs in the root namespace
      chassis_env "$host"; spawn "$n" ovsdb-server "$c/db/conf.db" --remote="punix:$c/run/db.sock" \
        --unixctl="$c/run/ovsdb-server.ctl" --log-file="$D/log/$n.log" ;;
    ovs-vswitchd@*)   # in the host's namespace: its taps, routes and ARP view are the host's
      chassis_env "$host"; spawn "$n" ip netns exec "cbh-$host" ovs-vswitchd "unix:$c/run/db.sock" \
        --unixctl="$c/run/ovs-vswitchd.ctl" --log-file="$D/log/$n.log" ;;
    ovn-controller@*) # refuses --unixctl: its socket is $OVN_RUNDIR/ovn-controller.<pid>.ctl
      chassis_env "$host"; spawn "$n" ip netns exec "cbh-$host" ovn-controller "unix:$c/run/db.sock" \
        --log-file="$D/log/$n.log" ;;
    ovn-nb)
      central_env; spawn ovn-nb ovsdb-server "$D/ovn/db/ovnnb_db.db" --remote="punix:$D/ovn/run/ovnnb_db.sock" \
        --unixctl="$D/ovn/run/ovnnb_db.ctl" --log-file="$D/log/ovn-nb.log" ;;
    ovn-sb)   # the chassis reach it over the tunnel network
      central_env; spawn ovn-sb ovsdb-server "$D/ovn/db/ovnsb_db.db" --remote="punix:$D/ovn/run/ovnsb_db.sock" \
        --remote="ptcp:6642:$UNDERLAY.1" --unixctl="$D/ovn/run/ovnsb_db.ctl" --log-file="$D/log/ovn-sb.log" ;;
    ovn-northd)
      central_env; spawn ovn-northd ovn-northd --ovnnb-db="unix:$D/ovn/run/ovnnb_db.sock" \
        --ovnsb-db="unix:$D/ovn/run/ovnsb_db.sock" --unixctl="$D/ovn/run/ovn-northd.ctl" \
        --log-file="$D/log/ovn-northd.log" ;;
    keystone)
      spawn keystone CLOUDBOX_SERVICE=keystone CLOUDBOX_WSGI_MODULE=keystone.wsgi.api \
        OS_KEYSTONE_CONFIG_FILES="$D/etc/keystone/keystone.conf" $gargs ;;
    glance)
      spawn glance CLOUDBOX_SERVICE=glance-api CLOUDBOX_WSGI_MODULE=glance.wsgi.api \
        OS_GLANCE_CONFIG_DIR="$D/etc/glance" $gargs ;;
    neutron)
      spawn neutron CLOUDBOX_SERVICE=neutron-api CLOUDBOX_WSGI_MODULE=neutron.wsgi.api \
        ASGI_WORKERS=1 TMPDIR="$D/tmp/neutron" \
        OS_NEUTRON_CONFIG_FILES="$D/etc/neutron/neutron.conf;$D/etc/neutron/plugins/ml2/ml2_conf.ini" $gargs ;;
    placement)
      spawn placement CLOUDBOX_SERVICE=placement-api CLOUDBOX_WSGI_MODULE=placement.wsgi.api \
        OS_PLACEMENT_CONFIG_DIR="$D/etc/placement" $gargs ;;
    nova-api)
      local ncd=$D/etc/nova-api; [ -d "$ncd" ] || ncd=$D/etc/nova
      spawn nova-api CLOUDBOX_SERVICE=nova-api CLOUDBOX_WSGI_MODULE=nova.wsgi.osapi_compute \
        OS_NOVA_CONFIG_DIR="$ncd" $gargs ;;
    cinder-api)
      spawn cinder-api CLOUDBOX_SERVICE=cinder-api CLOUDBOX_WSGI_MODULE=cinder.wsgi.api \
        CLOUDBOX_WSGI_ARGS="--config-file $D/etc/cinder/cinder.conf --log-file $D/log/cinder-api.log" $gargs ;;
    horizon)
      spawn horizon CLOUDBOX_SERVICE=horizon CLOUDBOX_WSGI_MODULE=openstack_dashboard.wsgi \
        PYTHONPATH="$D/horizon" $gargs ;;
    nova-conductor|nova-scheduler)
      spawn "$n" "$V/$n" --config-file "$D/etc/nova/nova.conf" ;;
    nova-compute@*)   # its virt driver, cbvirt.py, is loaded from here (compute_path/)
      spawn "$n" PYTHONPATH="$HERE/compute_path" CLOUDBOX_DIR="$D" "$V/nova-compute" \
        --config-file "$D/etc/nova/nova.conf" --config-file "$D/etc/nova/$host.conf" ;;
    cinder-scheduler|cinder-volume)
      spawn "$n" "$V/$n" --config-file "$D/etc/cinder/cinder.conf" ;;
    *) die "unknown service $n" ;;
  esac
}

# ------------------------------------------------------------------- health
http_code() { curl -s -o /dev/null -m "${2:-5}" -w '%{http_code}' "$1" 2>/dev/null || true; }
ovn_controller_ctl() { echo "$D/hosts/$1/run/ovn-controller.$(pidof_svc "ovn-controller@$1" 2>/dev/null).ctl"; }
hb_age() {  # BINARY [HOST]: seconds since the last heartbeat of a nova/cinder service (DB servicegroup)
  local db=nova where=""; case "$1" in cinder-*) db=cinder;; esac
  [ -n "${2:-}" ] && where="AND host='$2'"
  sqlq "SELECT TIMESTAMPDIFF(SECOND, COALESCE(MAX(updated_at), MAX(created_at)), UTC_TIMESTAMP())
        FROM $db.services WHERE \`binary\`='$1' AND deleted=0 $where"
}

# check NAME: prints a detail, returns 0 when the service answers
check() {
  local n=$1 st code out age
  st=$(pstate "$n")
  [ "$st" = - ] && { echo "not running"; return 1; }
  [ "$st" = T ] && { echo "hung (SIGSTOP, pid $(pidof_svc "$n"))"; return 1; }
  case "$n" in
    mariadb)
      timeout 5 mariadb-admin --no-defaults -S "$D/mysql/run/mysqld.sock" -uroot --connect-timeout=3 ping \
        >/dev/null 2>&1 && { echo "127.0.0.1:$MYSQL_PORT"; return 0; }
      echo "no answer"; return 1 ;;
    rabbitmq)   # a garbage greeting is answered with the AMQP protocol header
      out=$(timeout 4 bash -c "exec 3<>/dev/tcp/127.0.0.1/$RABBIT_PORT; printf 'HELO\r\n\r\n' >&3; head -c 4 <&3" 2>/dev/null || true)
      [ "$out" = AMQP ] && { echo "127.0.0.1:$RABBIT_PORT"; return 0; }
      echo "no AMQP answer on 127.0.0.1:$RABBIT_PORT"; return 1 ;;
    ovsdb-server@*|ovs-vswitchd@*)
      ovs-appctl --timeout=3 -t "$D/hosts/${n#*@}/run/${n%@*}.ctl" version >/dev/null 2>&1 && { echo ok; return 0; }
      echo "no answer"; return 1 ;;
    ovn-nb|ovn-sb)
      local f=ovnnb_db; [ "$n" = ovn-sb ] && f=ovnsb_db
      ovs-appctl --timeout=3 -t "$D/ovn/run/$f.ctl" version >/dev/null 2>&1 && { echo ok; return 0; }
      echo "no answer"; return 1 ;;
    ovn-northd)
      out=$(ovn-appctl --timeout=3 -t "$D/ovn/run/ovn-northd.ctl" status 2>/dev/null || true)
      [[ "$out" == *active* ]] && { echo "$out"; return 0; }
      echo "no answer ($out)"; return 1 ;;
    ovn-controller@*)
      out=$(ovn-appctl --timeout=3 -t "$(ovn_controller_ctl "${n#*@}")" connection-status 2>/dev/null || true)
      [ "$out" = connected ] && { echo "SB connected, chassis ${n#*@}"; return 0; }
      echo "SB ${out:-no answer}"; return 1 ;;
    nova-compute@*)
      age=$(hb_age nova-compute "${n#*@}")
      [[ "$age" =~ ^-?[0-9]+$ ]] && [ "$age" -le 10 ] && { echo "heartbeat ${age}s ago"; return 0; }
      echo "heartbeat ${age:-none} s ago"; return 1 ;;
    nova-*|cinder-*)
      if [ -n "${PORT[$n]:-}" ]; then
        code=$(http_code "http://127.0.0.1:${PORT[$n]}${URLPATH[$n]:-/}")
        [[ "$code" =~ ^[234] ]] && { echo "http://127.0.0.1:${PORT[$n]} ($code)"; return 0; }
        echo "http://127.0.0.1:${PORT[$n]} answered ${code:-000}"; return 1
      fi
      age=$(hb_age "$n")
      [[ "$age" =~ ^-?[0-9]+$ ]] && [ "$age" -le 10 ] && { echo "heartbeat ${age}s ago"; return 0; }
      echo "heartbeat ${age:-none} s ago"; return 1 ;;
    *)
      code=$(http_code "http://127.0.0.1:${PORT[$n]}${URLPATH[$n]:-/}")
      [[ "$code" =~ ^[234] ]] && { echo "http://127.0.0.1:${PORT[$n]} ($code)"; return 0; }
      echo "http://127.0.0.1:${PORT[$n]} answered ${code:-000}"; return 1 ;;
  esac
}

# status [-q]: all checks in parallel; exit 0 only if all healthy
cmd_status() {
  local quiet=${1:-} n rc=0 dir
  [ -d "$D/run" ] || { [ "$quiet" ] || echo "cloudbox: not up ($D/run missing)"; return 1; }
  dir=$(mktemp -d "$D/tmp/status.XXXXXX")
  for n in "${ALL[@]}"; do
    ( if out=$(check "$n"); then echo "OK   $out"; else echo "FAIL $out"; fi > "$dir/$n" ) &
  done
  wait
  for n in "${ALL[@]}"; do
    [ "$quiet" ] || printf '%-17s %s\n' "$n" "$(cat "$dir/$n")"
    [[ "$(cat "$dir/$n")" == OK* ]] || rc=1
  done
  rm -rf "$dir"
  return $rc
}

# wait_healthy TIMEOUT NAME...: until every named service passes its check
declare -A RELAUNCHED=()
wait_healthy() {
  local timeout=$1 t0=$SECONDS n pending said=$SECONDS; shift
  while :; do
    pending=()
    for n in "$@"; do check "$n" >/dev/null 2>&1 || pending+=("$n"); done
    [ ${#pending[@]} = 0 ] && return 0
    if [ -n "${RELAUNCH_DEAD:-}" ]; then
      # during a start only: a daemon that died at start (Debian's ovn-controller
      # has segfaulted there, rarely) is launched again, twice at most
      for n in "${pending[@]}"; do
        if [ "$(pstate "$n")" = - ] && [ "${RELAUNCHED[$n]:-0}" -lt 2 ]; then
          RELAUNCHED[$n]=$(( ${RELAUNCHED[$n]:-0} + 1 ))
          echo "  $n died at start: launching it again"; stop_groups "$n"; launch "$n"
        fi
      done
    fi
    if (( SECONDS - said >= 15 )); then echo "  still waiting for: ${pending[*]}"; said=$SECONDS; fi
    if (( SECONDS - t0 > timeout )); then
      for n in "${pending[@]}"; do echo "  $n: $(check "$n")"; done
      return 1
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------- OVS / OVN
# The tunnel network: a Linux bridge in the root namespace (the SB listens on its .1),
# each host's uplink a veth into it.  Root-side veths send no offloaded checksums:
# userspace OVS would forward them unfixed and the host's kernel would drop them.
start_ovn_central() {
  central_env
  mkdir -p "$D"/ovn/{db,run,etc}
  ip link add cbxul type bridge 2>/dev/null || true
  ip link set cbxul mtu "$UNDERLAY_MTU" up
  ip addr replace "$UNDERLAY.1/24" dev cbxul
  ovsdb-tool create "$D/ovn/db/ovnnb_db.db" /usr/share/ovn/ovn-nb.ovsschema
  ovsdb-tool create "$D/ovn/db/ovnsb_db.db" /usr/share/ovn/ovn-sb.ovsschema
  launch ovn-nb; launch ovn-sb
  wait_sock "$D/ovn/run/ovnnb_db.sock"; wait_sock "$D/ovn/run/ovnsb_db.sock"
  launch ovn-northd
}

# start_chassis HOST: a host's namespace cbh-HOST with its own ovsdb-server, ovs-vswitchd
# (netdev datapath), br-int, br-phy carrying the tunnel address, and ovn-controller.  The
# gateway host also has br-ex, whose port "ext" is a veth to the root namespace's cbx-ext
# (198.19.0.1): the checker reaches floating IPs through it.
start_chassis() {
  local h=$1 ns=cbh-$1 c=$D/hosts/$1 ip
  ip=$UNDERLAY.$(chassis_index "$h")
  chassis_env "$h"
  mkdir -p "$c"/{db,run,etc}
  # leftovers of a box whose state directory went (see cmd_down)
  ip netns del "$ns" 2>/dev/null || true; ip link del "cbu-$h" 2>/dev/null || true
  ip netns add "$ns"; ip -n "$ns" link set lo up
  ip link add "cbu-$h" mtu "$UNDERLAY_MTU" type veth peer name uplink mtu "$UNDERLAY_MTU" netns "$ns"
  ip link set "cbu-$h" master cbxul up
  ethtool -K "cbu-$h" tx off >/dev/null
  ip -n "$ns" link set uplink up
  ovsdb-tool create "$c/db/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  launch "ovsdb-server@$h"
  wait_sock "$c/run/db.sock"
  vsctl "$h" --no-wait init
  # userspace TSO must be on BEFORE ovs-vswitchd starts (else veth TCP checksums break)
  vsctl "$h" --no-wait set Open_vSwitch . other_config:userspace-tso-enable=true \
    external_ids:system-id="$h" external_ids:hostname="$h" \
    external_ids:ovn-remote="tcp:$UNDERLAY.1:6642" external_ids:ovn-encap-type=geneve \
    external_ids:ovn-encap-ip="$ip" external_ids:ovn-bridge=br-int
  if [ "$h" = "$GATEWAY" ]; then
    vsctl "$h" --no-wait set Open_vSwitch . external_ids:ovn-bridge-mappings=public:br-ex \
      external_ids:ovn-cms-options=enable-chassis-as-gw
  fi
  launch "ovs-vswitchd@$h"
  vsctl "$h" -- --may-exist add-br br-int -- set Bridge br-int datapath_type=netdev fail-mode=secure
  # the tunnel endpoint must be on an OVS bridge: userspace tunnels route and ARP through it
  vsctl "$h" -- --may-exist add-br br-phy -- set Bridge br-phy datapath_type=netdev \
    -- --may-exist add-port br-phy uplink -- set Interface br-phy mtu_request="$UNDERLAY_MTU"
  ip -n "$ns" addr replace "$ip/24" dev br-phy
  ip -n "$ns" link set br-phy up
  if [ "$h" = "$GATEWAY" ]; then
    ip link del cbx-ext 2>/dev/null || true
    ip link add cbx-ext type veth peer name ext netns "$ns"
    ip addr replace "$BREX_CIDR" dev cbx-ext
    ethtool -K cbx-ext tx off >/dev/null
    ip link set cbx-ext up; ip -n "$ns" link set ext up
    vsctl "$h" -- --may-exist add-br br-ex -- set Bridge br-ex datapath_type=netdev \
      -- --may-exist add-port br-ex ext
    ip -n "$ns" link set br-ex up
  fi
  launch "ovn-controller@$h"
}

start_ovs_ovn() {
  local h
  start_ovn_central
  for h in "${CHASSIS[@]}"; do start_chassis "$h"; done
}
wait_sock() { local i; for i in $(seq 500); do [ -S "$1" ] && return 0; sleep 0.02; done; die "no socket $1"; }

# ------------------------------------------------------------------ install
cmd_install() {
  "$HERE/../install-system-packages.sh"
  local want stamp="$VENV/.cloudbox-constraints.sha256" py
  want=$(cat "$HERE/requirements.txt" "$HERE/constraints.txt" | sha256sum | cut -d' ' -f1)
  if [ -x "$V/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ "${1:-}" != --force ]; then
    echo "cloudbox: venv $VENV matches constraints.txt"; return 0
  fi
  py=${CLOUDBOX_PYTHON:-$(command -v python3.11 || command -v python3)}
  if [ -x "$V/python" ] && [ ! -f "$stamp" ] && [ "${1:-}" != --force ]; then
    # a venv made elsewhere: adopt it if it is exactly the pinned set
    if diff <("$V/pip" freeze 2>/dev/null | grep -viE '^(pip|setuptools|wheel)==' | sort -f) \
            <(grep -v '^#' "$HERE/constraints.txt" | sort -f) >/dev/null; then
      echo "$want" > "$stamp"; echo "cloudbox: adopted $VENV (identical to constraints.txt)"; return 0
    fi
  fi
  if [ -x "$V/python" ]; then
    [ -f "$D/run/ready" ] && alive keystone && die "the box is running from $VENV: cloudbox.sh down first"
    echo "cloudbox: recreating $VENV (constraints changed)"; rm -rf "$VENV"
  fi
  local t=$SECONDS
  "$py" -m venv "$VENV"
  "$V/pip" install -q --upgrade pip
  "$V/pip" install -q -r "$HERE/requirements.txt" -c "$HERE/constraints.txt"
  echo "$want" > "$stamp"
  echo "cloudbox: venv $VENV installed in $((SECONDS - t)) s"
}

# --------------------------------------------------------------------- down
cmd_down() {
  local quiet=${1:-} n p ns left
  [ -d "$D/run" ] || { [ "$quiet" ] || echo "cloudbox: nothing to stop"; return 0; }
  rm -f "$D/run/ready"
  set_hosts "$(cat "$D/run/compute-hosts" 2>/dev/null || echo "$NCOMPUTE")"   # the running box's
  stop_groups "${OPENSTACK[@]}"
  [ "$quiet" ] || ts "OpenStack services stopped"
  # namespaces by convention named cbx-* (instances plugged by tests)
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cbx-' || true); do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  # ovn-controllers first (they would re-create br-int), then the hosts' namespaces
  stop_groups "${OVN_CONTROLLERS[@]}"
  stop_groups $(printf 'ovs-vswitchd@%s ' "${CHASSIS[@]}")
  stop_groups $(printf 'ovsdb-server@%s ' "${CHASSIS[@]}") ovn-northd ovn-nb ovn-sb
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cbh-' || true); do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true   # takes its veths' root ends with it
  done
  # a namespace whose name is gone lives on while a process or another mount namespace
  # holds it, and so does its veth's root end: deleting that end frees the name for `up`
  for n in cbx-ext cbxul $(ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}' \
                           | grep '^cbu-' || true); do
    ip link del "$n" 2>/dev/null || true
  done
  stop_groups rabbitmq epmd mariadb
  [ "$quiet" ] || ts "OVS/OVN, RabbitMQ, MariaDB stopped"
  # a daemon still running on this box's own files is ours too (clients that merely
  # point at $D/clouds.yaml are not touched)
  left=$(ps -e -o pid=,args= | grep -E -- "$D/(etc|hosts|ovn|rabbit|mysql)/" | grep -v -e grep -e "cloudbox.sh" \
         | awk '{print $1}' || true)
  for p in $left; do kill -KILL "$p" 2>/dev/null || true; done
  [ "$quiet" ] || echo "cloudbox: down (no process left from $D)"
}

# ----------------------------------------------------------------------- up
db_cache_key() {
  cat "$HERE/constraints.txt" "$HERE/configs.sh" "$HERE/ks_setup.py" "$HERE/cloudbox.sh" \
    | sha256sum | cut -c1-16
}

write_clouds_yaml() {
  local c u p
  {
    echo "clouds:"
    for c in admin demo; do
      u=$c; p=$c
      cat <<EOF
  cloudbox-$c:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: $u
      password: "$PW"
      project_name: $p
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
    interface: public
EOF
    done
  } > "$D/clouds.yaml"
  chmod 600 "$D/clouds.yaml"
  echo "http://127.0.0.1:$HORIZON_PORT" > "$D/horizon_url"
  for c in admin demo; do
    cat > "$D/$c-openrc" <<EOF
export OS_AUTH_URL=http://127.0.0.1:5000/v3 OS_IDENTITY_API_VERSION=3 OS_REGION_NAME=RegionOne
export OS_USERNAME=$c OS_PASSWORD='$PW' OS_PROJECT_NAME=$c
export OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default
EOF
  done
}

# Horizon's static files, collected and compressed offline once per venv (about 5 s).
horizon_assets() {
  local done="$VENV/horizon-static/.cloudbox-compressed"
  [ -f "$done" ] && return 0
  local manage=(env PYTHONPATH="$D/horizon" DJANGO_SETTINGS_MODULE=openstack_dashboard.settings
                "$V/django-admin") log="$D/log/horizon-assets.log"
  rm -rf "$VENV/horizon-static"
  { "${manage[@]}" collectstatic --noinput -v0 && "${manage[@]}" compress --force; } > "$log" 2>&1 \
    || die "horizon assets: collectstatic/compress failed (see $log)"
  touch "$done"
  ts "horizon assets collected and compressed into $VENV/horizon-static"
}

cold_start() {
  local key cache hit=0 pids=() p
  T0=$(date +%s.%N)
  cmd_down -q
  if [ -e "$D" ]; then
    [ -f "$D/.cloudbox" ] || [ -z "$(ls -A "$D")" ] || die "$D exists and is not a cloudbox dir; refusing to wipe it"
    rm -rf "$D"
  fi
  mkdir -p "$D"/{run,log,tmp}; touch "$D/.cloudbox"
  set_hosts "${WANT_COMPUTE:-3}"; echo "${#COMPUTES[@]}" > "$D/run/compute-hosts"
  key=$(db_cache_key); cache=$DBCACHE/$key
  if [ -z "${CLOUDBOX_NO_DBCACHE:-}" ] && [ -f "$cache/dump.sql.gz" ] && [ -f "$cache/password" ]; then hit=1; fi
  if [ $hit = 1 ]; then PW=$(cat "$cache/password")
  else PW=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | cut -c1-20); fi
  HORIZON_SECRET=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | cut -c1-40)
  ( umask 077; echo "$PW" > "$D/password" )
  # shellcheck source=configs.sh
  . "$HERE/configs.sh"
  write_configs
  write_clouds_yaml
  ts "configs written in $D (db cache: $([ $hit = 1 ] && echo "hit $key" || echo "miss $key"))"
  horizon_assets

  # MariaDB (own datadir) and RabbitMQ (own epmd) in the background
  mkdir -p "$D"/mysql/{data,run}; chown -R mysql:mysql "$D/mysql"
  (
    mariadb-install-db --defaults-file="$D/etc/mysql/my.cnf" --skip-test-db >"$D/log/mariadb-install.log" 2>&1
    launch mariadb
    for _ in $(seq 300); do sqlq "select 1" >/dev/null && break; sleep 0.1; done
    sqlq "CREATE USER 'cloudbox'@'127.0.0.1' IDENTIFIED BY '$PW';
          GRANT ALL ON *.* TO 'cloudbox'@'127.0.0.1';
          CREATE DATABASE IF NOT EXISTS keystone; CREATE DATABASE IF NOT EXISTS glance;
          CREATE DATABASE IF NOT EXISTS neutron; CREATE DATABASE IF NOT EXISTS placement;
          CREATE DATABASE IF NOT EXISTS nova_api; CREATE DATABASE IF NOT EXISTS nova;
          CREATE DATABASE IF NOT EXISTS nova_cell0; CREATE DATABASE IF NOT EXISTS cinder;" \
      || { echo "mariadb setup failed"; exit 1; }
  ) & local mdb=$!
  launch epmd; launch rabbitmq
  start_ovs_ovn
  ts "OVN central + chassis ${CHASSIS[*]} started (each: ovsdb-server, ovs-vswitchd netdev, ovn-controller)"
  wait $mdb || die "MariaDB did not come up (see $D/log/mariadb*.log)"
  ts "MariaDB up (127.0.0.1:$MYSQL_PORT)"

  local KM="$V/keystone-manage --config-file $D/etc/keystone/keystone.conf"
  local NM="$V/nova-manage --config-file $D/etc/nova/nova.conf"
  if [ $hit = 1 ]; then
    gunzip -c "$cache/dump.sql.gz" | timeout 300 mariadb --no-defaults -S "$D/mysql/run/mysqld.sock" -uroot \
      || die "restoring the db cache failed"
    tar -C "$D/etc/keystone" -xf "$cache/keystone-keys.tar"
    ts "databases restored from the cache"
    for p in "${OPENSTACK[@]}"; do launch "$p"; done
  else
    ( $KM db_sync && $KM fernet_setup --keystone-user root --keystone-group root &&
      $KM credential_setup --keystone-user root --keystone-group root &&
      $KM bootstrap --bootstrap-password "$PW" --bootstrap-admin-url http://127.0.0.1:5000/v3 \
        --bootstrap-internal-url http://127.0.0.1:5000/v3 --bootstrap-public-url http://127.0.0.1:5000/v3 \
        --bootstrap-region-id RegionOne ) > "$D/log/sync-keystone.log" 2>&1 & local ks=$!
    "$V/glance-manage" --config-file "$D/etc/glance/glance-api.conf" db_sync > "$D/log/sync-glance.log" 2>&1 & pids+=($!)
    "$V/neutron-db-manage" --config-file "$D/etc/neutron/neutron.conf" \
      --config-file "$D/etc/neutron/plugins/ml2/ml2_conf.ini" upgrade heads > "$D/log/sync-neutron.log" 2>&1 & pids+=($!)
    "$V/placement-manage" --config-file "$D/etc/placement/placement.conf" db sync > "$D/log/sync-placement.log" 2>&1 & pids+=($!)
    ( $NM api_db sync && $NM cell_v2 map_cell0 \
        --database_connection "mysql+pymysql://cloudbox:$PW@127.0.0.1:$MYSQL_PORT/nova_cell0" &&
      $NM cell_v2 create_cell --name cell1 && $NM db sync ) > "$D/log/sync-nova.log" 2>&1 & pids+=($!)
    "$V/cinder-manage" --config-file "$D/etc/cinder/cinder.conf" db sync > "$D/log/sync-cinder.log" 2>&1 & pids+=($!)
    wait $ks || die "keystone db_sync/bootstrap failed (see $D/log/sync-keystone.log)"
    ts "keystone db_sync + bootstrap done"
    launch keystone
    wait_healthy 120 keystone || die "keystone did not answer"
    ts "keystone answering"
    CLOUDBOX_PASSWORD=$PW "$V/python" "$HERE/ks_setup.py" > "$D/log/ks_setup.log" 2>&1 \
      || die "keystone setup failed (see $D/log/ks_setup.log)"
    ts "keystone projects/users/services/endpoints created"
    for p in "${pids[@]}"; do wait "$p" || die "a db sync failed (see $D/log/sync-*.log)"; done
    ts "all db syncs done"
    if [ -z "${CLOUDBOX_NO_DBCACHE:-}" ]; then   # snapshot before any service writes
      mkdir -p "$cache.tmp"
      mariadb-dump --no-defaults -S "$D/mysql/run/mysqld.sock" -uroot --single-transaction \
        --databases keystone glance neutron placement nova_api nova nova_cell0 cinder \
        | gzip -1 > "$cache.tmp/dump.sql.gz"
      tar -C "$D/etc/keystone" -cf "$cache.tmp/keystone-keys.tar" fernet-keys credential-keys
      ( umask 077; echo "$PW" > "$cache.tmp/password" )
      rm -rf "$cache"; mv "$cache.tmp" "$cache"
      find "$DBCACHE" -mindepth 1 -maxdepth 1 ! -name "$key" -exec rm -rf {} +   # older keys
      ts "database snapshot cached in $cache"
    fi
    for p in "${OPENSTACK[@]}"; do [ "$p" = keystone ] || launch "$p"; done
  fi
  ts "all OpenStack services launched"
  RELAUNCH_DEAD=1 wait_healthy 180 rabbitmq "${APIS[@]}" || die "APIs did not come up (logs in $D/log)"
  ts "all APIs answering"

  # every nova-compute registered -> its host mapped into cell1
  local i n=${#COMPUTES[@]} mapped="SELECT count(*) FROM nova_api.host_mappings"
  for i in $(seq 120); do
    [ "$(sqlq "SELECT count(*) FROM nova.compute_nodes WHERE deleted=0")" -ge "$n" ] 2>/dev/null && break
    for p in "${NOVA_COMPUTES[@]}"; do alive "$p" || die "$p died (see $D/log/$p.log)"; done
    sleep 1
  done
  for i in $(seq 30); do
    $NM cell_v2 discover_hosts > "$D/log/discover_hosts.log" 2>&1 || true
    [ "$(sqlq "$mapped")" -ge "$n" ] 2>/dev/null && break
    sleep 1
  done
  [ "$(sqlq "$mapped")" -ge "$n" ] 2>/dev/null \
    || die "not every compute host got mapped: $(sqlq "SELECT GROUP_CONCAT(host) FROM nova_api.host_mappings")"
  ts "nova-compute on ${COMPUTES[*]} registered and mapped to cell1"
  RELAUNCH_DEAD=1 wait_healthy 120 "${ALL[@]}" || die "not all services healthy"
  ts "all services healthy (status checks)"
  OS_CLIENT_CONFIG_FILE="$D/clouds.yaml" "$V/python" "$HERE/verify.py" 90 "$GATEWAY" "${COMPUTES[@]}" \
    || die "API verification failed"
  ts "API checks passed (admin + demo; compute/volume services up; OVN agents alive on ${CHASSIS[*]})"
  OS_CLIENT_CONFIG_FILE="$D/clouds.yaml" "$V/python" "$HERE/provision.py" > "$D/log/provision.log" 2>&1 \
    || die "provisioning failed (see $D/log/provision.log)"
  ts "provisioned as an operator would: external network public ($BREX_CIDR), flavors"
  local hl=()
  for u in admin demo; do
    "$V/python" "$HERE/horizon_login.py" "http://127.0.0.1:$HORIZON_PORT" "$u" "$PW" & hl+=($!)
  done
  for p in "${hl[@]}"; do wait "$p" || die "horizon login failed"; done
  ts "horizon login OK (admin, demo)"
  touch "$D/run/ready"
  ts "READY  clouds.yaml: $D/clouds.yaml  horizon: $(cat "$D/horizon_url")"
}

cmd_up() {
  local n
  if [ -n "$WANT_COMPUTE" ] && [ "$WANT_COMPUTE" != "$(cat "$D/run/compute-hosts" 2>/dev/null)" ]; then
    cold_start; return
  fi
  if [ -f "$D/run/ready" ] && cmd_status -q; then
    ts "cloudbox already up and healthy ($D)"; return 0
  fi
  if [ -f "$D/run/ready" ] && alive mariadb && alive "ovsdb-server@$GATEWAY" && [ -f "$D/clouds.yaml" ]; then
    # warm repair: resume hung services, restart dead ones
    for n in "${ALL[@]}" epmd; do
      case "$(pstate "$n")" in
        T) echo "  resuming $n"; kill -CONT -- "-$(pidof_svc "$n")" ;;
        -) echo "  restarting $n"; stop_groups "$n"; launch "$n" ;;
      esac
    done
    if wait_healthy 120 "${ALL[@]}"; then ts "cloudbox repaired and healthy"; return 0; fi
    echo "cloudbox: repair failed, cold start"
  fi
  cold_start
}

# -------------------------------------------------------------- fault hooks
need_service() {
  [ -n "${1:-}" ] || die "missing SERVICE (one of: ${ALL[*]})"
  is_service "$1" || die "unknown service '$1' (one of: ${ALL[*]})"
}
cmd_stop() { need_service "${1:-}"; stop_groups "$1"; echo "cloudbox: $1 stopped"; }
cmd_start() {
  need_service "${1:-}"
  local t=$SECONDS
  case "$(pstate "$1")" in
    T) kill -CONT -- "-$(pidof_svc "$1")" ;;
    -) stop_groups "$1"; launch "$1" ;;
  esac
  [ "${CLOUDBOX_NO_WAIT:-}" ] && { echo "cloudbox: $1 launched"; return 0; }
  wait_healthy "${CLOUDBOX_START_TIMEOUT:-120}" "$1" || die "$1 did not become healthy"
  echo "cloudbox: $1 started and healthy in $((SECONDS - t)) s"
}
cmd_hang() {
  need_service "${1:-}"; alive "$1" || die "$1 is not running"
  kill -STOP -- "-$(pidof_svc "$1")"; echo "cloudbox: $1 hung (SIGSTOP to process group $(pidof_svc "$1"))"
}
cmd_resume() {
  need_service "${1:-}"; alive "$1" || die "$1 is not running"
  kill -CONT -- "-$(pidof_svc "$1")"; echo "cloudbox: $1 resumed"
}

# cut|heal HOST: a host's uplink to the tunnel network down / up (its VMs lose every
# other host and the gateway; its daemons keep running)
need_host() {
  [ -n "${1:-}" ] || die "missing HOST (one of: ${CHASSIS[*]})"
  ip netns list | grep -q "^cbh-$1\b" || die "unknown host '$1' (one of: ${CHASSIS[*]})"
}
# external down|up: the host's link to the external network (cbx-ext, the veth into the
# network node's br-ex): floating IPs unreachable from the host, tenant networks untouched
cmd_external() {
  case "${1:-}" in up|down) ip link set cbx-ext "$1"; echo "cloudbox: external network link $1" ;;
    *) die "external up|down" ;; esac
}
cmd_cut() { need_host "${1:-}"; ip -n "cbh-$1" link set uplink down; echo "cloudbox: $1 cut from the tunnel network"; }
cmd_heal() { need_host "${1:-}"; ip -n "cbh-$1" link set uplink up; echo "cloudbox: $1 back on the tunnel network"; }
# underlay-mtu HOST MTU: the MTU of a host's path to the tunnel network (both veth ends
# and br-phy).  Below the 1500 neutron assumes, large packets vanish in the tunnel without
# an error, as on a real underlay misconfigured.
cmd_underlay_mtu() {
  need_host "${1:-}"; [[ "${2:-}" =~ ^[0-9]+$ ]] || die "missing MTU"
  ip link set "cbu-$1" mtu "$2"; ip -n "cbh-$1" link set uplink mtu "$2"
  vsctl "$1" set Interface br-phy mtu_request="$2"
  echo "cloudbox: $1's underlay MTU is $2"
}

# ------------------------------------------------------------------------ main
with_lock() { mkdir -p "$(dirname "$D")"; exec 9>"$D.lock"; flock -w 900 9 || die "lock $D.lock busy"; }
cmd=${1:-help}; shift || true
case "$cmd" in
  install) with_lock; cmd_install "$@" ;;
  up)      [ -x "$V/python" ] || die "no venv at $VENV: run '$0 install' first"; with_lock; cmd_up ;;
  down)    with_lock; cmd_down ;;
  status)  cmd_status ;;
  stop)    with_lock; cmd_stop "$@" ;;
  start)   with_lock; cmd_start "$@" ;;
  hang)    cmd_hang "$@" ;;
  cut)     cmd_cut "$@" ;;
  external) cmd_external "$@" ;;
  heal)    cmd_heal "$@" ;;
  underlay-mtu) cmd_underlay_mtu "$@" ;;
  resume)  cmd_resume "$@" ;;
  horizon-login)
    u=${1:-admin}
    "$V/python" "$HERE/horizon_login.py" "$(cat "$D/horizon_url")" "$u" "$(cat "$D/password")" ;;
  services) printf '%s\n' "${ALL[@]}" ;;
  help|-h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$cmd' (install|up|down|status|stop|start|hang|resume|cut|heal|underlay-mtu|external|horizon-login|services)" ;;
esac
