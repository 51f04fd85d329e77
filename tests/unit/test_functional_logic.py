"""The functional check's own logic (cloudpulse.checks.functional) without a cloud: its
settings name the field they miss, and its cleanup order.  The steps themselves run against
the cloud in a box (tests/integration/test_functional.py)."""

import pytest

from cloudpulse.checks import functional
from cloudpulse.checks import workload


@pytest.mark.parametrize("field, kwargs", [
    ("image_file", {"image_file": "", "flavor": "m1.tiny"}),
    ("flavor", {"image_file": "/srv/cirros.img", "flavor": ""}),
])
def test_settings_name_the_missing_field(field, kwargs):
    with pytest.raises(ValueError, match="^%s: missing" % field):
        functional.Settings(**kwargs)


def test_cleanup_removes_the_vms_together_and_the_rest_in_reverse_order():
    entries = [("network", None, None), ("server a", None, "servers"),
               ("server b", None, "servers"), ("floating IP", None, None)]
    groups = workload._batches(reversed(entries))
    assert [[e[0] for e in g] for g in groups] == [
        ["floating IP"], ["server b", "server a"], ["network"]]
