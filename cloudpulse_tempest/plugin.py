"""The Tempest plugin manifest: where the tests are, and the [cloudpulse] options."""

import os

from tempest.test_discover import plugins

from cloudpulse_tempest import config as cp_config


class CloudPulseTempestPlugin(plugins.TempestPlugin):
    def load_tests(self):
        base_path = os.path.split(os.path.dirname(os.path.abspath(__file__)))[0]
        test_dir = "cloudpulse_tempest/tests"
        return os.path.join(base_path, test_dir), base_path

    def register_opts(self, conf):
        conf.register_group(cp_config.cloudpulse_group)
        conf.register_opts(cp_config.CloudPulseGroup, group=cp_config.cloudpulse_group)

    def get_opt_lists(self):
        return [(cp_config.cloudpulse_group.name, cp_config.CloudPulseGroup)]
