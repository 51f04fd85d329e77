"""Connections to the cloud under check, the way every OpenStack client makes them.

Credentials come from clouds.yaml / OS_* (openstacksdk's loader), from a Rally
credential, or from Tempest's: whichever front end runs a check, the probes get an
`openstack.connection.Connection` whose HTTP calls time out after `timeout` seconds.
"""

import openstack
import openstack.config


class CloudConfigError(Exception):
    """The cloud named in the configuration cannot be loaded."""


def connect(cloud=None, clouds_file=None, timeout=10.0, region_name=None):
    """Connection for a clouds.yaml entry (or OS_* variables when cloud is None)."""
    try:
        config = openstack.config.OpenStackConfig(
            config_files=[clouds_file] if clouds_file else None)
        region = config.get_one(cloud=cloud, region_name=region_name,
                                api_timeout=timeout)
    except Exception as exc:  # openstacksdk raises several unrelated types here
        where = "clouds file %s" % clouds_file if clouds_file else "clouds.yaml/OS_* variables"
        raise CloudConfigError("cannot load cloud %r from %s: %s"
                               % (cloud, where, exc)) from None
    return openstack.connection.Connection(config=region)


def password_auth(auth_url, username, password, project_name, user_domain_name=None,
                  project_domain_name=None):
    """Keystone v3 password auth arguments, the one shape every front end hands over
    (Rally's credential, Tempest's, clouds.yaml's): domains default to "Default"."""
    return {"auth_url": auth_url, "username": username, "password": password,
            "project_name": project_name,
            "user_domain_name": user_domain_name or "Default",
            "project_domain_name": project_domain_name or "Default"}


def connect_with_auth(auth, region_name=None, interface="public", timeout=10.0,
                      verify=True):
    """Connection from explicit password credentials (Rally and Tempest front ends)."""
    return openstack.connection.Connection(
        auth=dict(auth), auth_type="password", region_name=region_name,
        interface=interface, api_timeout=timeout, verify=verify,
        identity_api_version="3")   # cloud=None: no clouds.yaml nor OS_* read here


def password_credentials(conn):
    """(username, password, user_domain_name) of a connection, or None for non-password auth."""
    auth = conn.config.config.get("auth", {}) or {}
    if not auth.get("username") or not auth.get("password"):
        return None
    return (auth["username"], auth["password"],
            auth.get("user_domain_name") or auth.get("domain_name") or "Default")
