"""Webhooks: each short code's events POSTed, signed, to the URLs its admin configured.

The events themselves are recorded by the store, in the transaction of the change that causes
them (store/webhooks.py: triggers on messages and opt_events); this module owns what happens
next:

- :class:`WebhookService` adds, lists and removes webhooks (Settings, ``gateway webhook``) and
  keeps those of gateway.yaml in the store; it resends dead letters.
- Its worker thread POSTs each waiting delivery: JSON, ``X-Gateway-Timestamp`` (Unix seconds),
  ``X-Gateway-Signature: sha256=HEX`` (HMAC-SHA256 of ``TIMESTAMP.BODY`` with the webhook's
  secret, :func:`sign`) and ``X-Gateway-Event`` (the event id, the same on every attempt, so a
  receiver drops the copies that "at least once" brings). The thread sleeps on an event: the
  bus wakes it after every commit that may have recorded an event, and a timer at the earliest
  retry; idle, it does nothing at all.
- A receiver that fails (an error, a timeout, an answer other than 2xx) is left alone for a
  backoff that doubles with each failure in a row, with jitter, up to ``retry_max_seconds``;
  its deliveries wait in the store (a restart loses none). One that fails ``max_attempts``
  times, or is older than ``max_age_hours``, goes to the dead-letter list; a backlog longer
  than ``max_pending`` sends its oldest there too, and a dead-letter list longer than
  ``max_dead`` forgets its oldest (counted), so a receiver that is down for days never fills
  the card.
- Redirects are never followed (an answer 3xx is a failure that names where it pointed): a
  delivery goes only to the URL the admin wrote.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import random
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from ..config import Config
from ..config.values import webhook_url_problem
from ..store import Store
from ..store.times import iso, now, parse
from ..store.webhooks import FAMILIES, Delivery, Webhook, WebhookError
from .events import EventBus

log = logging.getLogger(__name__)

BATCH = 50  # deliveries to one webhook per pass, before the others get their turn
RETIRE_EVERY = 60.0  # seconds between the outbox's age and size checks
MAX_ANSWER = 4096  # bytes of a receiver's answer read (and kept, shortened, as the error)
USER_AGENT = "sms-gateway-webhooks/1"


class WebhookRefused(ValueError):
    """A webhook that cannot be added or removed as asked: ``field`` names the input at fault
    (short_code, url, events, id) and the message says what to do."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class DeliveryFailed(Exception):
    """A POST that did not end in a 2xx answer; the message says what happened."""


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Gateway-Signature`` value: ``sha256=`` and the hex HMAC-SHA256, keyed with the
    webhook's secret, of the timestamp, a dot and the body exactly as sent."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance: float = 300,
    at: float | None = None,
) -> bool:
    """What a receiver does (docs/webhooks.md): the signature matches, compared in constant
    time, and the timestamp is within ``tolerance`` seconds of now (a replay is refused)."""
    try:
        age = abs((time.time() if at is None else at) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


def body_of(delivery: Delivery) -> bytes:
    """The JSON body of a delivery: the same bytes on every attempt."""
    event = {
        "id": delivery.event_id,
        "type": delivery.type,
        "created_at": delivery.created_at,
        "data": json.loads(delivery.payload),
    }
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Answer:
    """A receiver's answer: the status and, for a redirect, where it pointed."""

    status: int
    location: str | None = None
    text: str = ""


def post(
    url: str, body: bytes, headers: dict[str, str], *, connect_timeout: float, read_timeout: float
) -> Answer:
    """POST ``body`` to ``url`` with the standard library: ``connect_timeout`` for the TCP (and
    TLS) connection, ``read_timeout`` for each read of the answer; certificates are checked
    for https. No redirect is followed. :class:`DeliveryFailed` when no answer came."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            host, parts.port, timeout=connect_timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=connect_timeout)
    try:
        try:
            conn.connect()
        except (OSError, ssl.SSLError, ValueError) as exc:  # ValueError: a host it cannot encode
            raise DeliveryFailed(f"cannot connect to {parts.netloc}: {_why(exc)}") from exc
        if conn.sock is not None:
            conn.sock.settimeout(read_timeout)
        try:
            conn.request("POST", target, body=body, headers=headers)
        except ValueError as exc:  # http.client's InvalidURL, a character it cannot send
            raise DeliveryFailed(f"the URL cannot be sent as it is: {exc}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryFailed(f"no answer from {parts.netloc}: {_why(exc)}") from exc
        try:
            resp = conn.getresponse()
            text = resp.read(MAX_ANSWER).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryFailed(f"no answer from {parts.netloc}: {_why(exc)}") from exc
        return Answer(resp.status, resp.getheader("Location"), text)
    finally:
        conn.close()


def _why(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


Poster = Callable[..., Answer]


class WebhookService:
    """The webhooks of every short code and the thread that delivers their events.

    Built once by :func:`gateway.services.build_services` (which keeps gateway.yaml's webhooks
    in the store through it); the daemon starts and stops the thread. ``clock`` and ``rng``
    are the tests' seams, and :meth:`run_once` is the thread's loop body."""

    def __init__(
        self,
        config: Config,
        store: Store,
        events: EventBus | None = None,
        *,
        clock: Callable[[], datetime] = now,
        rng: random.Random | None = None,
        poster: Poster = post,
    ) -> None:
        self.config = config
        self.store = store
        self.events = events
        self.clock = clock
        self.rng = rng or random.Random()
        self.poster = poster
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unlisten: Callable[[], None] | None = None
        self._next_retire: datetime | None = None  # on self.clock
        if store.check is None:
            # A store still being checked in the background takes no write yet: the daemon's
            # start() syncs once the check has passed, before anything can make an event.
            self.sync_config()

    # -- the webhooks ------------------------------------------------------------------------

    def sync_config(self) -> None:
        """Make gateway.yaml's webhooks the store's (added, changed, removed)."""
        wanted = [
            (sc.code, w.url, w.secret, tuple(w.events))
            for sc in self.config.short_codes
            for w in sc.webhooks
        ]
        changed = self.store.webhooks.sync_config(wanted)
        if changed:
            log.info("webhooks of the configuration file: %d changed in the store", changed)

    def add(
        self,
        short_code: str,
        url: str,
        events: Iterable[str] | None = None,
        *,
        user: str,
    ) -> Webhook:
        """A new webhook with a generated secret (returned in it); :class:`WebhookRefused`
        naming the field at fault."""
        try:
            self.config.short_code(short_code)
        except KeyError:
            codes = ", ".join(sc.code for sc in self.config.short_codes) or "none configured"
            raise WebhookRefused(
                "short_code", f"no short code {short_code!r} (short codes: {codes})"
            ) from None
        problem = webhook_url_problem(url)
        if problem is not None:
            raise WebhookRefused("url", problem)
        wanted = tuple(FAMILIES) if events is None else tuple(dict.fromkeys(events))
        unknown = [e for e in wanted if e not in FAMILIES]
        if unknown or not wanted:
            raise WebhookRefused(
                "events",
                f"unknown event {unknown[0]!r}; use some of {', '.join(FAMILIES)}"
                if unknown
                else f"name at least one of {', '.join(FAMILIES)}",
            )
        secret = secrets.token_hex(32)
        try:
            webhook = self.store.webhooks.add(short_code, url, secret, wanted, created_by=user)
        except WebhookError as exc:
            raise WebhookRefused("url", str(exc)) from exc
        self.store.audit.add(
            "webhook.add",
            actor=user,
            id=webhook.id,
            short_code=short_code,
            url=url,
            events=list(wanted),
        )
        return webhook

    def remove(self, webhook_id: int, *, user: str) -> Webhook:
        """Remove an admin's webhook and its deliveries; those of gateway.yaml are removed
        there."""
        found = self.store.webhooks.get(webhook_id)
        if found is None:
            raise WebhookRefused("id", f"no webhook {webhook_id} (gateway webhook list)")
        if found.source == "config":
            raise WebhookRefused(
                "id",
                f"webhook {webhook_id} comes from the configuration file (short code "
                f"{found.short_code}'s webhooks: in {self.config.source or 'gateway.yaml'});"
                " remove it there and restart the gateway",
            )
        self.store.webhooks.remove(webhook_id)
        self.store.audit.add("webhook.remove", actor=user, id=webhook_id, url=found.url)
        return found

    def all(self) -> list[Webhook]:
        return self.store.webhooks.all()

    def get(self, webhook_id: int) -> Webhook | None:
        return self.store.webhooks.get(webhook_id)

    def dead_letters(
        self, webhook_id: int | None = None, *, before: int | None = None, limit: int = 50
    ) -> list[Delivery]:
        return self.store.webhooks.dead_letters(webhook_id, before=before, limit=limit)

    def resend(
        self, delivery_ids: Iterable[int] = (), *, webhook_id: int | None = None, user: str
    ) -> int:
        """Dead letters back to the outbox (one, some, or all of a webhook's), at once."""
        ids = list(delivery_ids)
        n = self.store.webhooks.resend(ids, webhook_id=webhook_id)
        self.store.audit.add(
            "webhook.resend", actor=user, webhook_id=webhook_id, deliveries=ids[:20], count=n
        )
        self.wake()
        return n

    # -- the worker --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread; it wakes on every event of the bus."""
        if self._thread is not None:
            return
        self._stop.clear()
        self.sync_config()
        # A start is a good moment to try every receiver once (it may be back, and the wait
        # may have been long); a failure continues the backoff where it was.
        self.store.webhooks.retry_now()
        if self.events is not None:
            self._unlisten = self.events.listen(lambda _event: self._wake.set())
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after the POST in flight (bounded by the timeouts)."""
        self._stop.set()
        self._wake.set()
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        thread, self._thread = self._thread, None
        if thread is not None:
            d = self.config.webhook_delivery
            thread.join(d.connect_timeout_seconds + d.read_timeout_seconds + 5)
            if thread.is_alive():
                log.warning("the webhook thread did not stop in time; leaving it")

    def wake(self) -> None:
        """Look at the outbox now (a resend, a test)."""
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the pass: a commit during it wakes the next one
            try:
                delay = self.run_once()
            except Exception:  # a store fault, a bug: logged, tried again, never the end
                log.exception("webhook delivery pass failed; trying again in 30 s")
                delay = 30.0
            if delay is None or delay > 1.0:
                # Nothing due soon: the connection goes back to the store's pool meanwhile.
                self.store.release_connection()
            self._wake.wait(delay)

    def run_once(self) -> float | None:
        """One pass over the outbox: retire what is too old or too much (at most once a
        minute), then POST what is due, up to :data:`BATCH` per webhook. Returns the seconds
        until the next delivery is due (0: more is waiting now), None when nothing waits."""
        d = self.config.webhook_delivery
        at = self.clock()
        if self._next_retire is None or at >= self._next_retire:
            self._next_retire = at + timedelta(seconds=RETIRE_EVERY)
            done = self.store.webhooks.retire(
                older_than=iso(at - timedelta(hours=d.max_age_hours)),
                max_pending=d.max_pending,
                max_dead=d.max_dead,
                at=iso(at),
            )
            if any(done.values()):
                log.warning(
                    "webhooks: %d deliveries too old and %d over the backlog cap went to the"
                    " dead-letter list; %d dead letters over the cap forgotten",
                    done["aged"],
                    done["over_cap"],
                    done["discarded"],
                )
        delay: float | None = None
        for w in self.store.webhooks.with_pending():
            if self._stop.is_set():
                return 0.0
            retry_at = parse(w["retry_at"]) if w["retry_at"] else None
            if retry_at is not None and retry_at > at:
                wait = (retry_at - at).total_seconds()
            else:
                wait = self._deliver(int(w["id"]), w["url"], w["secret"], int(w["failing"]))
            if wait is not None:
                delay = wait if delay is None else min(delay, wait)
        if delay is not None and delay > 0 and not self.store.webhooks.has_pending():
            return None  # the last ones went to the dead-letter list: nothing to wait for
        return delay

    def _deliver(self, webhook_id: int, url: str, secret: str, failing: int) -> float | None:
        """POST up to a batch of one webhook's deliveries in order, stopping at the first
        failure. The seconds until this webhook is due again (None: its outbox is empty)."""
        d = self.config.webhook_delivery
        batch = self.store.webhooks.next_pending(webhook_id, limit=BATCH)
        for delivery in batch:
            if self._stop.is_set():
                return 0.0
            error = self._attempt(url, secret, delivery)
            stamp = iso(self.clock())
            if error is None:
                self.store.webhooks.delivered(delivery, stamp)
                failing = 0
                continue
            failing += 1
            backoff = min(d.retry_initial_seconds * 2 ** (failing - 1), d.retry_max_seconds)
            backoff *= self.rng.uniform(0.5, 1.0)  # jitter: receivers back up not all at once
            give_up = delivery.attempts + 1 >= d.max_attempts
            self.store.webhooks.attempt_failed(
                delivery,
                error,
                stamp,
                iso(self.clock() + timedelta(seconds=backoff)),
                give_up=give_up,
            )
            log.warning(
                "webhook %d (%s): event %s not delivered (attempt %d): %s; %s",
                webhook_id,
                url,
                delivery.event_id,
                delivery.attempts + 1,
                error,
                "moved to the dead-letter list" if give_up else f"next try in {backoff:.0f} s",
            )
            return backoff
        return 0.0 if len(batch) == BATCH else None

    def _attempt(self, url: str, secret: str, delivery: Delivery) -> str | None:
        """One POST; None when the receiver took it, else what went wrong."""
        d = self.config.webhook_delivery
        # Checked again at each attempt: a URL in the store is the admin's (the file,
        # Settings, the CLI), but a store restored from elsewhere is not.
        problem = webhook_url_problem(url)
        if problem is not None:
            return f"not sent: {problem}"
        body = body_of(delivery)
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Gateway-Event": delivery.event_id,
            "X-Gateway-Event-Type": delivery.type,
            "X-Gateway-Timestamp": stamp,
            "X-Gateway-Signature": sign(secret, stamp, body),
            "X-Gateway-Attempt": str(delivery.attempts + 1),
        }
        try:
            answer = self.poster(
                url,
                body,
                headers,
                connect_timeout=d.connect_timeout_seconds,
                read_timeout=d.read_timeout_seconds,
            )
        except DeliveryFailed as exc:
            return str(exc)
        except Exception as exc:  # a bug or a library's surprise: logged, and the attempt
            # counts, so that this delivery ends in the dead letters instead of blocking its
            # webhook's queue for good.
            log.exception("webhook POST to %s failed unexpectedly", url)
            return f"internal error while sending: {type(exc).__name__}: {exc}"
        if 200 <= answer.status < 300:
            return None
        if 300 <= answer.status < 400:
            return (
                f"the receiver answered {answer.status}, a redirect to {answer.location or '?'};"
                " redirects are not followed: configure the final URL"
            )
        text = " ".join(answer.text.split())[:200]
        return f"the receiver answered {answer.status}" + (f": {text}" if text else "")
