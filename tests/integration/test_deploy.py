"""The deployment cloudpulse-install writes, run for real: Debian's nginx with the site it
wrote (TLS, a self-signed pair made with openssl), uwsgi from PyPI with its ini, and a
runner started as its systemd unit says, on a PostgreSQL; `cpulse` checks the cloud in a
box through them."""

import json
import os
import shlex
import subprocess
import sys
import time

import requests

from tests.integration import server as server_mod

NGINX = "/usr/sbin/nginx"


def self_signed_pair(directory):
    """(cert, key) for 127.0.0.1; the certificate is its own CA."""
    cert, key = directory / "tls.pem", directory / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def nginx_main_conf(directory, prefix):
    """What /etc/nginx/nginx.conf is on a Debian host, reduced: logs, pid and temporary
    files in `directory`, and the conf.d/ the installer wrote into."""
    conf = directory / "nginx.conf"
    conf.write_text(
        "daemon off;\npid %(d)s/nginx.pid;\nerror_log %(d)s/nginx-error.log;\n"
        # root's workers: the test's directories are root's own (0700)
        "user root;\nworker_processes 1;\nevents { worker_connections 64; }\n"
        "http {\n  access_log %(d)s/nginx-access.log;\n"
        "  client_body_temp_path %(d)s/body;\n  proxy_temp_path %(d)s/proxy;\n"
        "  fastcgi_temp_path %(d)s/fastcgi;\n  uwsgi_temp_path %(d)s/uwsgi;\n"
        "  scgi_temp_path %(d)s/scgi;\n  include %(p)s/etc/nginx/conf.d/*.conf;\n}\n"
        % {"d": directory, "p": prefix})
    return conf


def unit_command(unit_file):
    """(argv, environment) of a systemd unit's ExecStart= and Environment= lines."""
    argv, env = None, {}
    for line in unit_file.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "ExecStart":
            argv = shlex.split(value)
        elif key == "Environment":
            name, _, setting = value.partition("=")
            env[name] = setting
    return argv, env


def install(prefix, argv, env):
    return subprocess.run([sys.executable, "-m", "cloudpulse_api.install", "--prefix",
                           str(prefix), *argv], capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=60)


def test_cpulse_checks_the_cloud_through_nginx_and_uwsgi_as_installed(
        venv_bin, tmp_path, box, database):
    prefix, logs = tmp_path / "root", tmp_path / "logs"
    logs.mkdir()
    cert, key = self_signed_pair(tmp_path)
    port, uwsgi_port = server_mod.free_port(), server_mod.free_port()
    argv = ["--listen", "127.0.0.1:%d" % port, "--tls-cert", str(cert), "--tls-key",
            str(key), "--uwsgi-socket", "127.0.0.1:%d" % uwsgi_port, "--auth", "noauth",
            "--venv", os.path.dirname(venv_bin), "--cloud", box.admin_cloud,
            "--clouds-file", str(box.clouds_yaml), "--database-env", "CPULSE_TEST_DB",
            "--set", "cloud.horizon_url=%s" % box.horizon_url,
            "--set", "cloud.timeout=3", "--set", "periodic.endpoint_interval=-1"]
    env = {"CPULSE_TEST_DB": database.url}
    first = install(prefix, argv, env)
    assert first.returncode == 0, first.stderr
    assert database.password not in first.stdout + first.stderr
    again = install(prefix, argv, env)
    assert (again.returncode, again.stdout) == (
        0, "nothing changed: the installation under %s is as asked\n" % prefix)

    main_conf = nginx_main_conf(logs, prefix)
    checked = subprocess.run([NGINX, "-t", "-c", str(main_conf)], capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stderr
    processes = []
    try:
        processes.append(server_mod.Process([NGINX, "-c", str(main_conf)],
                                            str(logs / "nginx.out")))
        for unit in ("cloudpulse-api.service", "cloudpulse-runner.service"):
            command, unit_env = unit_command(prefix / "etc/systemd/system" / unit)
            processes.append(server_mod.Process(command, str(logs / (unit + ".log")),
                                                env=unit_env))
        url = "https://127.0.0.1:%d" % port
        deadline = time.monotonic() + 90
        while True:
            try:
                # /cpulse/openapi.json: this tree's code serves it (PYTHONPATH reached uwsgi)
                if requests.get(url + "/cpulse/openapi.json", verify=str(cert),
                                timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            for process in processes:
                assert process.proc.poll() is None, process.text()
            assert time.monotonic() < deadline, processes[1].text()
            time.sleep(0.3)

        cpulse = [os.path.join(venv_bin, "cpulse"), "--url", url]
        untrusted = subprocess.run(cpulse + ["results"], capture_output=True, text=True,
                                   env=dict(os.environ, REQUESTS_CA_BUNDLE=""), timeout=60)
        assert untrusted.returncode == 2 and "SSLError" in untrusted.stderr
        checked = subprocess.run(cpulse + ["--os-cacert", str(cert), "check", "endpoint",
                                           "--wait", "--timeout", "120", "-f", "json"],
                                 capture_output=True, text=True, timeout=180)
        assert checked.returncode in (0, 1), checked.stderr
        run = json.loads(checked.stdout)
        assert run["state"] == "finished" and run["check_types"] == ["endpoint"]
        assert {r["check_type"] for r in run["results"]} == {"endpoint"}
        assert run["handle"] in processes[2].text()   # the runner executed it
        # an ended run: nginx answers the same caller from its cache after the first GET
        answers = [requests.get(url + "/cpulse/result", params={"handle": run["handle"]},
                                verify=str(cert), timeout=10) for _ in range(2)]
        assert [a.headers.get("X-Cache-Status") for a in answers][-1] == "HIT", [
            a.headers for a in answers]
        assert answers[0].json() == answers[1].json()
        assert "X-Accel-Expires" not in answers[0].headers   # nginx's own, not passed on
        # Prometheus' default metrics_path reaches the API, fresh at every scrape
        scrapes = [requests.get(url + "/metrics", verify=str(cert), timeout=10)
                   for _ in range(2)]
        assert [a.status_code for a in scrapes] == [200, 200]
        assert "cloudpulse_check_up{" in scrapes[1].text
        assert "X-Cache-Status" not in scrapes[1].headers
        # nginx's own refusals read as the API's errors
        missing = requests.get(url + "/elsewhere", verify=str(cert), timeout=5)
        assert missing.status_code == 404 and set(missing.json()) == {"error", "message"}
    finally:
        for process in reversed(processes):
            process.stop()
