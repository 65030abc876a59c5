"""Timed chores of the daemon on one thread that sleeps until the next one is due: turning
stale incomplete messages into messages with markers, expiring keyword paths whose time ran out,
the nightly backup, and retention.
Nothing here runs (or writes to the SD card) while nothing is due."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from .config import Config
from .messaging.events import EventBus
from .messaging.inbound import Inbound
from .store import Store, StoreDamaged, StoreError
from .store.times import iso, now

log = logging.getLogger(__name__)


def next_daily(at: datetime, hour: int, minute: int, tz) -> datetime:
    """The next moment at hour:minute local time strictly after ``at``."""
    local = at.astimezone(tz)
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= local:
        target += timedelta(days=1)
    return target


class Housekeeper:
    """Runs the chores; ``poke()`` makes it look again (a new incomplete message arrived)."""

    def __init__(self, config: Config, store: Store, inbound: Inbound, events: EventBus) -> None:
        self.config = config
        self.store = store
        self.inbound = inbound
        self.events = events
        self._stop = threading.Event()
        self._wake = inbound.stale_changed
        self._thread = threading.Thread(target=self._run, name="housekeeping", daemon=True)
        bt = config.retention.backup_time
        self._next_backup = next_daily(now(), bt.hour, bt.minute, config.tz)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            timeouts: list[float] = []
            try:
                flush_in = self.inbound.flush_stale()
                if flush_in is not None:
                    timeouts.append(flush_in + 0.5)
                # Keyword paths whose time ran out are recorded as expired when it does.
                expire_in = self.inbound.optin.expire_due()
                if expire_in is not None:
                    timeouts.append(expire_in + 0.5)
                if self.config.retention.nightly_backups and now() >= self._next_backup:
                    self.nightly()
                timeouts.append((self._next_backup - now()).total_seconds())
            except Exception:  # a failed chore is logged and retried later, never fatal
                log.exception("housekeeping failed; trying again in a minute")
                timeouts.append(60.0)
            # Hours between chores: the connection goes back to the store's pool meanwhile.
            self.store.release_connection()
            self._wake.wait(max(0.5, min(timeouts)))
            self._wake.clear()

    def nightly(self) -> None:
        """The nightly backup (keeping the configured number) and retention."""
        bt = self.config.retention.backup_time
        self._next_backup = next_daily(now(), bt.hour, bt.minute, self.config.tz)
        try:
            path = self.store.nightly_backup(self.config.retention.nightly_backups)
            log.info("nightly backup written to %s", path)
        except StoreDamaged as exc:
            # The older backups were kept; retention would only delete more of a damaged file.
            log.critical("nightly backup refused, retention skipped: %s", exc)
            self.events.publish("backup.failed", error=str(exc))
            return
        except StoreError as exc:
            log.error("nightly backup failed: %s", exc)
            self.events.publish("backup.failed", error=str(exc))
        retention = self.config.retention
        removed = self.store.purge(
            messages_before=iso(now() - timedelta(days=retention.messages_days))
            if retention.messages_days
            else None,
            raw_pdus_before=iso(now() - timedelta(days=retention.raw_pdus_days)),
        )
        if any(removed.values()):
            log.info("retention removed %s", removed)
