#!/bin/sh
# The CloudPulse image's entrypoint: one image, a role per container.
#   server            API and runner in one process (SQLite by default)   [default]
#   api               the API under uwsgi ($CLOUDPULSE_API_PROCESSES processes)
#   runner            a cloudpulse-runner (several: a shared database, docs/architecture.md)
#   cpulse ARGS...    the CLI
# The configuration is mounted at $CLOUDPULSE_CONFIG_FILE (/etc/cloudpulse/cloudpulse.conf).
set -eu
VENV=${CLOUDPULSE_VENV:-/opt/cloudpulse}
CONF=${CLOUDPULSE_CONFIG_FILE:-/etc/cloudpulse/cloudpulse.conf}
export CLOUDPULSE_CONFIG_FILE="$CONF"
role=${1:-server}
[ $# -gt 0 ] && shift

need_conf() {
  if [ ! -r "$CONF" ]; then
    echo "cloudpulse-entrypoint: $role: no configuration at $CONF (mount one there, or set" \
         "CLOUDPULSE_CONFIG_FILE; every option: /usr/share/cloudpulse/cloudpulse.conf.sample)" >&2
    exit 2
  fi
}

case "$role" in
  server)
    need_conf
    exec "$VENV/bin/cloudpulse-server" --config-file "$CONF" "$@" ;;
  runner)
    need_conf
    exec "$VENV/bin/cloudpulse-runner" --config-file "$CONF" "$@" ;;
  api)
    need_conf
    exec "$VENV/bin/uwsgi" --http-socket "${CLOUDPULSE_API_LISTEN:-0.0.0.0:9999}" \
      --processes "${CLOUDPULSE_API_PROCESSES:-2}" --threads 8 --master --die-on-term \
      --need-app --lazy-apps --home "$VENV" \
      --eval 'from cloudpulse_api import wsgi; application = wsgi.init_application()' "$@" ;;
  cpulse)
    exec "$VENV/bin/cpulse" "$@" ;;
  *)
    echo "cloudpulse-entrypoint: unknown role '$role'; one of: server, api, runner, cpulse" >&2
    exit 2 ;;
esac
