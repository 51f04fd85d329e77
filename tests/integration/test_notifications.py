"""Health transitions pushed, for real (docs/notifications.md): a cloudpulse-server runs the
endpoint checks every few seconds against the cloud in a box and notifies a real HTTP
receiver on 127.0.0.1.  Glance stopped: one "failed", signed; glance back while the
receiver is down for a minute: one "recovered" once it is up; a fault that comes and
goes: one fault; the server restarted with a notification in its outbox: delivered once.
The same outage in the history: GET /cpulse/availability, a real Prometheus scraping
/metrics, and the status page in a real headless Chromium, healthy then broken.

Retries are shortened for CI time ([notifications] retry_initial 1 s, retry_max 8 s); the
backoff itself is the real one (doubling, capped)."""

import datetime
import re
import secrets
import time

import pytest
import requests

from cloudpulse import webhook
from tests.integration.server import Prometheus
from tests.integration.server import Server
from tests.integration.server import WebhookReceiver
from tests.integration.server import chromium

INTERVAL = 3          # seconds between two periodic endpoint runs
TIMEOUT = 5           # per API call: a hung glance fails a run after it
# The suite: keystone and glance only, so that a busy box's slow nova or horizon (a
# timeout under load) does not add transitions of its own to what is counted here.
SUITE = "services: [keystone, glance]\n"
RECEIVER_DOWN = 60    # seconds the receiver is down in the middle (the minute)
RETRY_MAX = 8
NOT_DELIVERED = re.compile(r"notification (\S+) to \S+ not delivered \(attempt (\d+)")


class Notified:
    """The server under test (replaced when it restarts) and its receiver."""

    def __init__(self, venv_bin, state, box, horizon_url):
        self.venv_bin, self.state, self.box = venv_bin, state, box
        self.horizon_url = horizon_url
        self.secret = secrets.token_hex(24)
        self.receiver = WebhookReceiver()
        (state / "suites").mkdir()
        (state / "suites" / "endpoint.yaml").write_text(SUITE)
        self.server = self.start()

    def start(self):
        return Server(
            self.venv_bin, self.state, self.box, horizon_url=self.horizon_url,
            timeout=TIMEOUT, periodic="endpoint_interval = %ds\n" % INTERVAL,
            extra="[DEFAULT]\nscenarios_dir = %s\n[notifications]\nwebhooks = %s\n"
                  "secret = %s\nthresholds = 1/3\nretry_initial = 1\nretry_max = %d\n"
                  % (self.state / "suites", self.receiver.url, self.secret, RETRY_MAX))

    @staticmethod
    def glance(docs):
        return [d for d in docs if d["check"] == "endpoint.glance"]

    def glance_events(self, docs):
        return [(d["event"], d["old_state"], d["new_state"]) for d in self.glance(docs)]


@pytest.fixture(scope="module")
def notified(venv_bin, tmp_path_factory, box, admin_conn):
    n = Notified(venv_bin, tmp_path_factory.mktemp("notify"), box, box.horizon_url)
    # the first run records every component healthy: nothing is told
    n.box.wait_for(lambda: requests.get(n.server.url + "/cpulse/results", params={
        "state": "finished"}, timeout=10).json()["runs"], timeout=60, interval=0.5,
        message="a first periodic run")
    yield n
    n.server.stop()
    n.receiver.down()


@pytest.fixture
def glance(box, admin_conn):
    """stop(), hang(), start(), resume() glance; whatever the test did, it runs again at
    the end (and the cloud is healthy again)."""
    class Glance:
        stop = staticmethod(lambda: box.stop("glance"))
        start = staticmethod(lambda: box.start("glance"))
        hang = staticmethod(lambda: box.hang("glance"))
        resume = staticmethod(lambda: box.resume("glance"))
    yield Glance
    box.start("glance")   # SIGCONT to a hung one, a launch of a stopped one


