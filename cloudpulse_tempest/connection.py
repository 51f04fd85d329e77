"""An openstacksdk connection for a Tempest account, as tempest.conf configures it: every
CloudPulse Tempest test runs the shared check code through one."""

from tempest import config

from cloudpulse import cloud

CONF = config.CONF


def connect(credentials):
    """A connection as `credentials` (a client manager's), with [cloudpulse] timeout."""
    auth = cloud.password_auth(CONF.identity.uri_v3, credentials.username,
                               credentials.password, credentials.project_name,
                               credentials.user_domain_name, credentials.project_domain_name)
    return cloud.connect_with_auth(
        auth, region_name=CONF.identity.region or None,
        interface=CONF.identity.v3_endpoint_type or "public",
        timeout=CONF.cloudpulse.timeout,
        verify=CONF.identity.ca_certificates_file or
        not CONF.identity.disable_ssl_certificate_validation)
