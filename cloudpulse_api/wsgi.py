"""The API alone, as a WSGI application for uwsgi (or any WSGI server), any number of
processes: runs are queued in the database and executed by `cloudpulse-runner`s.

    uwsgi --http-socket 127.0.0.1:9999 --processes 2 --threads 8 \\
          --eval 'from cloudpulse_api import wsgi; application = wsgi.init_application()'

The configuration: $CLOUDPULSE_CONFIG_FILE, else /etc/cloudpulse/cloudpulse.conf (oslo.config's
usual search).
"""

import os

from cloudpulse_api import app as app_mod
from cloudpulse_api import service as service_mod


def init_application(config_file=None):
    """The WSGI application; a bad configuration raises StartFailed with a clear message
    (uwsgi logs it and refuses to start the worker)."""
    config_file = config_file or os.environ.get("CLOUDPULSE_CONFIG_FILE")
    argv = ["--config-file", config_file] if config_file else []
    if os.environ.get("CLOUDPULSE_DEBUG") == "1":
        argv.append("--debug")
    return service_mod.start("cloudpulse-api", argv, app_mod.create_app)[2]
