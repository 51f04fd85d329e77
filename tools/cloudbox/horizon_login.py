"""Real Horizon login: GET /auth/login/, POST the form with its CSRF token.

usage: horizon_login.py BASE_URL USER PASSWORD
Succeeds (exit 0) when the POST answers 302 to a page other than the login
page and that page then renders (200) with the session cookie.  stdlib only.
"""
import http.cookiejar
import re
import sys
import urllib.error
import urllib.parse
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def login(base, user, password, timeout=60):
    base = base.rstrip("/")
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    with opener.open(base + "/auth/login/", timeout=timeout) as r:
        html = r.read().decode("utf-8", "replace")
    m = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    if not m:
        raise RuntimeError("no csrfmiddlewaretoken in the login page")
    form = {"csrfmiddlewaretoken": m.group(1), "username": user, "password": password}
    reg = re.search(r'<input[^>]*name="region"[^>]*value="([^"]*)"', html) or \
        re.search(r'<option[^>]*value="([^"]*)"', html)
    if reg:
        form["region"] = reg.group(1)
    dom = re.search(r'name="domain"', html)
    if dom:
        form["domain"] = "Default"
    req = urllib.request.Request(base + "/auth/login/", data=urllib.parse.urlencode(form).encode(),
                                 headers={"Referer": base + "/auth/login/"})
    try:
        with opener.open(req, timeout=timeout) as r:
            body = r.read().decode("utf-8", "replace")
            err = re.search(r'class="alert[^"]*"[^>]*>(.*?)</div>', body, re.S)
            raise RuntimeError("login POST answered %s (no redirect): %s" % (
                r.status, re.sub(r"\s+", " ", err.group(1)).strip()[:200] if err else "?"))
    except urllib.error.HTTPError as e:
        if e.code != 302:
            raise RuntimeError("login POST answered %s" % e.code)
        location = e.headers.get("Location", "")
    if "/auth/login" in location:
        raise RuntimeError("login redirected back to the login page: %s" % location)
    target = urllib.parse.urljoin(base + "/", location)
    # follow a couple of redirects (/ -> /project/ ...) with the session cookie
    for _ in range(4):
        try:
            with opener.open(target, timeout=timeout) as r:
                r.read()
                return location, target, r.status
        except urllib.error.HTTPError as e:
            if e.code in (301, 302):
                nxt = e.headers.get("Location", "")
                if "/auth/login" in nxt:
                    raise RuntimeError("session not accepted: %s -> %s" % (target, nxt))
                target = urllib.parse.urljoin(target, nxt)
                continue
            raise RuntimeError("%s answered %s after login" % (target, e.code))
    raise RuntimeError("too many redirects after login")


if __name__ == "__main__":
    base, user, password = sys.argv[1:4]
    try:
        loc, final, status = login(base, user, password)
    except Exception as exc:  # noqa: BLE001
        print("horizon login %s: FAILED: %s" % (user, exc))
        sys.exit(1)
    print("horizon login %s: OK (302 -> %s, %s answered %s)" % (user, loc, final, status))
