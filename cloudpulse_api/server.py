"""`cloudpulse-server`: the REST facade and a runner (its periodic checks) in one process,
on waitress; the default, on SQLite.  Deployed apart: the API under uwsgi
(cloudpulse_api.wsgi) and any number of `cloudpulse-runner`s on a shared database.

    cloudpulse-server --config-file /etc/cloudpulse/cloudpulse.conf
"""

import logging
import signal
import sys

import waitress

from cloudpulse_api import app as app_mod
from cloudpulse_api import run_worker
from cloudpulse_api import service as service_mod

LOG = logging.getLogger("cloudpulse.server")


def main(argv=None):
    try:
        conf, service, app = service_mod.start(
            "cloudpulse-server", sys.argv[1:] if argv is None else argv, app_mod.create_app)
    except service_mod.StartFailed as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    # waitress: a production WSGI server in this one process, which also runs the
    # checks (its runner), so no pre-forked workers.
    try:
        server = waitress.create_server(app, host=conf.api.host, port=conf.api.port,
                                        threads=conf.api.threads, ident="cloudpulse")
    except OSError as exc:
        print("cloudpulse-server: [api] host/port: cannot listen on %s:%s: %s"
              % (conf.api.host, conf.api.port, exc.strerror), file=sys.stderr)
        service.coordinator.stop()
        return 2
    worker = run_worker.RunWorker(service, service.coordinator)
    worker.start()
    LOG.info("CloudPulse API on http://%s:%s (auth: %s; check types: %s)", conf.api.host,
             server.effective_port, conf.api.auth_strategy, "; ".join(
                 "%s on %s" % (", ".join(t.value for t in checks.types), name)
                 for name, checks in service.clouds.items()))

    def stopping(signum, frame):
        LOG.info("signal %s: already stopping, runs in flight still finishing", signum)

    def shutdown(signum, frame):
        # Raised in the main thread's serving loop: waitress stops taking requests. A
        # second signal must not cut short the runs being finished and recorded.
        signal.signal(signal.SIGTERM, stopping)
        signal.signal(signal.SIGINT, stopping)
        LOG.info("signal %s: finishing runs in flight, then stopping", signum)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    try:
        server.run()
    finally:
        server.close()
        # The only runner of its queue: what is queued is run before it exits.
        worker.stop(drain=True)
        service.coordinator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
