"""README's "Usage on your cloud": `pip install -c constraints.txt .` into a fresh venv
gives console scripts that start, with no test-only requirement installed."""

import configparser
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _console_scripts():
    setup = configparser.ConfigParser()
    setup.read(os.path.join(REPO, "setup.cfg"))
    lines = setup["options.entry_points"]["console_scripts"].strip().splitlines()
    return [line.split("=", 1)[0].strip() for line in lines]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    where = tmp_path_factory.mktemp("plain-install")
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # A plain, non-editable install of a copy of this tree (the build leaves files
    # behind), as an operator would do it.
    source = where / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "__pycache__", ".tox"))
    proc = subprocess.run(
        # no byte-compiling of every module at install: Python does it at import
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
         "--no-compile", "-c", str(source / "constraints.txt"), str(source)],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def test_no_test_requirement_is_installed(fresh_venv):
    proc = subprocess.run([str(fresh_venv / "bin" / "pip"), "list", "--format=freeze"],
                          capture_output=True, text=True, check=True)
    installed = {line.split("==")[0].lower() for line in proc.stdout.splitlines()}
    assert "pytest" not in installed


@pytest.mark.parametrize("script", _console_scripts())
def test_every_console_script_starts(fresh_venv, script, tmp_path):
    # Run from elsewhere, so nothing is imported from the source tree.
    proc = subprocess.run([str(fresh_venv / "bin" / script), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (script, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "usage" in proc.stdout.lower(), proc.stdout
    assert "Traceback" not in proc.stderr


def test_the_installed_server_finds_its_suites_and_templates(fresh_venv, tmp_path):
    code = ("from cloudpulse import suites; import sys; "
            "print(sys.prefix in suites.scenarios_dir(), [t.value for t in "
            "suites.available_types()])")
    proc = subprocess.run([str(fresh_venv / "bin" / "python"), "-c", code], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.split(" ", 1)[0] == "True", proc.stdout
    assert "'endpoint'" in proc.stdout and "'operator'" in proc.stdout
