"""`cloudpulse-server` run for real over the cloud in a box, for the API and CLI tests."""

import os
import signal
import socket
import subprocess
import time

import requests

from tests.integration.conftest import TIMEOUT


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, venv_bin, state, box, periodic="endpoint_interval = -1\n", extra="",
                 cloud=None, clouds_file=None, timeout=TIMEOUT):
        self.venv_bin, self.state, self.box = venv_bin, state, box
        self.port = _free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.conf = state / ("cloudpulse-%d.conf" % self.port)
        self.conf.write_text(
            "[DEFAULT]\nstate_path = %s\n[api]\nport = %d\n"
            "[cloud]\ncloud = %s\nclouds_file = %s\nhorizon_url = %s\ntimeout = %s\n"
            "[periodic]\n%s%s"
            % (state, self.port, cloud or box.admin_cloud, clouds_file or box.clouds_yaml,
               box.horizon_url, timeout,
               periodic, extra))
        self.log = open(state / ("server-%d.log" % self.port), "w")
        self.proc = subprocess.Popen(
            [os.path.join(venv_bin, "cloudpulse-server"), "--config-file", str(self.conf)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(self.url + "/cpulse/types", timeout=1)
                return
            except requests.RequestException:
                assert self.proc.poll() is None, (state / self.log.name).read_text()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()

    def kill(self):
        """SIGKILL to the server and every process it started (Rally's runner forks its
        iterations), as systemd kills a service's control group: nothing of the server's
        own shutdown runs, and no run finishes."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self.log.close()

    def log_text(self):
        return open(self.log.name).read()
