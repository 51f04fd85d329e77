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
