import pytest

from cloudpulse import conf as cp_conf
from cloudpulse import results


def _load(tmp_path, text):
    path = tmp_path / "cloudpulse.conf"
    path.write_text(text)
    return cp_conf.load(["--config-file", str(path)], default_config_files=[])


@pytest.mark.parametrize("text,seconds", [("60", 60), ("60s", 60), ("10m", 600),
                                          ("2h", 7200), ("1d", 86400), ("-1", -1),
                                          ("never", -1)])
def test_interval_values(text, seconds):
    assert cp_conf.Interval()(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5", "ten minutes", "10 x", ""])
def test_bad_intervals_are_refused(text):
    with pytest.raises(ValueError):
        cp_conf.Interval()(text)


def test_oscheck_aliases(tmp_path):
    conf = _load(tmp_path, "[DEFAULT]\nosendpoint = 60s\nosfunc = 10m\n"
                           "[periodic]\noscomp = -1\n")
    assert conf.periodic.endpoint_interval == 60
    assert conf.periodic.functional_interval == 600
    assert cp_conf.intervals(conf) == {results.CheckType.ENDPOINT: 60,
                                       results.CheckType.FUNCTIONAL: 600}


def test_bad_value_names_the_option(tmp_path):
    with pytest.raises(cp_conf.ConfigError) as err:
        _load(tmp_path, "[periodic]\noperator_interval = 5 parsecs\n")
    assert "[periodic] operator_interval" in str(err.value)
    with pytest.raises(cp_conf.ConfigError) as err:
        _load(tmp_path, "[api]\nport = 99999\n")
    assert "port" in str(err.value)


def test_rally_connection_defaults_to_state_path(tmp_path):
    conf = _load(tmp_path, "[DEFAULT]\nstate_path = %s\n" % tmp_path)
    assert cp_conf.rally_connection(conf) == "sqlite:///%s/rally.sqlite" % tmp_path


def test_one_cloud_by_default(tmp_path):
    [one] = cp_conf.clouds(_load(tmp_path, "[cloud]\ncloud = box\ntimeout = 4\n"))
    assert (one.name, one.cloud, one.timeout, one.intervals) == ("box", "box", 4.0, {})


def test_several_clouds_each_with_what_is_its_own(tmp_path):
    conf = _load(tmp_path, "[DEFAULT]\nscenarios_dir = /suites\n"
                           "[cloud]\nclouds = box, box-b\nclouds_file = /c.yaml\ntimeout = 4\n"
                           "[operator]\nservice_map = /map.yaml\n"
                           "[periodic]\nendpoint_interval = 5m\n"
                           "[cloud:box-b]\ntimeout = 7\nregion_name = Two\n"
                           "scenarios_dir = /suites-b\nservice_map = /map-b.yaml\n"
                           "endpoint_interval = 30s\noperator_interval = 1h\n")
    box, other = cp_conf.clouds(conf)
    assert (box.name, box.clouds_file, box.timeout, box.scenarios_dir, box.service_map) == (
        "box", "/c.yaml", 4.0, "/suites", "/map.yaml")
    assert cp_conf.intervals(conf, box) == {results.CheckType.ENDPOINT: 300}
    assert (other.name, other.clouds_file, other.timeout, other.region_name,
            other.scenarios_dir, other.service_map) == (
        "box-b", "/c.yaml", 7.0, "Two", "/suites-b", "/map-b.yaml")
    assert cp_conf.intervals(conf, other) == {results.CheckType.ENDPOINT: 30,
                                              results.CheckType.OPERATOR: 3600}
    assert cp_conf.max_gaps(conf, other)[results.CheckType.OPERATOR] == 7200


@pytest.mark.parametrize("text, named", [
    ("[cloud]\ncloud = a\nclouds = a, b\n", "[cloud] cloud and [cloud] clouds"),
    ("[cloud]\nclouds = a, a\n", "[cloud] clouds"),
    ("[cloud]\nclouds = a, b\n[cloud:b]\ntimeout = soon\n", "[cloud:b] timeout"),
    ("[cloud]\nclouds = a, b\n[cloud:b]\nendpoint_interval = 0\n", "[cloud:b] endpoint_interval"),
])
def test_bad_clouds_are_named(tmp_path, text, named):
    with pytest.raises(cp_conf.ConfigError) as err:
        _load(tmp_path, text)
    assert str(err.value).startswith(named), err.value


def test_without_a_named_cloud_results_are_labelled_as_the_connection_names_it(tmp_path):
    """[cloud] cloud unset: the OS_* variables, which openstacksdk names envvars."""
    from types import SimpleNamespace

    from cloudpulse_api import service as service_mod

    conf = _load(tmp_path, "[DEFAULT]\nstate_path = %s\n" % tmp_path)
    [settings] = cp_conf.clouds(conf)
    assert settings.name is None
    unreachable = SimpleNamespace(config=SimpleNamespace(name="envvars"))   # no API: not admin
    checks = service_mod.CloudChecks(conf, settings, connection=unreachable)
    assert (checks.name, checks.is_admin) == ("envvars", False)
    assert checks.runs_dir == str(tmp_path / "runs")
