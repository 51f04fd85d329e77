# Config files of the cloud box. Sourced by cloudbox.sh; write_configs needs:
#   D (state dir), PW (the box's one password), BOX_HOST (the controller's host name),
#   COMPUTES (compute host names == their OVN chassis names), MYSQL_PORT, RABBIT_PORT,
#   VENV, HERE, HORIZON_SECRET.
# Everything listens on / talks to 127.0.0.1 only.

_authtoken() {  # _authtoken SECTION USER
  cat <<EOF
[$1]
www_authenticate_uri = http://127.0.0.1:5000
auth_url = http://127.0.0.1:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
region_name = RegionOne
username = $2
password = $PW
EOF
}

_policy() {
  cat <<EOF
[oslo_policy]
enforce_new_defaults = false
enforce_scope = false
EOF
}

write_configs() {
  local DB="mysql+pymysql://cloudbox:$PW@127.0.0.1:$MYSQL_PORT"
  local MQ="rabbit://guest:guest@127.0.0.1:$RABBIT_PORT/"
  mkdir -p "$D"/etc/{keystone,glance,neutron/plugins/ml2,placement,nova,cinder,mysql,rabbit} \
           "$D"/horizon/local "$D"/data/{glance/images,glance/staging,glance/tasks,nova/instances,cinder,neutron,locks} \
           "$D"/rabbit/{home,mnesia,log} "$D"/tmp/{neutron,gunicorn}

  # ---------------------------------------------------------------- MariaDB
  cat > "$D/etc/mysql/my.cnf" <<EOF
[mysqld]
datadir=$D/mysql/data
socket=$D/mysql/run/mysqld.sock
pid-file=$D/mysql/run/mysqld.pid
bind-address=127.0.0.1
port=$MYSQL_PORT
user=mysql
log-error=$D/log/mariadb.log
skip-name-resolve
skip-log-bin
innodb_buffer_pool_size=128M
innodb_log_file_size=64M
innodb_flush_log_at_trx_commit=0
innodb_doublewrite=0
sync_binlog=0
max_connections=1000
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
EOF

  # --------------------------------------------------------------- RabbitMQ
  cat > "$D/etc/rabbit/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$RABBIT_PORT
distribution.listener.interface = 127.0.0.1
distribution.listener.port_range.min = $RABBIT_DIST_PORT
distribution.listener.port_range.max = $RABBIT_DIST_PORT
EOF
  echo '[].' > "$D/etc/rabbit/enabled_plugins"
  echo '[].' > "$D/etc/rabbit/advanced.config"
  : > "$D/etc/rabbit/rabbitmq-env.conf"

  # --------------------------------------------------------------- keystone
  cat > "$D/etc/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $D/log/keystone.log
[database]
connection = $DB/keystone
[token]
provider = fernet
[fernet_tokens]
key_repository = $D/etc/keystone/fernet-keys
[fernet_receipts]
key_repository = $D/etc/keystone/fernet-keys
[credential]
key_repository = $D/etc/keystone/credential-keys
[identity]
password_hash_rounds = 4
[oslo_concurrency]
lock_path = $D/data/locks
$(_policy)
EOF

  # ----------------------------------------------------------------- glance
  cat > "$D/etc/glance/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9292
workers = 1
log_file = $D/log/glance-api.log
enabled_backends = file:file
[database]
connection = $DB/glance
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = $D/data/glance/images/
[os_glance_staging_store]
filesystem_store_datadir = $D/data/glance/staging/
[os_glance_tasks_store]
filesystem_store_datadir = $D/data/glance/tasks/
[paste_deploy]
flavor = keystone
config_file = $D/etc/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $D/data/locks
$(_authtoken keystone_authtoken glance)
$(_policy)
EOF
  sed "s#/etc/glance/healthcheck_disable#$D/data/glance/healthcheck_disable#" \
      "$VENV/etc/glance/glance-api-paste.ini" > "$D/etc/glance/glance-api-paste.ini"

  # ---------------------------------------------------------------- neutron
  cat > "$D/etc/neutron/neutron.conf" <<EOF
[DEFAULT]
host = $BOX_HOST
core_plugin = ml2
service_plugins = ovn-router
auth_strategy = keystone
bind_host = 127.0.0.1
bind_port = 9696
api_paste_config = $D/etc/neutron/api-paste.ini
state_path = $D/data/neutron
transport_url = $MQ
api_workers = 1
rpc_workers = 0
rpc_state_report_workers = 0
agent_down_time = 10
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
log_file = $D/log/neutron-api.log
[database]
connection = $DB/neutron
$(_authtoken keystone_authtoken neutron)
$(_authtoken nova nova)
[oslo_concurrency]
lock_path = $D/data/locks
$(_policy)
EOF
  cat > "$D/etc/neutron/plugins/ml2/ml2_conf.ini" <<EOF
[ml2]
mechanism_drivers = ovn
type_drivers = local,flat,vlan,geneve
tenant_network_types = geneve
extension_drivers = port_security
overlay_ip_version = 4
[ml2_type_geneve]
vni_ranges = 1:65536
max_header_size = 38
[ml2_type_flat]
flat_networks = public
[ovn]
ovn_nb_connection = unix:$D/ovn/run/ovnnb_db.sock
ovn_sb_connection = unix:$D/ovn/run/ovnsb_db.sock
ovn_l3_scheduler = leastloaded
ovn_metadata_enabled = false
neutron_sync_mode = off
dns_servers = 198.19.0.1
EOF
  sed "s#/var/lib/neutron/healthcheck_disable#$D/data/neutron/healthcheck_disable#" \
      "$VENV/etc/neutron/api-paste.ini" > "$D/etc/neutron/api-paste.ini"

  # -------------------------------------------------------------- placement
  cat > "$D/etc/placement/placement.conf" <<EOF
[DEFAULT]
log_file = $D/log/placement-api.log
[placement_database]
connection = $DB/placement
[api]
auth_strategy = keystone
$(_authtoken keystone_authtoken placement)
$(_policy)
EOF

  # ------------------------------------------------------------------- nova
  cat > "$D/etc/nova/nova.conf" <<EOF
[DEFAULT]
host = $BOX_HOST
my_ip = 127.0.0.1
# tools/cloudbox/cbvirt.py: instances are network namespaces plugged into OVN
compute_driver = cbvirt.NamespaceDriver
transport_url = $MQ
log_dir = $D/log
state_path = $D/data/nova
instances_path = $D/data/nova/instances
report_interval = 2
service_down_time = 10
# A boot waits for neutron's network-vif-plugged events, as on a real cloud.
vif_plugging_is_fatal = True
vif_plugging_timeout = 60
osapi_compute_listen = 127.0.0.1
metadata_listen = 127.0.0.1
osapi_compute_workers = 1
metadata_workers = 1
[wsgi]
api_paste_config = $D/etc/nova/api-paste.ini
[api]
auth_strategy = keystone
[api_database]
connection = $DB/nova_api
[database]
connection = $DB/nova
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = -1
$(_authtoken keystone_authtoken nova)
$(_authtoken service_user nova)
send_service_user_token = true
$(_authtoken placement placement)
$(_authtoken neutron neutron)
$(_authtoken cinder cinder)
os_region_name = RegionOne
[glance]
region_name = RegionOne
[vnc]
enabled = false
[oslo_concurrency]
lock_path = $D/data/nova/locks
$(_policy)
EOF
  # each compute host: nova.conf, then its own name, state (its compute node uuid lives
  # there), instances and log
  local h
  for h in "${COMPUTES[@]}"; do
    mkdir -p "$D/data/nova/$h" "$D/data/nova/instances/$h"
    cat > "$D/etc/nova/$h.conf" <<EOF
[DEFAULT]
host = $h
state_path = $D/data/nova/$h
instances_path = $D/data/nova/instances/$h
log_file = nova-compute@$h.log
EOF
  done
  printf '%s\n' "${COMPUTES[@]}" > "$D/compute_hosts"
  cp "$VENV/etc/nova/api-paste.ini" "$D/etc/nova/api-paste.ini"
  # nova-api (WSGI) reads nova.conf + api-paste.ini from its own dir: same config, own log
  # file (oslo.log would otherwise name it after the main script: gunicorn.log)
  mkdir -p "$D/etc/nova-api"
  sed "0,/^\[DEFAULT\]\$/s##[DEFAULT]\nlog_file = $D/log/nova-api.log#" "$D/etc/nova/nova.conf" \
      > "$D/etc/nova-api/nova.conf"
  cp "$D/etc/nova/api-paste.ini" "$D/etc/nova-api/api-paste.ini"

  # ----------------------------------------------------------------- cinder
  cat > "$D/etc/cinder/cinder.conf" <<EOF
[DEFAULT]
host = $BOX_HOST
my_ip = 127.0.0.1
osapi_volume_listen = 127.0.0.1
osapi_volume_workers = 1
transport_url = $MQ
auth_strategy = keystone
api_paste_config = $D/etc/cinder/api-paste.ini
state_path = $D/data/cinder
log_dir = $D/log
enabled_backends = fake
report_interval = 2
service_down_time = 10
# the scheduler heartbeats only after the volume service's capabilities arrived or this
# many seconds passed (default 60: a slow cold start showed it "down" for a minute)
scheduler_driver_init_wait_time = 5
[fake]
volume_driver = cinder.tests.fake_driver.FakeLoggingVolumeDriver
volume_backend_name = fake
[database]
connection = $DB/cinder
$(_authtoken keystone_authtoken cinder)
$(_authtoken nova nova)
$(_authtoken service_user cinder)
send_service_user_token = true
[oslo_concurrency]
lock_path = $D/data/cinder/locks
$(_policy)
EOF
  sed "s#/etc/cinder/healthcheck_disable#$D/data/cinder/healthcheck_disable#" \
      "$HERE/etc/cinder-api-paste.ini" > "$D/etc/cinder/api-paste.ini"

  # ---------------------------------------------------------------- horizon
  # A top-level "local" package on PYTHONPATH shadows openstack_dashboard/local
  # (settings.py does `from local.local_settings import *` after appending its
  # own dir to sys.path), so nothing is written into the venv.
  : > "$D/horizon/local/__init__.py"
  cat > "$D/horizon/local/local_settings.py" <<EOF
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
SECRET_KEY = "$HORIZON_SECRET"
OPENSTACK_HOST = "127.0.0.1"
OPENSTACK_KEYSTONE_URL = "http://127.0.0.1:5000/v3"
OPENSTACK_KEYSTONE_DEFAULT_ROLE = "member"
OPENSTACK_KEYSTONE_DEFAULT_DOMAIN = "Default"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
# As deployed (devstack, distro packages): assets collected and compressed once, offline
# (horizon_assets in cloudbox.sh), so the login page is a 9 KB page with a few bundles,
# not 300 KB with 558 script tags rendered on every request.
STATIC_ROOT = "$VENV/horizon-static"
COMPRESS_OFFLINE = True
COMPRESS_ENABLED = True
TIME_ZONE = "UTC"
EOF
}
