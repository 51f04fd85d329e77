"""CloudPulse's Rally plugins (scenarios, validators), found by Rally through the
`rally_plugins` entry point: `rally plugin list --name CloudPulse` shows them."""
