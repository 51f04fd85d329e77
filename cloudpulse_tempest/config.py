"""The [cloudpulse] option group of tempest.conf."""

from oslo_config import cfg

from cloudpulse.checks import endpoint

cloudpulse_group = cfg.OptGroup(name="cloudpulse", title="CloudPulse health checks")

CloudPulseGroup = [
    cfg.ListOpt("endpoint_services", default=list(endpoint.SERVICES),
                help="Services the endpoint tests probe (keystone, glance, nova, "
                     "neutron, cinder, horizon); a test for another one is skipped."),
    cfg.FloatOpt("timeout", default=10.0, min=0.1,
                 help="Seconds before one API call counts as failed."),
    cfg.IntOpt("volume_size", default=1, min=0,
               help="GiB of the functional test's volume (0: no volume step)."),
    cfg.FloatOpt("probe_timeout", default=30.0, min=1,
                 help="Seconds for a comprehensive probe that must pass, and for a "
                      "security group rule change to apply."),
    cfg.StrOpt("horizon_url",
               help="Dashboard URL for the login test; default [dashboard] "
                    "dashboard_url; unset: the horizon test is skipped."),
    cfg.URIOpt("api_url", schemes=["http", "https"],
               help="The CloudPulse API the upgrade test reads its snapshot from "
                    "(http://127.0.0.1:9999); asked with the primary account's token."),
    cfg.StrOpt("upgrade_snapshot",
               help="The handle of the snapshot the upgrade test verifies (POST "
                    "/cpulse/snapshot, cpulse upgrade snapshot); unset: skipped."),
]
