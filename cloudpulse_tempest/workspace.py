"""`cloudpulse-tempest-init`: a Tempest workspace for CloudPulse's tests, from clouds.yaml.

    cloudpulse-tempest-init --cloud mycloud [--horizon-url URL] ./tempest-ws
    cd ./tempest-ws && tempest run --regex cloudpulse_tempest

The workspace uses the cloud's existing user (pre-provisioned accounts file, no
dynamic credentials): the endpoint tests create nothing on the cloud.  With --image-file
and --flavor, the data-plane tests run too (as the user: the comprehensive test's parts
that need admin run when the user has the admin role); they remove what they create.
"""

import argparse
import configparser
import os
import subprocess
import sys

from keystoneauth1 import exceptions as ksa_exc
import openstack.config
import openstack.exceptions
import yaml


def tempest_conf(region, accounts_file, horizon_url=None, timeout=10.0, log_file=None,
                 data_plane=None, lock_path=None):
    """tempest.conf contents (a ConfigParser) for an openstacksdk CloudRegion.
    data_plane: {"image_file", "flavor", "external_network", "ssh_user", "disk_format",
    "boot_timeout", "ping_timeout", "probe_timeout"} for the data-plane tests."""
    auth = region.config["auth"]
    catalog_types = {"image": "glance", "compute": "nova", "network": "neutron",
                     "volumev3": "cinder"}
    conf = configparser.ConfigParser(interpolation=None)
    conf["DEFAULT"] = {"log_file": log_file or "tempest.log", "debug": "false"}
    if lock_path:
        # The workspace's own, as `tempest init` writes it: in the shared default
        # (/tmp/tempest-lock) a run killed mid-test leaves its accounts locked for every
        # later workspace ("Insufficient number of users provided").
        conf["oslo_concurrency"] = {"lock_path": lock_path}
    conf["auth"] = {"use_dynamic_credentials": "false",
                    "test_accounts_file": accounts_file,
                    "default_credentials_domain_name": auth.get("user_domain_name", "Default"),
                    "create_isolated_networks": "false"}
    conf["identity"] = {"uri_v3": auth["auth_url"], "auth_version": "v3",
                        "region": region.get_region_name() or "RegionOne",
                        "v3_endpoint_type": region.get_interface() or "public",
                        "disable_ssl_certificate_validation":
                            str(not region.config.get("verify", True)).lower()}
    if region.config.get("cacert"):
        conf["identity"]["ca_certificates_file"] = region.config["cacert"]
    conf["identity-feature-enabled"] = {"api_v2": "false", "api_v3": "true"}
    conf["service_available"] = {name: "true" for name in catalog_types.values()}
    conf["service_available"]["horizon"] = str(bool(horizon_url)).lower()
    conf["validation"] = {"run_validation": "false"}
    conf["cloudpulse"] = {"timeout": str(timeout)}
    if horizon_url:
        conf["dashboard"] = {"dashboard_url": horizon_url,
                             "login_url": horizon_url.rstrip("/") + "/auth/login/"}
        conf["cloudpulse"]["horizon_url"] = horizon_url
    if data_plane:
        conf["scenario"] = {"img_file": data_plane["image_file"],
                            "img_disk_format": data_plane.get("disk_format") or "qcow2"}
        conf["compute"] = {"flavor_ref": data_plane["flavor"],
                           "build_timeout": str(int(data_plane.get("boot_timeout") or 300))}
        conf["validation"]["image_ssh_user"] = data_plane.get("ssh_user") or "cirros"
        conf["validation"]["ping_timeout"] = str(int(data_plane.get("ping_timeout") or 120))
        if data_plane.get("external_network"):
            conf["network"] = {"floating_network_name": data_plane["external_network"]}
        if data_plane.get("probe_timeout"):
            conf["cloudpulse"]["probe_timeout"] = str(data_plane["probe_timeout"])
    else:
        conf["scenario"] = {"img_file": ""}
    return conf


def accounts(region, roles):
    auth = region.config["auth"]
    return [{"username": auth["username"], "password": auth["password"],
             "project_name": auth.get("project_name"),
             "domain_name": auth.get("user_domain_name", "Default"),
             "roles": sorted(roles)}]


def token_roles(region):
    """The user's roles as keystone grants them (implied ones included), for Tempest's
    pre-provisioned account allocation.  The tests run as 'primary' (a member); Tempest
    never hands an account listed with the admin role to primary, so 'admin' is left out
    of the list: the checks still run with the user's real rights (and, for an admin,
    read service states)."""
    session = region.get_session()
    return [r for r in session.auth.get_access(session).role_names if r != "admin"]


def init_workspace(directory, cloud=None, clouds_file=None, horizon_url=None, timeout=10.0,
                   data_plane=None):
    """Create (or refresh) the workspace; returns the tempest.conf path."""
    region = openstack.config.OpenStackConfig(
        config_files=[clouds_file] if clouds_file else None).get_one(cloud=cloud)
    directory = os.path.abspath(directory)
    etc = os.path.join(directory, "etc")
    if not os.path.exists(os.path.join(directory, ".stestr.conf")):
        tempest = os.path.join(os.path.dirname(sys.executable), "tempest")
        # A registry of its own: ~/.tempest/workspace.yaml would refuse a name twice.
        subprocess.run([tempest, "init", "--workspace-path",
                        os.path.join(directory, ".workspace.yaml"), directory], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.makedirs(etc, exist_ok=True)
    accounts_file = os.path.join(etc, "accounts.yaml")
    # Both files hold the password: readable by the owner only.
    fd = os.open(accounts_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(accounts(region, token_roles(region)), f)
    conf_path = os.path.join(etc, "tempest.conf")
    fd = os.open(conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        tempest_conf(region, accounts_file, horizon_url, timeout,
                     os.path.join(directory, "tempest.log"), data_plane,
                     lock_path=os.path.join(directory, "tempest_lock")).write(f)
    return conf_path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cloudpulse-tempest-init",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("directory")
    parser.add_argument("--cloud", help="clouds.yaml entry (default: OS_* variables)")
    parser.add_argument("--clouds-file", help="clouds.yaml path")
    parser.add_argument("--horizon-url", help="dashboard URL for the login test")
    parser.add_argument("--timeout", type=float, default=10.0)
    data = parser.add_argument_group("data-plane tests (functional, comprehensive)")
    data.add_argument("--image-file", help="a small image to upload and boot")
    data.add_argument("--flavor", help="flavor name or id of the VMs")
    data.add_argument("--external-network", help="network for routers and floating IPs")
    data.add_argument("--ssh-user", help="the image's login user")
    data.add_argument("--disk-format", help="the image file's disk format (qcow2)")
    data.add_argument("--boot-timeout", type=float)
    data.add_argument("--ping-timeout", type=float)
    data.add_argument("--probe-timeout", type=float)
    args = parser.parse_args(argv)
    if bool(args.image_file) != bool(args.flavor):
        parser.error("--image-file and --flavor go together")
    if args.image_file and not os.path.isfile(args.image_file):
        parser.error("--image-file: %s is not a file" % args.image_file)
    data_plane = {k: getattr(args, k) for k in (
        "image_file", "flavor", "external_network", "ssh_user", "disk_format",
        "boot_timeout", "ping_timeout", "probe_timeout")} if args.image_file else None
    try:
        path = init_workspace(args.directory, args.cloud, args.clouds_file,
                              args.horizon_url, args.timeout, data_plane)
    except (openstack.exceptions.ConfigException, ksa_exc.ClientException, KeyError,
            OSError, subprocess.CalledProcessError) as exc:
        print("cloudpulse-tempest-init: %s" % exc, file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
