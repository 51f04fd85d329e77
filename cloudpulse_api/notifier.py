"""Health transitions pushed to webhooks (docs/notifications.md): a runner records a run's
transitions as it takes the run off the queue, and delivers the outbox in a thread of its
own, signed, with retries and backoff.  Any number of runners share one outbox
(cloudpulse_rally.notifications): each row is leased by the runner that sends it."""

import dataclasses
import datetime
import logging
import threading

import requests

from cloudpulse import conf as cp_conf
from cloudpulse import health
from cloudpulse import results
from cloudpulse import webhook
from cloudpulse_rally import notifications

LOG = logging.getLogger(__name__)

POLL_EVERY = 1.0   # seconds between two looks at the outbox for others' notifications
BATCH = 10         # deliveries claimed at once
USER_AGENT = "CloudPulse-Webhook/1"


def settings(conf, cloud):
    """The store's Settings from cloudpulse.conf, for the cloud named `cloud`."""
    group = conf.notifications
    base = (group.result_url or "http://%s:%d" % (conf.api.host, conf.api.port)).rstrip("/")
    return notifications.Settings(
        cloud=cloud,
        thresholds={t: health.Thresholds(*pair)
                    for t, pair in cp_conf.thresholds(conf).items()},
        reminder_interval=max(0, group.reminder_interval),
        configured_urls=tuple(group.webhooks),
        result_url=base + "/cpulse/result?handle=%s")


class Notifier:
    """A runner's notifications: `record()` in the transaction that ends a run,
    `start()` the delivery thread."""

    def __init__(self, service):
        self.service = service
        self.conf = service.conf.notifications
        self.store = service.notifications
        self.settings = settings(service.conf, service.cloud().name)
        self._secret = (cp_conf.webhook_secret(service.conf)
                        if self.conf.webhooks else None)
        self._wake = threading.Event()
        self._http = requests.Session()

    # -- recording ----------------------------------------------------------------------
    def record(self, conn, run, checks):
        """Write an ended run's transitions on `conn`, the transaction that takes it
        off the queue; `checks`: the CloudChecks of the cloud it checked."""
        # a member's webhooks get the member view: the cloud's hosts masked too
        hosts = checks.host_names() if run.project_id else ()
        for t in self.store.record_run(conn, run, dataclasses.replace(
                self.settings, cloud=checks.name), hosts):
            LOG.info("health %s: %s %s -> %s (run %s)", t.event.value, t.key,
                     t.old.state.value if t.old else "unknown", t.new.state.value, t.handle)

    def wake(self):
        self._wake.set()

    # -- delivering ---------------------------------------------------------------------
    def run(self, stopped):
        """Deliver until `stopped` (an Event) is set."""
        while not stopped.is_set():
            deliveries, wait = [], POLL_EVERY
            try:
                # a read first: claiming writes (on SQLite, the database's write lock)
                due = self.store.next_due()
                if due is not None and due <= results.utcnow():
                    deliveries = self.store.claim(lease=self.conf.timeout + 30,
                                                  limit=BATCH)
                elif due is not None:
                    wait = min(POLL_EVERY, (due - results.utcnow()).total_seconds())
            except Exception:
                LOG.exception("reading the notification outbox failed")
            for delivery in deliveries:
                self._deliver(delivery)
            if not deliveries:
                self._wake.wait(max(0.05, wait))
                self._wake.clear()

    def _secret_of(self, delivery):
        if delivery.webhook == notifications.CONFIGURED:
            return self._secret
        hook = self.store.webhook(delivery.webhook)
        return hook.secret if hook else None

    def _deliver(self, delivery):
        secret = self._secret_of(delivery)
        if secret is None:   # its webhook was deleted, or left the configuration
            self.store.delivered(delivery.id)
            return
        try:
            answer = self._http.post(
                delivery.url, data=delivery.body, timeout=self.conf.timeout,
                allow_redirects=False,
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT,
                         webhook.SIGNATURE_HEADER: webhook.signature(secret, delivery.body),
                         webhook.ID_HEADER: delivery.notification_id})
            error = None if 200 <= answer.status_code < 300 else "HTTP %d" % answer.status_code
        except requests.RequestException as exc:
            error = "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc)
                                else "")
        if error is None:
            self.store.delivered(delivery.id)
            LOG.info("notification %s delivered to %s", delivery.notification_id,
                     results.redact(delivery.url))
            return
        attempts = delivery.attempts + 1
        now = results.utcnow()
        give_up = self.conf.give_up_after
        if give_up != -1 and (now - delivery.created_at).total_seconds() > give_up:
            self.store.delivered(delivery.id)
            LOG.error("notification %s to %s dropped after %d attempts ([notifications] "
                      "give_up_after): %s", delivery.notification_id,
                      results.redact(delivery.url), attempts, results.redact(error))
            return
        delay = webhook.backoff(attempts, self.conf.retry_initial, self.conf.retry_max)
        self.store.retry(delivery.id, attempts, results.redact(error),
                         now + datetime.timedelta(seconds=delay))
        LOG.warning("notification %s to %s not delivered (attempt %d: %s); next in %.0f s",
                    delivery.notification_id, results.redact(delivery.url), attempts,
                    results.redact(error), delay)
