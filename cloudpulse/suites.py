"""Check suites: which checks of a type run, with which arguments (scenarios/<type>.yaml).

A suite is also the task-args file of its Rally task template
(task_templates/<type>.yaml), so `rally task start task_templates/endpoint.yaml
--task-args-file scenarios/endpoint.yaml` runs exactly what the server runs.
"""

import os
import sys

import yaml

from cloudpulse import results


class SuiteError(Exception):
    """A suite file is missing or malformed; the message names the file and field."""


def _shipped_dir(name):
    # A source checkout (editable install) first, then the data_files of an install.
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for candidate in (os.path.join(here, name),
                      os.path.join(sys.prefix, "share", "cloudpulse", name)):
        if os.path.isdir(candidate):
            return candidate
    return os.path.join(sys.prefix, "share", "cloudpulse", name)


def scenarios_dir(conf=None, directory=None):
    """`directory` (one cloud's own), else [DEFAULT] scenarios_dir, else the shipped one."""
    return directory or (conf and conf.scenarios_dir) or _shipped_dir("scenarios")


def task_templates_dir(conf=None):
    return (conf and conf.task_templates_dir) or _shipped_dir("task_templates")


def available_types(conf=None, directory=None):
    """Check types that have both a suite (in `directory`, see scenarios_dir) and a task
    template, in CheckType order."""
    return [t for t in results.CheckType
            if os.path.isfile(os.path.join(scenarios_dir(conf, directory), t.value + ".yaml"))
            and os.path.isfile(os.path.join(task_templates_dir(conf), t.value + ".yaml"))]


def load_suite(check_type, conf=None, directory=None):
    path = os.path.join(scenarios_dir(conf, directory),
                        results.CheckType(check_type).value + ".yaml")
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except OSError as exc:
        raise SuiteError("suite %s: %s" % (path, exc.strerror)) from None
    except yaml.YAMLError as exc:
        raise SuiteError("suite %s is not valid YAML: %s" % (path, exc)) from None
    if not isinstance(data, dict):
        raise SuiteError("suite %s: expected a mapping of task arguments" % path)
    return data


def load_template(check_type, conf=None):
    path = os.path.join(task_templates_dir(conf), results.CheckType(check_type).value + ".yaml")
    with open(path) as f:
        return path, f.read()