def test_glance_stopped_is_one_signed_failed_and_back_one_recovered_despite_the_receiver_down(
        notified, glance):
    receiver = notified.receiver
    assert notified.glance(receiver.documents()) == [], receiver.documents()
    glance.stop()
    stopped_at = time.time()
    failed = receiver.wait(notified.glance, timeout=INTERVAL * 2 + TIMEOUT + 15)[0]
    detected = [at for at, _, _, doc in receiver.received if doc is failed][0] - stopped_at
    assert (failed["event"], failed["check"], failed["component"], failed["old_state"],
            failed["new_state"]) == ("failed", "endpoint.glance", "glance", "passed",
                                     "failed"), failed
    assert "cannot connect" in failed["details"] and failed["cloud"]
    _, headers, body, _ = [r for r in receiver.received if r[3] is failed][0]
    assert webhook.verify(notified.secret, headers[webhook.SIGNATURE_HEADER], body)
    with pytest.raises(webhook.BadSignature):
        webhook.verify("not-the-secret" * 2, headers[webhook.SIGNATURE_HEADER], body)
    assert headers[webhook.ID_HEADER] == failed["id"]
    # the link is the run that saw it
    run = requests.get(failed["result_url"], timeout=10).json()
    assert run["handle"] == failed["handle"]
    assert [list(f) for f in run["tests_failed"]] == [["endpoint.glance"]]

    # the fault lasts: no notice per run
    time.sleep(INTERVAL * 4)
    assert len(notified.glance(receiver.documents())) == 1, receiver.documents()

    receiver.down()
    down_at = time.monotonic()
    glance.start()
    # the recovery is found (3 passing runs) and its delivery fails, retried with backoff
    log = notified.box.wait_for(
        lambda: [m for m in NOT_DELIVERED.finditer(notified.server.log_text())
                 if int(m.group(2)) >= 3], timeout=RECEIVER_DOWN, interval=1,
        message="retries of the recovery")
    time.sleep(max(0, RECEIVER_DOWN - (time.monotonic() - down_at)))
    receiver.up()
    receiver.wait(lambda docs: len(notified.glance(docs)) >= 2, timeout=RETRY_MAX * 2 + 5)
    time.sleep(INTERVAL * 2)
    docs = notified.glance(receiver.documents())
    assert notified.glance_events(docs) == [("failed", "passed", "failed"),
                                            ("recovered", "failed", "passed")], docs
    assert docs[1]["id"] in [m.group(1) for m in log]
    assert docs[1]["first_seen"] > failed["first_seen"]
    print("detection: webhook %.1f s after glance stopped (interval %d s)"
          % (detected, INTERVAL))


def test_the_outage_is_in_the_availability_and_a_real_prometheus_scrapes_it(
        notified, tmp_path):
    """The previous test's glance outage as GET /cpulse/availability gives it, and as
    Debian's Prometheus scrapes /metrics, its default metrics_path (docs/availability.md)."""
    doc = requests.get(notified.server.url + "/cpulse/availability",
                       params={"window": "1h"}, timeout=10).json()
    checks = {c["key"]: c for c in doc["windows"][0]["checks"]}
    glance = checks["endpoint.glance"]
    failed, recovered = notified.glance(notified.receiver.documents())[:2]
    # from the first failing run to the first passing one: the runs the notices name
    at = datetime.datetime.fromisoformat
    [outage] = [o for o in glance["outages"] if o["state"] == "failed"
                and abs((at(o["start"]) - at(failed["first_seen"])).total_seconds()) < 2]
    assert abs((at(outage["end"]) - at(recovered["first_seen"])).total_seconds()) < 2, \
        (outage, recovered)
    assert outage["seconds"] > INTERVAL * 4 and not outage["ongoing"]
    assert "cannot connect" in outage["details"]
    assert glance["down_seconds"] >= outage["seconds"]
    assert 0 < glance["availability"] < 1 and glance["slo_met"] is False
    assert checks["endpoint"]["down_seconds"] >= outage["seconds"]
    assert checks["endpoint.keystone"]["down_seconds"] == 0

    host, port = notified.server.url.split("//")[1].split(":")
    prometheus = Prometheus(tmp_path, "%s:%s" % (host, port))
    try:
        scraped = notified.box.wait_for(lambda: prometheus.query(
            'cloudpulse_availability_ratio{key="endpoint.glance",window="1h"}'),
            timeout=30, interval=0.5, message="a scrape of /metrics")
        assert prometheus.target_health() == [("up", "")]
        [(labels, ratio)] = scraped
        assert labels["check_type"] == "endpoint" and labels["cloud"] == doc["cloud"]
        # the same figure, read later: it grows while glance stays up
        later = {c["key"]: c for c in requests.get(
            notified.server.url + "/cpulse/availability", params={"window": "1h"},
            timeout=10).json()["windows"][0]["checks"]}["endpoint.glance"]["availability"]
        assert glance["availability"] - 0.001 <= ratio <= later + 0.001
        assert [v for _, v in prometheus.query('cloudpulse_check_up{key="endpoint.glance"}')] \
            == [1.0]
        [(_, last_success)] = prometheus.query(
            'time() - cloudpulse_check_last_success_timestamp_seconds{key="endpoint.glance"}')
        assert 0 <= last_success < INTERVAL * 3 + TIMEOUT
    finally:
        prometheus.stop()


