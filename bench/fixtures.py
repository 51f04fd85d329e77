"""What the benchmarks set up on the box: a CloudPulse server, and a Rally of their own
(a database in the bench's temporary directory and an environment for the box's admin,
existing users, as an operator would set one up)."""

import json
import os
import subprocess
import sys
import time

import openstack.config
import requests

from cloudpulse_rally import tasks

BIN = os.path.dirname(sys.executable)


def rally_for(box, state):
    """The `rally` command line (a list) bound to a new database and environment."""
    rally_dir = os.path.join(state, "rally")
    os.makedirs(rally_dir)
    rally_conf = os.path.join(rally_dir, "rally.conf")
    with open(rally_conf, "w") as f:
        f.write("[database]\nconnection = sqlite:///%s/rally.sqlite\n" % rally_dir)
    rally = [os.path.join(BIN, "rally"), "--config-file", rally_conf]
    subprocess.run(rally + ["db", "create"], check=True, stdout=subprocess.DEVNULL)
    region = openstack.config.OpenStackConfig(
        config_files=[box.clouds_yaml]).get_one(cloud=box.admin_cloud)
    spec = os.path.join(rally_dir, "spec.json")
    with open(spec, "w") as f:
        json.dump(tasks.env_spec(region, is_admin=True), f)
    subprocess.run(rally + ["env", "create", "--name", "bench", "--spec", spec], check=True,
                   stdout=subprocess.DEVNULL)
    return rally, rally_dir


def start_server(box, state, port, extra_conf=""):
    """A warm cloudpulse-server on the box's admin (no periodic runs): (process, URL)."""
    conf = os.path.join(state, "cloudpulse-%d.conf" % port)
    with open(conf, "w") as f:
        # noauth: the figures are the API's own, without a token's validation
        f.write("[DEFAULT]\nstate_path = %s\n[api]\nport = %d\nauth_strategy = noauth\n"
                "[cloud]\ncloud = %s\n"
                "clouds_file = %s\ntimeout = 10\n[periodic]\nendpoint_interval = -1\n%s"
                % (state, port, box.admin_cloud, box.clouds_yaml, extra_conf))
    proc = subprocess.Popen([os.path.join(BIN, "cloudpulse-server"), "--config-file", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = "http://127.0.0.1:%d" % port
    for _ in range(300):
        try:
            requests.get(url + "/cpulse/types", timeout=1)
            return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("server did not start")
