"""The image's entrypoint (tools/container/entrypoint.sh), run on this machine as the
container would run it (no container engine here: docs/container.md): each role starts
what it should from the mounted configuration, over the cloud in a box."""

import os
import subprocess

import requests

from tests.integration import server as server_mod
from tests.integration.server import Process

ENTRYPOINT = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "container",
                          "entrypoint.sh")


def _env(venv_bin, conf=None):
    env = {"CLOUDPULSE_VENV": os.path.dirname(venv_bin)}
    if conf is not None:
        env["CLOUDPULSE_CONFIG_FILE"] = str(conf)
    return env


def _run(args, env):
    return subprocess.run([ENTRYPOINT] + args, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **env))


def test_a_role_without_its_configuration_or_an_unknown_role_is_refused(venv_bin, tmp_path):
    missing = _run(["server"], _env(venv_bin, tmp_path / "nowhere.conf"))
    assert missing.returncode == 2
    assert "no configuration at %s" % (tmp_path / "nowhere.conf") in missing.stderr
    unknown = _run(["scheduler"], _env(venv_bin))
    assert unknown.returncode == 2
    assert "one of: server, api, runner, cpulse" in unknown.stderr


def test_the_api_and_runner_roles_share_the_configured_database(venv_bin, tmp_path, box):
    port = server_mod.free_port()
    conf = server_mod.write_conf(tmp_path / "cloudpulse.conf", tmp_path / "state", box, port)
    env = _env(venv_bin, conf)
    api = Process([ENTRYPOINT, "api"], str(tmp_path / "api.log"),
                  env=dict(env, CLOUDPULSE_API_LISTEN="127.0.0.1:%d" % port,
                           CLOUDPULSE_API_PROCESSES="1"))
    runner = None
    try:
        url = "http://127.0.0.1:%d" % port
        box.wait_for(lambda: requests.get(url + "/cpulse/types", timeout=2).ok, timeout=90,
                     interval=0.3, message="the api role answering: " + api.text())
        handle = requests.post(url + "/cpulse/check", json={"type": "endpoint"},
                               timeout=10).json()["handle"]
        # no runner yet: the run waits in the queue
        assert requests.get(url + "/cpulse/result", params={"handle": handle},
                            timeout=10).json()["state"] == "queued"
        runner = Process([ENTRYPOINT, "runner"], str(tmp_path / "runner.log"), env=env)
        # the runner takes it; the API (no runner of its own) learns it from the database
        finished = requests.get(url + "/cpulse/result", params={"handle": handle, "wait": 60},
                                timeout=90).json()
        assert finished["state"] == "finished", runner.text()
        checked = _run(["cpulse", "--url", url, "check", "endpoint", "--wait"], env)
        assert checked.returncode in (0, 1), checked.stderr + runner.text()
        assert "endpoint.keystone" in checked.stdout
    finally:
        for process in (runner, api):
            if process is not None:
                process.stop()
