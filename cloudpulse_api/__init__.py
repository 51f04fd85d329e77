"""CloudPulse's REST facade (Flask) and the `cpulse` CLI over it."""
