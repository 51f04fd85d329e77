"""CloudPulse's own Rally validators."""

from rally.common import validation


@validation.configure(name="cloudpulse_subset")
class SubsetValidator(validation.Validator):
    """Checks that a list argument only holds known values.

    :param param_name: name of the scenario argument (a list)
    :param values: the values allowed in it
    """

    def __init__(self, param_name, values):
        super().__init__()
        self.param_name = param_name
        self.values = list(values)

    def validate(self, context, config, plugin_cls, plugin_cfg):
        value = (config or {}).get("args", {}).get(self.param_name)
        if value is None:
            return
        if not isinstance(value, list):
            self.fail("%s must be a list, got %r" % (self.param_name, value))
        unknown = [v for v in value if v not in self.values]
        if unknown:
            self.fail("%s: unknown %s (allowed: %s)" % (
                self.param_name, ", ".join(map(str, unknown)), ", ".join(self.values)))
