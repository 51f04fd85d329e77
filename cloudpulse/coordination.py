"""Locks shared by every CloudPulse process of one deployment (API workers, runners),
through tooz, as OpenStack services coordinate: `[coordination] backend_url`, by default
a directory of file locks under state_path (one machine), or e.g.
postgresql://... (tooz's advisory locks) when the processes run on several machines."""

import contextlib
import logging
import os
import uuid

LOG = logging.getLogger(__name__)


class Coordinator:
    """A started tooz coordinator of this process; `lock(name)` is a context manager."""

    def __init__(self, conf):
        from tooz import coordination   # heavy: imported when a process coordinates
        url = backend_url(conf)
        if url.startswith("file://"):
            os.makedirs(url[len("file://"):], mode=0o700, exist_ok=True)
        member = ("cloudpulse-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])).encode()
        self._tooz = coordination.get_coordinator(url, member)
        self._tooz.start(start_heart=True)

    @contextlib.contextmanager
    def lock(self, name):
        with self._tooz.get_lock(("cloudpulse-" + name).encode()):
            yield

    def stop(self):
        try:
            self._tooz.stop()
        except Exception:   # stopping: a backend gone already is no reason to fail
            LOG.debug("tooz coordinator stop failed", exc_info=True)


def backend_url(conf):
    return conf.coordination.backend_url or "file://" + os.path.join(
        conf.state_path, "locks")
