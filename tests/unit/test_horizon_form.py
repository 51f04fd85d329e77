"""Horizon's login form as Horizon 27 serves it (pages recorded from the cloud in a box)."""

import os

from cloudpulse.checks import endpoint

DATA = os.path.join(os.path.dirname(__file__), "data")


def _parse(name):
    form = endpoint._LoginFormParser()
    with open(os.path.join(DATA, name)) as f:
        form.feed(f.read())
    return form


def test_login_page_fields():
    form = _parse("horizon27_login.html")
    assert set(form.fields) == {"csrfmiddlewaretoken", "fake_email", "fake_password",
                                "password", "region", "username"}
    assert len(form.fields["csrfmiddlewaretoken"]) >= 32
    assert form.fields["region"] == "default"   # the one keystone region, preselected
    assert form.errors == []


def test_refused_login_error_is_the_forms_own():
    form = _parse("horizon27_login_refused.html")
    # The <noscript> banner outside the form is not a login error.
    assert form.errors == ["Invalid credentials."]
