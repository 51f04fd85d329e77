"""Every log record is redacted on its way out, exception text included."""

import io
import logging

from cloudpulse import logs


SECRETS = {"password": "hunter2-pw", "token": "gAAAAABtokenvalue"}


def _auth(password, token):
    raise RuntimeError("auth failed for {'username': 'admin', 'password': '%s'} "
                       "with X-Auth-Token: %s" % (password, token))


def test_exception_text_with_a_password_and_a_token_is_redacted():
    stream = io.StringIO()
    handler = logs.setup(stream=stream)
    try:
        log = logging.getLogger("cloudpulse.test")
        # As at run time: the secrets come from configuration, not from source lines
        # (which a traceback quotes).
        password, token = SECRETS["password"], SECRETS["token"]
        try:
            _auth(password, token)
        except RuntimeError:
            log.warning("probe crashed: %s", "url http://admin:s3cr3t@keystone:5000/v3",
                        exc_info=True)
        log.error("retry with password=%s", password)
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert "Traceback (most recent call last)" in text     # the traceback is still there
    assert "RuntimeError: auth failed" in text
    for secret in ("hunter2-pw", "gAAAAABtokenvalue", "s3cr3t"):
        assert secret not in text, text
    assert "http://admin:***@keystone:5000/v3" in text
