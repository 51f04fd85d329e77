"""tools/appliance/make-user-data: the #cloud-config it writes (tests/integration/
test_appliance.py boots it for real)."""

import subprocess
import sys

import pytest
import yaml

from tests.integration.cloudbox import REPO_ROOT

MAKE_USER_DATA = str(REPO_ROOT / "tools" / "appliance" / "make-user-data")
PASSWORD, TOKEN, DB_PASSWORD = "cloud-pw-1234", "f" * 40, "db-pw-5678"


@pytest.fixture
def inputs(tmp_path):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {
        "mine": {"auth": {"auth_url": "http://127.0.0.1:5000/v3", "password": PASSWORD}},
        "other": {"auth": {"password": "not-copied"}}}}))
    tokens = tmp_path / "tokens"
    tokens.write_text("%s ops admin\n" % TOKEN)
    db = tmp_path / "db"
    db.write_text(DB_PASSWORD + "\n")
    return {"clouds": str(clouds), "tokens": str(tokens), "db": str(db)}


def make(*argv):
    return subprocess.run([sys.executable, MAKE_USER_DATA, *argv], capture_output=True,
                          text=True, timeout=30)


def files_by_path(document):
    return {f["path"]: f for f in document["write_files"]}


def test_the_user_data_installs_cloudpulse_with_its_secrets_in_files_only(inputs):
    made = make("--source", "https://example.com/cloudpulse 1.whl", "--clouds-yaml",
                inputs["clouds"], "--cloud", "mine", "--tokens", inputs["tokens"],
                "--secret", "keystone_authtoken.password=%s" % inputs["db"],
                "--", "--listen", "0.0.0.0:80", "--set", "cloud.timeout=3")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("#cloud-config\n")
    document = yaml.safe_load(made.stdout)
    assert {"nginx", "python3-venv"} <= set(document["packages"])
    assert {"name": "cloudpulse", "system": True}.items() <= document["users"][1].items()
    files = files_by_path(document)
    clouds = files["/etc/cloudpulse/clouds.yaml"]
    assert yaml.safe_load(clouds["content"]) == {"clouds": {"mine": {"auth": {
        "auth_url": "http://127.0.0.1:5000/v3", "password": PASSWORD}}}}
    for path in ("/etc/cloudpulse/clouds.yaml", "/etc/cloudpulse/tokens"):
        assert (files[path]["permissions"], files[path]["owner"], files[path]["defer"]) == (
            "0640", "root:cloudpulse", True)
    (secret,) = [f for f in files.values() if f["content"] == DB_PASSWORD]
    assert (secret["permissions"], secret["owner"]) == ("0600", "root:root")
    assert "/etc/nginx/sites-enabled/default" in files   # Debian's default site kept off

    setup = files["/usr/local/sbin/cloudpulse-appliance-setup"]
    assert document["runcmd"] == [[setup["path"]]]
    script = setup["content"]
    for value in (PASSWORD, TOKEN, DB_PASSWORD):
        assert value not in script and value not in str(document["runcmd"])
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0
    assert "'https://example.com/cloudpulse 1.whl' uWSGI" in script
    install = script.splitlines()[-1]
    assert install.startswith('CLOUDPULSE_SECRET_1="$(cat %s)" ' % secret["path"])
    assert ("--auth token_file --token-file /etc/cloudpulse/tokens --set-env "
            "keystone_authtoken.password=CLOUDPULSE_SECRET_1 --processes 1 --listen 0.0.0.0:80 "
            "--set cloud.timeout=3 --enable") in install


@pytest.mark.parametrize("argv, message", [
    (["--cloud", "absent", "--auth", "noauth"], "--cloud: "),
    (["--cloud", "mine"], "--tokens: needed with --auth token_file"),
    (["--cloud", "mine", "--auth", "noauth", "--secret", "nodot=x"],
     "--secret: 'nodot=x' is not GROUP.OPTION=FILE"),
])
def test_bad_arguments_are_named(inputs, argv, message):
    made = make("--source", "x.whl", "--clouds-yaml", inputs["clouds"], *argv)
    assert made.returncode == 2 and message in made.stderr and not made.stdout
