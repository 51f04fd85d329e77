"""`cloudpulse-server`: the REST facade with its periodic checks.

    cloudpulse-server --config-file /etc/cloudpulse/cloudpulse.conf
"""

import logging
import signal
import sys
import threading

from werkzeug import serving

from cloudpulse import cloud
from cloudpulse import conf as cp_conf
from cloudpulse import results
from cloudpulse import suites
from cloudpulse_api import app as app_mod
from cloudpulse_api import service as service_mod
from cloudpulse_rally import tasks

LOG = logging.getLogger("cloudpulse.server")


def _setup_logging(debug=False):
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("urllib3", "keystoneauth", "openstack", "stevedore", "werkzeug",
                  "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def build(argv=None):
    """Config -> CheckService -> WSGI app; a bad config raises with a clear message."""
    conf = cp_conf.load(argv)
    service = service_mod.CheckService(conf)
    return conf, service, app_mod.create_app(service)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    _setup_logging("--debug" in argv)
    argv = [a for a in argv if a != "--debug"]
    try:
        conf, service, app = build(argv)
    except (cp_conf.ConfigError, suites.SuiteError, cloud.CloudConfigError,
            tasks.RallyError) as exc:
        print("cloudpulse-server: %s" % exc, file=sys.stderr)
        return 2
    except Exception as exc:
        LOG.debug("start failed", exc_info=True)
        print("cloudpulse-server: cannot start: %s: %s"
              % (type(exc).__name__, results.redact(str(exc))), file=sys.stderr)
        return 1
    service.start_periodic(cp_conf.intervals(conf))
    server = serving.make_server(conf.api.host, conf.api.port, app, threaded=True)
    LOG.info("CloudPulse API on http://%s:%s (check types: %s)", conf.api.host,
             server.server_port, ", ".join(t.value for t in service.types))

    def shutdown(signum, frame):
        LOG.info("signal %s: finishing runs in flight, then stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    try:
        server.serve_forever()
    finally:
        service.stop(wait=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
