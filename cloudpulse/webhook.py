"""What a webhook receives: the notification document of a health transition, and its
HMAC-SHA256 signature (docs/notifications.md says how a receiver verifies it).

    X-CloudPulse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
    X-CloudPulse-Notification: <the notification's id>

The timestamp is the delivery attempt's, so a receiver refuses a replay older than a few
minutes; the id is the notification's, the same on every attempt, so a receiver drops a
duplicate (delivery is at least once).
"""

import hashlib
import hmac
import json
import time

SIGNATURE_HEADER = "X-CloudPulse-Signature"
ID_HEADER = "X-CloudPulse-Notification"
TOLERANCE = 300   # seconds a receiver accepts a signature's timestamp off its clock


class BadSignature(ValueError):
    pass


def _iso(ts):
    return ts.isoformat(timespec="milliseconds") if ts else None


def document(notification_id, transition, cloud, project_id, result_url, at):
    """The JSON-ready notification of a health.Transition of `cloud`, found in a run of
    `project_id` (None: the server's own), `result_url` the link to that run."""
    return {
        "id": notification_id,
        "event": transition.event.value,
        "cloud": cloud,
        "project_id": project_id,
        "check": transition.key,
        "check_type": transition.check_type.value,
        "component": transition.component,
        "old_state": transition.old.state.value if transition.old else None,
        "new_state": transition.new.state.value,
        "details": transition.details,
        "first_seen": _iso(transition.first_seen),
        "notified_at": _iso(at),
        "handle": transition.handle,
        "result_url": result_url,
    }


def encode(doc):
    """The body as sent and signed (compact, keys in order)."""
    return json.dumps(doc, separators=(",", ":")).encode()


def signature(secret, body, timestamp=None):
    """The X-CloudPulse-Signature header's value for `body` (bytes)."""
    timestamp = int(time.time() if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (timestamp, mac)


def verify(secret, header, body, tolerance=TOLERANCE, now=None):
    """What a receiver does: the header's timestamp (int) when `header` signs `body` with
    `secret` within `tolerance` seconds of `now`; BadSignature otherwise."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        given = fields["v1"]
    except (ValueError, KeyError, AttributeError):
        raise BadSignature("%s: expected t=<seconds>,v1=<hex>" % SIGNATURE_HEADER) from None
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise BadSignature("%s: timestamp %d is more than %d s off"
                           % (SIGNATURE_HEADER, timestamp, tolerance))
    expected = signature(secret, body, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, given):
        raise BadSignature("%s: the signature does not match the body" % SIGNATURE_HEADER)
    return timestamp


def backoff(attempts, initial, cap):
    """Seconds before the next attempt after `attempts` failed ones: initial, doubled at
    each failure, at most `cap`."""
    return min(cap, initial * 2 ** max(0, attempts - 1))
