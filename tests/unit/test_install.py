"""cloudpulse-install into a temporary prefix: what it writes, with which modes; a second
run changes nothing; a file changed since it wrote it is refused, named, unless --force."""

import io
import os
import stat

import pytest

from cloudpulse_api import install

CONF = "etc/cloudpulse/cloudpulse.conf"


def _run(prefix, *argv):
    out = io.StringIO()
    args = install.build_parser().parse_args(
        ["--prefix", str(prefix), "--auth", "noauth", "--listen", "127.0.0.1:8443",
         *argv])
    changes = install.install(args, out=out)
    return changes, out.getvalue()


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def tls_pair(tmp_path):
    cert, key = tmp_path / "tls.pem", tmp_path / "tls.key"
    cert.write_text("cert")
    key.write_text("key")
    return ["--tls-cert", str(cert), "--tls-key", str(key)]


def test_it_writes_the_uwsgi_nginx_systemd_and_cloudpulse_files(tmp_path, tls_pair):
    prefix = tmp_path / "root"
    changes, out = _run(prefix, *tls_pair, "--cloud", "mycloud")
    written = {os.path.relpath(path, prefix) for action, path in changes
               if action == "created"}
    assert {CONF, "etc/cloudpulse/policy.yaml", "etc/cloudpulse/uwsgi.ini",
            install.NGINX_SITE, "etc/systemd/system/cloudpulse-api.service",
            "etc/systemd/system/cloudpulse-runner.service"} <= written
    assert _mode(prefix / CONF) == 0o640
    assert _mode(prefix / "etc/cloudpulse") == 0o750
    assert _mode(prefix / "var/lib/cloudpulse") == 0o700
    conf = (prefix / CONF).read_text()
    assert "policy_file = %s/etc/cloudpulse/policy.yaml" % prefix in conf
    assert "cloud = mycloud" in conf
    ini = (prefix / "etc/cloudpulse/uwsgi.ini").read_text()
    assert "eval = " + install.WSGI_EVAL in ini
    assert "env = CLOUDPULSE_CONFIG_FILE=%s/%s" % (prefix, CONF) in ini
    site = (prefix / install.NGINX_SITE).read_text()
    assert "listen 127.0.0.1:8443 ssl;" in site and "ssl_certificate_key" in site
    runner = (prefix / "etc/systemd/system/cloudpulse-runner.service").read_text()
    assert "cloudpulse-runner --config-file %s/%s" % (prefix, CONF) in runner
    assert "not started (--enable starts them)" in out


def test_without_tls_nginx_listens_in_plain_http(tmp_path):
    _run(tmp_path)
    site = (tmp_path / install.NGINX_SITE).read_text()
    assert "listen 127.0.0.1:8443;" in site and "ssl" not in site


def test_a_second_run_with_the_same_arguments_changes_nothing(tmp_path, tls_pair):
    _run(tmp_path, *tls_pair)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    changes, out = _run(tmp_path, *tls_pair)
    assert changes == [] and out.startswith("nothing changed")
    assert before == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}


def test_new_arguments_update_the_files_it_wrote(tmp_path):
    _run(tmp_path)
    changes, _ = _run(tmp_path, "--processes", "4")
    assert changes == [("updated", str(tmp_path / "etc/cloudpulse/uwsgi.ini"))]


def test_a_file_changed_since_it_wrote_it_is_refused_unless_force(tmp_path):
    _run(tmp_path)
    conf = tmp_path / CONF
    conf.write_text(conf.read_text() + "[functional]\nflavor = m1.tiny\n")
    with pytest.raises(install.InstallError, match=str(conf)) as refused:
        _run(tmp_path, "--processes", "4")
    assert "--force" in str(refused.value)
    # refused before anything was written
    assert "processes = 2" in (tmp_path / "etc/cloudpulse/uwsgi.ini").read_text()
    # unchanged arguments touch nothing, not even the changed file
    with pytest.raises(install.InstallError):
        _run(tmp_path)
    changes, _ = _run(tmp_path, "--processes", "4", "--force")
    assert ("updated", str(conf)) in changes and "flavor" not in conf.read_text()


def test_a_file_it_did_not_write_is_refused(tmp_path):
    (tmp_path / "etc/nginx/conf.d").mkdir(parents=True)
    (tmp_path / install.NGINX_SITE).write_text("server {}\n")
    with pytest.raises(install.InstallError, match=install.NGINX_SITE):
        _run(tmp_path)


def test_a_secret_comes_from_the_environment_and_is_never_printed(tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.setenv("CPULSE_DB", "postgresql://cp:s3cret@db.example.com/cp")
    monkeypatch.setenv("CPULSE_KS_PASSWORD", "ks-s3cret")
    _, out = _run(tmp_path, "--database-env", "CPULSE_DB",
                  "--set-env", "keystone_authtoken.password=CPULSE_KS_PASSWORD")
    conf = (tmp_path / CONF).read_text()
    assert "connection = postgresql+psycopg2://cp:s3cret@db.example.com/cp" in conf
    assert "backend_url = postgresql://cp:s3cret@db.example.com/cp" in conf
    assert "password = ks-s3cret" in conf
    assert "s3cret" not in out + capsys.readouterr().err


@pytest.mark.parametrize("argv, field", [
    (["--listen", "0.0.0.0:443"], "--listen"),   # noauth beyond loopback
    (["--listen", "127.0.0.1"], "--listen"),
    (["--tls-cert", "/nonexistent.pem"], "--tls-cert and --tls-key"),
    (["--enable"], "--enable"),
    (["--set", "api.port"], "--set"),
    (["--set", "api.threads=1"], "[api] threads"),   # validated as the services load it
    (["--database-env", "CPULSE_UNSET_VARIABLE"], "--database-env"),
    (["--venv", "/nonexistent"], "--venv"),
])
def test_bad_arguments_are_refused_naming_the_option(tmp_path, argv, field):
    with pytest.raises(install.InstallError, match=r"^%s" % (
            "cloudpulse.conf: " if field.startswith("[") else "").replace(".", r"\.")) \
            as refused:
        _run(tmp_path, *argv)
    assert field in str(refused.value)
    assert not (tmp_path / CONF).exists()


def test_main_says_what_is_wrong_on_stderr(tmp_path, capsys):
    assert install.main(["--prefix", str(tmp_path), "--auth", "noauth", "--listen",
                         "0.0.0.0:80"]) == 2
    assert capsys.readouterr().err.startswith("cloudpulse-install: --listen: 0.0.0.0")
