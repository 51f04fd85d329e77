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


def delegate(conn, token, trustor_user_id, project_id, roles):
    """A keystone trust from a caller (their request's token) to the user of `conn`: the
    caller's `roles` in `project_id`, impersonating (what is made is the caller's), as Heat
    and Magnum act for a user later.  Its id; the token is used for this call only."""
    caller = openstack.connection.Connection(
        auth={"auth_url": conn.session.auth.auth_url, "token": token,
              "project_id": project_id},
        auth_type="v3token", region_name=conn.config.region_name,
        interface=conn.config.interface, api_timeout=conn.config.config.get("api_timeout"),
        verify=conn.session.verify, identity_api_version="3")
    return caller.identity.create_trust(
        trustor_user_id=trustor_user_id, trustee_user_id=conn.current_user_id,
        project_id=project_id, roles=[{"name": role} for role in roles],
        is_impersonation=True).id


def on_behalf(conn, trust_id):
    """A connection as the user of `conn` scoped to a trust (delegate): the trustor's
    rights in the trust's project.  Keystone takes a trust with a password (or a token),
    never with an application credential: CloudConfigError otherwise."""
    credentials = password_credentials(conn)
    if credentials is None:
        raise CloudConfigError("acting for a user of another project needs a keystone "
                               "trust, which the server's credentials (auth type %s) cannot "
                               "use: give it a password" % conn.config.auth_type)
    username, password, user_domain_name = credentials
    return openstack.connection.Connection(
        auth={"auth_url": conn.session.auth.auth_url, "username": username,
              "password": password, "user_domain_name": user_domain_name,
              "trust_id": trust_id},
        auth_type="password", region_name=conn.config.region_name,
        interface=conn.config.interface, api_timeout=conn.config.config.get("api_timeout"),
        verify=conn.session.verify, identity_api_version="3")
