#!/bin/bash
# Start CloudPulse against the cloud in a box and print a health result:
#   tools/start.sh          install, start the box and the server, run `cpulse check all --wait`
#                           (endpoint and functional: the box's instances carry real packets)
#   tools/start.sh stop     stop the server and the box
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BOX=${CLOUDBOX_DIR:-/tmp/cpulse-box}
STATE=$BOX/cloudpulse
if [ "${1:-}" = stop ]; then
  [ -f "$STATE/server.pid" ] && kill "$(cat "$STATE/server.pid")" 2>/dev/null || true
  rm -f "$STATE/server.pid"
  bash "$top/tools/cloudbox/cloudbox.sh" down
  exit 0
fi
bash "$top/tools/install-system-packages.sh"
bash "$top/tools/cloudbox/cloudbox.sh" install
VENV=$(bash "$top/tools/venv.sh")
bash "$top/tools/cloudbox/cloudbox.sh" up
mkdir -p "$STATE"
# The box's instances are namespaces: any small file serves as the functional check's image.
[ -s "$STATE/image.raw" ] || head -c 4096 /dev/zero > "$STATE/image.raw"
cat > "$STATE/cloudpulse.conf" <<CONF
[DEFAULT]
state_path = $STATE
[api]
host = 127.0.0.1
port = 9999
# no tokens on this machine's own box; a real cloud: keystone (docs/access.md)
auth_strategy = noauth
[cloud]
cloud = cloudbox-admin
clouds_file = $BOX/clouds.yaml
horizon_url = $(cat "$BOX/horizon_url")
timeout = 5
[functional]
image_file = $STATE/image.raw
image_disk_format = raw
flavor = cbx.tiny
external_network = public
ssh_user = root
boot_timeout = 60
ping_timeout = 30
[comprehensive]
probe_timeout = 10
[periodic]
endpoint_interval = 5m
CONF
if ! [ -f "$STATE/server.pid" ] || ! kill -0 "$(cat "$STATE/server.pid")" 2>/dev/null; then
  nohup "$VENV/bin/cloudpulse-server" --config-file "$STATE/cloudpulse.conf" \
      > "$STATE/server.log" 2>&1 &
  echo $! > "$STATE/server.pid"
fi
for _ in $(seq 1 100); do
  curl -sf -o /dev/null http://127.0.0.1:9999/cpulse/types && break
  kill -0 "$(cat "$STATE/server.pid")" 2>/dev/null || { cat "$STATE/server.log"; exit 1; }
  sleep 0.3
done
echo "CloudPulse API on http://127.0.0.1:9999 (log: $STATE/server.log); stop: tools/start.sh stop"
CPULSE_URL=http://127.0.0.1:9999 "$VENV/bin/cpulse" check all --wait
