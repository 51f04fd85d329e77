"""Keystone content of the cloud box: projects, users, roles, services, endpoints.

Run with the cloud venv's python after `keystone-manage bootstrap`.
Password comes from CLOUDBOX_PASSWORD (one generated secret per box).
Idempotent (find-or-create).
"""
import os

import openstack

PW = os.environ["CLOUDBOX_PASSWORD"]
KS = os.environ.get("CLOUDBOX_KEYSTONE", "http://127.0.0.1:5000/v3")
REGION = "RegionOne"

c = openstack.connect(auth_url=KS, username="admin", password=PW, project_name="admin",
                      user_domain_name="Default", project_domain_name="Default",
                      region_name=REGION, identity_api_version="3")
idc = c.identity


def project(name):
    return idc.find_project(name, domain_id="default") or idc.create_project(
        name=name, domain_id="default")


def user(name):
    return idc.find_user(name, domain_id="default") or idc.create_user(
        name=name, password=PW, domain_id="default")


roles = {r.name: r for r in idc.roles()}
for rn in ("admin", "member", "reader", "service"):
    if rn not in roles:
        roles[rn] = idc.create_role(name=rn)

service_project = project("service")
demo_project = project("demo")
idc.assign_project_role_to_user(demo_project, user("demo"), roles["member"])

for u in ("glance", "neutron", "nova", "placement", "cinder"):
    usr = user(u)
    idc.assign_project_role_to_user(service_project, usr, roles["admin"])
    idc.assign_project_role_to_user(service_project, usr, roles["service"])

existing = {s.name: s for s in idc.services()}
for name, typ, url in [
        ("glance", "image", "http://127.0.0.1:9292"),
        ("neutron", "network", "http://127.0.0.1:9696"),
        ("placement", "placement", "http://127.0.0.1:8778"),
        ("nova", "compute", "http://127.0.0.1:8774/v2.1"),
        ("cinderv3", "volumev3", "http://127.0.0.1:8776/v3/$(project_id)s"),
        ("cinder", "block-storage", "http://127.0.0.1:8776/v3/$(project_id)s")]:
    if name in existing:
        continue
    s = idc.create_service(name=name, type=typ)
    for iface in ("public", "internal", "admin"):
        idc.create_endpoint(service_id=s.id, interface=iface, url=url, region_id=REGION)
print("keystone setup done")
