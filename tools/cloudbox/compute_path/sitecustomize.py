"""nova-compute of the cloud in a box loads its virt driver from tools/cloudbox.

nova loads a compute_driver only from inside nova.virt ("cbvirt.NamespaceDriver" means
nova.virt.cbvirt), and the driver belongs to the box, not to nova's installed package:
this finder, on nova-compute's PYTHONPATH only, answers that one module name with
tools/cloudbox/cbvirt.py.  It imports nothing of nova's itself (nova patches its
concurrency primitives first thing, and nothing may import before it)."""

import importlib.abc
import importlib.util
import os
import sys

_DRIVER = "nova.virt.cbvirt"
_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cbvirt.py")


class _BoxDriverFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == _DRIVER:
            return importlib.util.spec_from_file_location(name, _FILE)
        return None


sys.meta_path.insert(0, _BoxDriverFinder())
