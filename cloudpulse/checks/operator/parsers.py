"""What every component's parser shares.  Each component's parsers live in its check
module, beside the verdict they feed (rabbitmq, galera, haproxy, pacemaker, services).

Every parser takes the raw stdout of one fixed command (see `commands`) and returns plain
data; malformed input raises `ParseError` naming what was expected.  Older formats are
kept: RabbitMQ before 3.8 prints Erlang terms instead of JSON, pacemaker 2.0 says
Master/Slave where 2.1 says Promoted/Unpromoted.
"""

import re


class ParseError(ValueError):
    """The output is not in any format this parser knows."""


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def strip_ansi(text):
    return _ANSI.sub("", text or "")