def test_the_status_page_in_a_real_chromium_healthy_then_broken(notified, glance, tmp_path):
    """GET /cpulse/ as Debian's headless Chromium renders it: the cloud healthy (with the
    outage of the first test among the recent changes), then glance stopped: the page
    names it.  The screenshots stay in the test's directory."""
    page_url = notified.server.url + "/"   # redirected to the page
    healthy = chromium(page_url, tmp_path / "profile", tmp_path / "healthy.png")
    text = re.sub(r"<[^>]+>", " ", healthy)
    assert re.search(r"endpoint\s+healthy", text), text
    assert "endpoint.glance" in text and "cannot connect" in text   # the recent outage
    assert (tmp_path / "healthy.png").stat().st_size > 10000
    receiver, before = notified.receiver, len(notified.receiver.documents())
    glance.stop()
    notified.box.wait_for(lambda: requests.get(notified.server.url + "/cpulse/status",
                                               timeout=10).json()["clouds"][0]["verdict"]
                          == "unhealthy", timeout=INTERVAL * 2 + TIMEOUT + 15, interval=0.5,
                          message="glance stopped seen by a run")
    broken = chromium(page_url, tmp_path / "profile", tmp_path / "broken.png")
    failing = broken.split("failing components")[1].split("Recent changes")[0]
    assert "endpoint.glance" in re.sub(r"<[^>]+>", " ", failing), broken
    assert 'class="verdict unhealthy"' in broken
    glance.start()
    # its recovery told before the next test counts notifications
    receiver.wait(lambda docs: [d for d in notified.glance(docs[before:])
                                if d["event"] == "recovered"], timeout=INTERVAL * 6 + 30)


def test_a_fault_that_comes_and_goes_is_one_fault(notified, glance):
    receiver = notified.receiver
    before = len(receiver.documents())
    glance.hang()
    receiver.wait(lambda docs: len(notified.glance(docs[before:])) > 0,
                  timeout=INTERVAL * 2 + TIMEOUT + 15)
    for _ in range(2):
        # back for about one run (recovered takes three), gone again long enough that a
        # run times out on it (a run started just before is answered once it resumes)
        glance.resume()
        time.sleep(INTERVAL)
        glance.hang()
        time.sleep(TIMEOUT + INTERVAL + 1)
    glance.resume()
    receiver.wait(lambda docs: len(notified.glance(docs[before:])) >= 2,
                  timeout=INTERVAL * 6 + TIMEOUT + 15)
    time.sleep(INTERVAL * 2)
    docs = notified.glance(receiver.documents()[before:])
    assert notified.glance_events(docs) == [("failed", "passed", "failed"),
                                            ("recovered", "failed", "passed")], docs
    assert docs[0]["details"].startswith("timeout after")


def test_a_notification_in_the_outbox_at_a_restart_is_delivered_once(notified, glance):
    receiver = notified.receiver
    before = len(receiver.documents())
    receiver.down()
    glance.stop()
    notified.box.wait_for(lambda: NOT_DELIVERED.search(notified.server.log_text().split(
        "health failed: endpoint.glance")[-1]), timeout=INTERVAL * 2 + TIMEOUT + 15,
        interval=0.5, message="a failed delivery of the new fault")
    notified.server.stop()
    receiver.up()
    notified.server = notified.start()
    receiver.wait(lambda docs: notified.glance(docs[before:]), timeout=30)
    time.sleep(INTERVAL * 3)   # runs of the restarted server: the fault is not new
    docs = notified.glance(receiver.documents()[before:])
    assert notified.glance_events(docs) == [("failed", "passed", "failed")], docs
    assert "delivered" in notified.server.log_text()
