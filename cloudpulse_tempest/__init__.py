"""CloudPulse's Tempest plugin: the endpoint checks as Tempest tests (`tempest run
--regex cloudpulse_tempest`), found through the `tempest.test_plugins` entry point."""
