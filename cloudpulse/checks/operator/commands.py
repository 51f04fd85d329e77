"""Every command the operator checks run over SSH: fixed strings, nothing interpolated.

A value that has to reach a remote command (a container's name) is written to the
command's stdin and read by `read -r`, so it is never parsed by a shell.
"""

import shlex

LISTENING_TCP = "ss -ltnH"
PROCESSES = "ps -eo pid=,comm=,args="
SYSTEMD_UNITS = "systemctl list-units --type=service --all --no-legend --plain --no-pager"
CONTAINERS = {
    "docker": "docker ps --all --format '{{.Names}}\\t{{.State}}'",
    "podman": "podman ps --all --format '{{.Names}}\\t{{.State}}'",
}

RABBIT_CLUSTER_STATUS_JSON = "rabbitmqctl cluster_status --formatter json"
RABBIT_CLUSTER_STATUS = "rabbitmqctl cluster_status"   # before 3.8: Erlang terms

# Credentials come from the SSH user's client config file (~/.my.cnf), never from here.
# The node's own wsrep_node_name / _address / _incoming_address come with its status: they
# tie the members listed in wsrep_incoming_addresses to the map's nodes.
GALERA_WSREP_STATUS = ("mysql -N -B -e \"SHOW STATUS LIKE 'wsrep%'; "
                       "SHOW VARIABLES LIKE 'wsrep_node%'\"")

# The stats socket at the usual places (Debian/Ubuntu, RHEL, kolla-ansible).
HAPROXY_SHOW_STAT = (
    "for s in /run/haproxy/admin.sock /var/lib/haproxy/stats "
    "/var/lib/kolla/haproxy/haproxy.sock; do if [ -S \"$s\" ]; then "
    "echo 'show stat' | socat stdio \"UNIX-CONNECT:$s\"; exit $?; fi; done; "
    "echo 'no HAProxy stats socket (/run/haproxy/admin.sock, /var/lib/haproxy/stats, "
    "/var/lib/kolla/haproxy/haproxy.sock)' >&2; exit 3")

# An HAProxy backend server probed from the HAProxy node, for a server the checker cannot
# reach: "host:port" comes on stdin; https is tried first, then http; prints
# "<scheme> <HTTP status>".  -k: from the node only reachability and the answer are
# judged; certificate trust is judged by the checker's own probe, with its CA bundle.
HTTP_PROBE_FROM_NODE = (
    'command -v curl >/dev/null || { echo "curl: not installed" >&2; exit 127; }; '
    'read -r hostport && for scheme in https http; do '
    'out=$(curl -sS -k -o /dev/null --max-time 5 -w "%{http_code}" '
    '-- "$scheme://$hostport/" 2>&1) && { echo "$scheme $out"; exit 0; }; done; '
    'echo "$out" >&2; exit 7')

# Pacemaker, newest first: 2.1 XML, older XML, then the text of pcs or crmsh.
CRM_MON_XML = "crm_mon -1 --output-as=xml"
CRM_MON_XML_OLD = "crm_mon -1 -X"
PCS_STATUS = "pcs status"
CRM_STATUS = "crm status"

# oslo.upgradecheck's tools, by the service they judge; --json where the release has it.
UPGRADE_CHECK = {service: "%s-status upgrade check" % service
                 for service in ("nova", "cinder", "neutron", "placement", "keystone",
                                 "glance")}
UPGRADE_CHECK_JSON = {service: command + " --json"
                      for service, command in UPGRADE_CHECK.items()}
# The release of a service's code on a node: the version of its Python distribution as
# the interpreter of its status tool sees it (a distribution's package, a virtualenv and
# a container's venv alike: the tool's #! line names the interpreter).
DISTRIBUTIONS = {"nova": "nova", "cinder": "cinder", "neutron": "neutron",
                 "placement": "openstack-placement", "keystone": "keystone",
                 "glance": "glance"}
CODE_VERSION = {
    service: ("""exec $(sed -n '1s/^#!//p' "$(readlink -f "$(command -v %s)")") -c """
              """"import importlib.metadata as m; print(m.version('%s'))\""""
              % (UPGRADE_CHECK[service].split()[0], DISTRIBUTIONS[service]))
    for service in UPGRADE_CHECK}

FIXED = frozenset([LISTENING_TCP, PROCESSES, SYSTEMD_UNITS, RABBIT_CLUSTER_STATUS_JSON,
                   RABBIT_CLUSTER_STATUS, GALERA_WSREP_STATUS, HAPROXY_SHOW_STAT, CRM_MON_XML,
                   CRM_MON_XML_OLD, PCS_STATUS, CRM_STATUS, HTTP_PROBE_FROM_NODE,
                   *CONTAINERS.values(), *UPGRADE_CHECK.values(),
                   *UPGRADE_CHECK_JSON.values(), *CODE_VERSION.values()])

# The fixed command runs under the container's own sh -c, so a compound one (the HAProxy
# socket loop) is parsed inside the container, not by the outer shell.
_IN_CONTAINER = {
    "docker": 'read -r container && exec docker exec "$container" sh -c %s',
    "podman": 'read -r container && exec podman exec "$container" sh -c %s',
}

COMMAND_NOT_FOUND = 127


def in_container(runtime, command):
    """(command, stdin) running one of the fixed commands inside a container."""
    if command not in FIXED:
        raise ValueError("not one of the fixed operator commands: %r" % command)
    return _IN_CONTAINER[runtime] % shlex.quote(command)
