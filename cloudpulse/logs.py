"""Logging for CloudPulse's processes: every record is redacted of secrets on its way out.

A log line may carry a password or a token that no CloudPulse code put there: a
library's exception text, a URL with credentials, a traceback's frame of an auth call.
`RedactingFormatter` redacts the whole formatted record (message, arguments, exception
and stack text), so nothing reaches a log unredacted whichever logger wrote it.
"""

import logging
import sys

from cloudpulse import results

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Loggers that say too much at INFO for an operator's log.
_QUIET = ("urllib3", "keystoneauth", "openstack", "stevedore", "alembic")


class RedactingFormatter(logging.Formatter):
    """A Formatter whose output passes through results.redact: message, arguments and
    the exception's traceback alike."""

    def format(self, record):
        return results.redact(super().format(record))


def setup(debug=False, stream=None):
    """One stderr handler on the root logger with the redacting formatter; replaces the
    handlers a previous call (or a library) installed there."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(RedactingFormatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
