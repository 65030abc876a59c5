"""The modem manager: finds the modems, binds each to its configuration by IMEI or ICCID (never
by ``/dev/ttyUSBn``, which changes across reboots), and supervises each on its own thread.

For each configured modem a supervisor thread:
- locates its port: the configured one, or every candidate of the scan patterns, probed for an
  AT interface (modems expose several ports; only one answers) and identified by IMEI/ICCID
  without entering any PIN (a PIN is only ever entered into the modem it belongs to);
- opens it with the driver's start-up, announces it up, and sweeps messages already stored;
- answers new-message notices: read, hand the PDU up to be committed, only then delete it;
  the supervisor thread is the only one that reads or deletes the modem's storage (a notice only
  queues its slot for it), so a delete always concerns what that same thread just read and
  committed, never a slot the network refilled after another thread emptied it;
- keeps a heartbeat (``AT``, signal, registration) and a periodic storage sweep; two missed
  heartbeats mean a hung modem, which gets a reset; an unplugged one is announced down and
  found again, with backoff, when it comes back (on any port).

Finding ports (candidates, probing without a PIN, claims, the probe cache) is :mod:`.ports`;
this module supervises. A dead or hung modem blocks only its own supervisor. Hot-plug is
noticed through inotify (:mod:`.hotplug`), so an idle gateway sleeps until something changes or
a timer is due.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from .at import ATError, CommandError, CommandTimeout, PortGone
from .device import (
    Identity,
    Modem,
    ModemError,
    ModemSettings,
    SimPinRejected,
    SimPinRequired,
    SimPukRequired,
    StorageUsage,
    StoredMessage,
)
from .hotplug import HotplugWatcher, watch_dirs
from .ports import PortFinder, Probe, candidates, probe_port
from .states import ModemState, check_move
from .urc import (
    DirectMessage,
    DirectStatusReport,
    ModemEvent,
    ModemGone,
    ModemRestarted,
    NewMessage,
    Registration,
    RegistrationChanged,
    Signal,
    SignalChanged,
    StatusReportStored,
    StorageFull,
)

# Probe and probe_port live in .ports; they stay importable from here.
__all__ = ["ModemManager", "ModemSpec", "ModemStatus", "Probe", "probe_port"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModemSpec:
    """What the manager needs to know of one configured modem."""

    id: str
    imei: str | None = None
    iccid: str | None = None
    port: str | None = None
    label: str | None = None
    settings: ModemSettings = field(default_factory=ModemSettings)

    def matches(self, imei: str | None, iccid: str | None) -> bool:
        if self.imei:
            return imei == self.imei
        if self.iccid:
            return iccid is not None and iccid.rstrip("F") == self.iccid
        return True  # bound by port only


@dataclass
class ModemStatus:
    """The live state of one modem, for the Modems page and ``gateway modems``."""

    modem_id: str
    label: str | None = None
    state: ModemState = ModemState.SEARCHING  # changed by ModemManager._set only
    port: str | None = None
    identity: Identity | None = None
    signal: Signal | None = None
    registration: Registration | None = None
    operator: str | None = None
    storage: StorageUsage | None = None
    last_error: str | None = None
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    received: int = 0
    # How its sends go, from the dispatcher: {"state": "ok" | "failing" | "probing",
    # "failures", "reason", "since", "next_check"}; None until something went wrong.
    sending: dict[str, Any] | None = None

    @property
    def shown_state(self) -> str:
        """The state a person sees: an up modem that fails its sends is "failing" (out of
        routing) or "probing" (its check passed; the next message it sends decides)."""
        if self.state == ModemState.UP and self.sending and self.sending.get("state") != "ok":
            return str(self.sending["state"])
        return self.state

    def to_json(self) -> dict[str, Any]:
        ident = self.identity
        return {
            "id": self.modem_id,
            "label": self.label,
            "state": self.shown_state,
            "port": self.port,
            "since": self.since.isoformat(),
            "manufacturer": ident.manufacturer if ident else None,
            "model": ident.model if ident else None,
            "firmware": ident.firmware if ident else None,
            "family": ident.family if ident else None,
            "imei": ident.imei if ident else None,
            "imsi": ident.imsi if ident else None,
            "iccid": ident.iccid if ident else None,
            "number": ident.number if ident else None,
            "signal": (
                {"rssi": self.signal.rssi, "dbm": self.signal.dbm, "bars": self.signal.bars}
                if self.signal
                else None
            ),
            "registration": self.registration.status_text if self.registration else None,
            "registered": bool(self.registration and self.registration.registered),
            "operator": self.operator,
            "storage": (
                {
                    "memory": self.storage.read.storage,
                    "used": self.storage.read.used,
                    "total": self.storage.read.total,
                    "full": self.storage.full,
                }
                if self.storage
                else None
            ),
            "last_error": self.last_error,
            "received": self.received,
            "sending": dict(self.sending) if self.sending else None,
        }


class ModemManager:
    """Supervises every configured modem. Callbacks run on the modems' threads:

    - ``on_pdu(modem_id, pdu_hex, source)`` commits an inbound PDU and returns; if it raises,
      the PDU stays on the modem (it is read again by the next sweep);
    - ``on_up(modem_id, modem)`` / ``on_down(modem_id, reason)``;
    - ``on_status(status)`` after any change of a modem's state or health.
    """

    def __init__(
        self,
        specs: Iterable[ModemSpec],
        *,
        scan: Iterable[str],
        on_pdu: Callable[[str, str, str], None],
        on_up: Callable[[str, Modem], None] = lambda modem_id, modem: None,
        on_down: Callable[[str, str], None] = lambda modem_id, reason: None,
        on_status: Callable[[ModemStatus], None] = lambda status: None,
        heartbeat_seconds: float = 60.0,
        sweep_seconds: float = 300.0,
        reconnect_max_seconds: float = 60.0,
        probe_timeout: float = 2.0,
        probe_retry_seconds: float = 30.0,
    ) -> None:
        self.specs = {s.id: s for s in specs}
        self.scan = list(scan)
        self.on_pdu = on_pdu
        self.on_up = on_up
        self.on_down = on_down
        self.on_status = on_status
        self.heartbeat_seconds = heartbeat_seconds
        self.sweep_seconds = sweep_seconds
        self.reconnect_max_seconds = reconnect_max_seconds
        self.probe_timeout = probe_timeout
        self.probe_retry_seconds = probe_retry_seconds
        self._lock = threading.Lock()
        self._status: dict[str, ModemStatus] = {
            s.id: ModemStatus(s.id, s.label) for s in self.specs.values()
        }
        self._unconfigured: dict[str, ModemStatus] = {}
        self._modems: dict[str, Modem] = {}
        self._wake: dict[str, threading.Event] = {s: threading.Event() for s in self.specs}
        self._sweep_now: dict[str, threading.Event] = {s: threading.Event() for s in self.specs}
        # Slots announced by +CMTI/+CDSI, for the supervisor thread to read (it alone owns the
        # modem's storage: see _read_notified).
        self._notified: dict[str, queue.SimpleQueue[tuple[str | None, int]]] = {
            s: queue.SimpleQueue() for s in self.specs
        }
        self._reset_now: dict[str, threading.Event] = {s: threading.Event() for s in self.specs}
        self._stop = threading.Event()
        # Until set, a started modem is not announced up and its storage is neither read nor
        # deleted (start(hold_storage=True): the store's check at start is still running).
        self._storage_ready = threading.Event()
        self._threads: list[threading.Thread] = []
        self.hotplug = HotplugWatcher(
            watch_dirs(self.scan + [s.port for s in self.specs.values() if s.port])
        )
        self.ports = PortFinder(
            self.hotplug, probe_timeout=probe_timeout, retry_seconds=probe_retry_seconds
        )

    # -- public --------------------------------------------------------------------------

    def start(self, *, hold_storage: bool = False) -> None:
        """Start supervising. With ``hold_storage`` each modem is found, opened and negotiated
        with at once, but not announced up, and its storage neither read nor deleted, until
        :meth:`release_storage` (the daemon's store is still being checked: an SMS deleted
        from a SIM must have been committed to a sound store)."""
        if not hold_storage:
            self._storage_ready.set()
        self.hotplug.start()
        for spec in self.specs.values():
            t = threading.Thread(
                target=self._supervise, args=(spec,), name=f"modem-{spec.id}", daemon=True
            )
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._discover, name="modem-discovery", daemon=True)
        t.start()
        self._threads.append(t)

    def release_storage(self) -> None:
        """The store may take the modems' messages now: announce the started modems up and
        let them read (and, after each commit, delete) their storage."""
        self._storage_ready.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._storage_ready.set()  # a held supervisor wakes, sees the stop and closes
        for ev in self._wake.values():
            ev.set()
        self.hotplug.stop()
        with self._lock:
            modems = list(self._modems.values())
        for modem in modems:
            modem.close()
        for t in self._threads:
            t.join(timeout)

    def statuses(self) -> list[ModemStatus]:
        """Every configured modem's status, then modems found that no configuration names."""
        with self._lock:
            return [replace(s) for s in self._status.values()] + [
                replace(s) for s in self._unconfigured.values()
            ]

    def status(self, modem_id: str) -> ModemStatus:
        with self._lock:
            return replace(self._status[modem_id])

    def modem(self, modem_id: str) -> Modem | None:
        """The open Modem of that id, or None while it is not up."""
        with self._lock:
            return self._modems.get(modem_id)

    def request_sweep(self, modem_id: str) -> None:
        """Read the modem's storage now (commit, then delete) instead of at the next period."""
        self._sweep_now[modem_id].set()
        self._wake[modem_id].set()

    def request_reset(self, modem_id: str) -> None:
        """Reset the modem (as after a hang) on its own thread, if it is up; the status goes
        "starting", then "up" again (or "down" when it does not come back)."""
        self._reset_now[modem_id].set()
        self._wake[modem_id].set()

    def rescan(self) -> None:
        """Look for modems again now (also done on every hot-plug event)."""
        self.hotplug.notify()

    def set_sending(self, modem_id: str, sending: dict[str, Any]) -> None:
        """Show how the modem's sends go (the dispatcher's SendHealth snapshot)."""
        if modem_id in self._status:
            self._set(modem_id, sending=dict(sending))

    def check_sending(self, modem_id: str) -> str | None:
        """Whether a modem whose sends failed looks able to send again: its SIM is ready
        (``AT+CPIN?``) and it is registered (``AT+CREG?`` and kin). None when it is, else what
        is wrong. Read-only: no PIN is entered (that happens only at start-up, once). Runs on
        the caller's thread (the dispatcher's sender for this modem)."""
        modem = self.modem(modem_id)
        if modem is None:
            return "the modem is not up"
        try:
            cpin = modem.command("AT+CPIN?").prefixed("+CPIN")
            state = cpin[0].strip().strip('"').upper() if cpin else "no answer"
            if state != "READY":
                return f"the SIM is not ready (AT+CPIN? says {state})"
            registration = modem.registration()
        except (ATError, ModemError) as exc:
            return f"check failed: {exc}"
        self._set(modem_id, registration=registration)
        if not registration.registered:
            return f"not registered on a network ({registration.status_text})"
        return None

    # -- state ---------------------------------------------------------------------------

    def _set(self, modem_id: str, **changes: Any) -> None:
        with self._lock:
            status = self._status[modem_id]
            if "state" in changes:
                changes["state"] = check_move(status.state, changes["state"])
                if changes["state"] is not status.state:
                    changes.setdefault("since", datetime.now(UTC))
            for k, v in changes.items():
                setattr(status, k, v)
            snapshot = replace(status)
        try:
            self.on_status(snapshot)
        except Exception:
            log.exception("modem %s: status callback failed", modem_id)

    # -- finding ports -------------------------------------------------------------------

    def _candidates(self) -> list[str]:
        return candidates(self.scan)

    def _release(self, real: str, owner: str) -> None:
        if not self.ports.release(real, owner):
            return
        # Another supervisor may have skipped this port while we held it: let it look again
        # now rather than after its backoff.
        for modem_id, wake in self._wake.items():
            if modem_id != owner:
                wake.set()

    def _locate(self, spec: ModemSpec) -> tuple[str, str] | str | None:
        """(port, real device) of this modem, claimed for it; or why the configured port was
        refused (another modem answers there); or None when it was not found."""
        candidates = [spec.port] if spec.port else self._candidates()
        for port in candidates:
            real = os.path.realpath(port)
            if not os.path.exists(real) or not self.ports.claim(real, spec.id):
                continue
            if spec.port and not (spec.imei or spec.iccid):
                return port, real
            probe = self.ports.probe(
                port, spec.settings, want_iccid=bool(spec.iccid) and not spec.imei
            )
            if probe is not None and spec.matches(probe.imei, probe.iccid):
                with self._lock:
                    self._unconfigured.pop(real, None)
                return port, real
            self._release(real, spec.id)
            if spec.port and probe is not None:
                wanted = f"IMEI {spec.imei}" if spec.imei else f"ICCID {spec.iccid}"
                return (
                    f"{port} is IMEI {probe.imei or 'unknown'} (ICCID "
                    f"{probe.iccid or 'not read'}), not the configured {wanted}: refusing it; "
                    "fix the port or the IMEI/ICCID in the configuration"
                )
        return None

    def _discover(self) -> None:
        """List AT ports that no configured modem claims, as 'unconfigured' modems."""
        seen = -1
        timeout: float | None = 0.0
        bound_ports = {os.path.realpath(s.port) for s in self.specs.values() if s.port}
        while not self._stop.is_set():
            seen = self.hotplug.wait(seen, timeout)
            if self._stop.is_set():
                return
            for ev in self._wake.values():
                ev.set()  # searching supervisors look again
            found: dict[str, ModemStatus] = {}
            pending = False
            for port in self._candidates():
                real = os.path.realpath(port)
                if self.ports.claim(real, "probe"):
                    try:
                        probe = self.ports.probe(port)
                    finally:
                        self._release(real, "probe")
                else:
                    # A supervisor holds it: in use, or being probed right now. Its probe
                    # lands in the cache; until it does, look again shortly.
                    known, probe = self.ports.cached(port)
                    if not known:
                        pending = pending or real not in bound_ports
                        continue
                if probe is None or probe.imei is None:
                    continue
                if any(
                    s.matches(probe.imei, probe.iccid) and (s.imei or s.iccid)
                    for s in self.specs.values()
                ):
                    continue
                found[real] = ModemStatus(
                    f"imei:{probe.imei}",
                    None,
                    ModemState.UNCONFIGURED,
                    port,
                    Identity("unknown", None, None, None, probe.imei, None, probe.iccid, None),
                    last_error="not in the configuration: add it under modems: to use it",
                )
            with self._lock:
                new = set(found) - set(self._unconfigured)
                self._unconfigured = found
            # Supervisors that found a port busy with our probes may look again now.
            for ev in self._wake.values():
                ev.set()
            for real in new:
                log.warning(
                    "found a modem that is not configured: IMEI %s on %s",
                    found[real].identity.imei if found[real].identity else "?",
                    found[real].port,
                )
                try:
                    self.on_status(replace(found[real]))
                except Exception:
                    log.exception("status callback failed for %s", found[real].port)
            if pending:
                timeout = min(1.0, self.probe_timeout * 2)
            else:
                timeout = None if self.hotplug.active else 60.0

    # -- supervising ---------------------------------------------------------------------

    def _supervise(self, spec: ModemSpec) -> None:
        backoff = 1.0
        seen = self.hotplug.generation
        while not self._stop.is_set():
            located = self._locate(spec)
            if isinstance(located, str):
                # The wrong modem on the configured port: never use it, keep looking in case
                # the right one is plugged in there.
                if self.status(spec.id).last_error != located:
                    log.error("modem %s: %s", spec.id, located)
                self._set(spec.id, state=ModemState.FAILED, port=None, last_error=located)
                seen = self._wait_for_change(spec.id, seen, backoff)
                backoff = min(backoff * 2, self.reconnect_max_seconds)
                continue
            if located is None:
                self._set(spec.id, state=ModemState.SEARCHING, port=None)
                seen = self._wait_for_change(spec.id, seen, backoff)
                backoff = min(backoff * 2, self.reconnect_max_seconds)
                continue
            port, real = located
            try:
                reason = self._run_modem(spec, port)
            except Exception as exc:  # the supervisor must outlive any bug in one modem's run
                log.exception("modem %s: supervisor error", spec.id)
                self._set(spec.id, state=ModemState.DOWN, last_error=f"internal error: {exc!r}")
                reason = repr(exc)
            finally:
                self._release(real, spec.id)
            if reason is None or self._stop.is_set():
                return
            seen = self._wait_for_change(spec.id, seen, backoff)
            backoff = min(backoff * 2, self.reconnect_max_seconds)

    def _wait_for_change(self, modem_id: str, seen: int, timeout: float) -> int:
        # Block until hot-plug says something changed (discovery sets our wake event), or the
        # backoff passes: a modem that hung without unplugging may also come back.
        wake = self._wake[modem_id]
        wake.wait(timeout)
        wake.clear()
        return self.hotplug.generation

    def _run_modem(self, spec: ModemSpec, port: str) -> str | None:
        """Open, serve and watch one modem until it goes away; returns why (None: stopping
        or a failure that retrying cannot fix)."""
        self._set(spec.id, state=ModemState.STARTING, port=port, last_error=None)
        self._reset_now[spec.id].clear()  # a reset asked for while it was not up is moot
        modem = Modem(port, spec.settings, on_event=lambda ev: self._on_event(spec, modem, ev))
        try:
            modem.open()
            identity = modem.identify()
        except (SimPinRejected, SimPukRequired, SimPinRequired) as exc:
            # Never retried: a wrong PIN tried again locks the SIM into PUK.
            log.error("modem %s: %s", spec.id, exc)
            self._set(spec.id, state=ModemState.FAILED, last_error=str(exc))
            modem.close()
            return None
        except (ATError, ModemError, OSError) as exc:
            log.warning("modem %s on %s did not start: %s", spec.id, port, exc)
            self._set(spec.id, state=ModemState.DOWN, last_error=str(exc))
            modem.close()
            return str(exc)
        if not spec.matches(identity.imei, identity.iccid):
            why = (
                f"{port} is IMEI {identity.imei} / ICCID {identity.iccid}, not the configured "
                f"{spec.imei or spec.iccid}"
            )
            log.error("modem %s: %s", spec.id, why)
            self._set(spec.id, state=ModemState.DOWN, last_error=why)
            modem.close()
            return why
        self._storage_ready.wait()  # see start(hold_storage=True)
        if self._stop.is_set():
            modem.close()
            return None
        with self._lock:
            self._modems[spec.id] = modem
        self._set(spec.id, state=ModemState.UP, identity=identity, last_error=None)
        log.info(
            "modem %s up on %s (IMEI %s, %s %s)",
            spec.id,
            port,
            identity.imei,
            identity.manufacturer,
            identity.model,
        )
        reason = "stopped"
        try:
            self.on_up(spec.id, modem)
            try:
                self._health(spec, modem)
            except CommandTimeout as exc:
                # The heartbeat of _watch counts it as missed and resets the modem if need be.
                log.warning("modem %s: no health reading after start-up: %s", spec.id, exc)
            self._safe_sweep(spec, modem)
            reason = self._watch(spec, modem)
        except PortGone as exc:
            reason = f"the port went away: {exc.why}"
        finally:
            with self._lock:
                self._modems.pop(spec.id, None)
            modem.close()
            if not self._stop.is_set():
                log.warning("modem %s down: %s", spec.id, reason)
                self._set(spec.id, state=ModemState.DOWN, last_error=reason)
            try:
                self.on_down(spec.id, reason)
            except Exception:
                log.exception("modem %s: down callback failed", spec.id)
        return None if self._stop.is_set() else reason

    def _watch(self, spec: ModemSpec, modem: Modem) -> str:
        """Heartbeats and sweeps until the modem dies; returns why it stopped."""
        wake = self._wake[spec.id]
        missed = 0
        next_beat = time.monotonic() + self.heartbeat_seconds
        next_sweep = time.monotonic() + self.sweep_seconds
        while not self._stop.is_set():
            wait = max(0.0, min(next_beat, next_sweep) - time.monotonic())
            wake.wait(wait)
            wake.clear()
            if self._stop.is_set():
                return "stopped"
            if not modem.is_open:
                return "the modem stopped answering or was unplugged"
            if self._reset_now[spec.id].is_set():
                self._reset_now[spec.id].clear()
                failed = self._reset(spec, modem, "reset on request")
                if failed:
                    return failed
                missed = 0
                next_beat = time.monotonic() + self.heartbeat_seconds
            self._read_notified(spec, modem)
            now = time.monotonic()
            if self._sweep_now[spec.id].is_set() or now >= next_sweep:
                self._sweep_now[spec.id].clear()
                self._safe_sweep(spec, modem)
                next_sweep = time.monotonic() + self.sweep_seconds
            if now >= next_beat:
                try:
                    try:
                        modem.ping()
                    except CommandError as exc:  # an odd answer is still an answer
                        log.info("modem %s: heartbeat answered %s", spec.id, exc.final)
                    missed = 0
                    self._health(spec, modem)
                except CommandTimeout as exc:
                    missed += 1
                    log.warning("modem %s: missed heartbeat %d: %s", spec.id, missed, exc)
                    if missed >= 2:
                        failed = self._reset(spec, modem, "hung")
                        if failed:
                            return failed
                        missed = 0
                next_beat = time.monotonic() + (
                    self.heartbeat_seconds if missed == 0 else min(5.0, self.heartbeat_seconds)
                )
        return "stopped"

    def _reset(self, spec: ModemSpec, modem: Modem, why: str) -> str | None:
        """Reset the modem on its supervisor's thread; None when it is back up, else why not."""
        log.warning("modem %s: %s; resetting it", spec.id, why)
        self._set(spec.id, state=ModemState.STARTING, last_error=f"{why}; resetting it")
        try:
            modem.reset()
        except (ATError, ModemError) as exc:
            return f"{why}, and the reset failed: {exc}"
        self._set(spec.id, state=ModemState.UP, last_error=None)
        try:
            self._health(spec, modem)
        except CommandTimeout as exc:
            log.warning("modem %s: no health reading after the reset: %s", spec.id, exc)
        self._safe_sweep(spec, modem)
        return None

    def _health(self, spec: ModemSpec, modem: Modem) -> None:
        changes: dict[str, Any] = {}
        try:
            changes["signal"] = modem.signal()
        except (CommandError, ModemError) as exc:
            log.info("modem %s: no signal reading: %s", spec.id, exc)
        try:
            changes["registration"] = modem.registration()
        except (CommandError, ModemError) as exc:
            log.info("modem %s: no registration reading: %s", spec.id, exc)
        try:
            changes["operator"] = modem.operator()
        except (CommandError, ModemError) as exc:
            log.info("modem %s: no operator reading: %s", spec.id, exc)
        if changes:
            self._set(spec.id, **changes)

    # -- messages ------------------------------------------------------------------------

    def _safe_sweep(self, spec: ModemSpec, modem: Modem) -> None:
        """A sweep whose failure is logged and retried at the next one (PortGone goes up)."""
        try:
            self._sweep(spec, modem)
        except (CommandTimeout, CommandError, ModemError) as exc:
            log.warning("modem %s: storage sweep failed: %s", spec.id, exc)

    def _sweep(self, spec: ModemSpec, modem: Modem) -> None:
        """Everything stored on the modem: commit, then delete. Also frees the space that read
        messages hold (a SIM800 says nothing when its storage is full)."""
        for stored in modem.list_messages():
            self._take(spec, modem, stored, "sweep")
        try:
            self._set(spec.id, storage=modem.storage_usage())
        except (CommandError, ModemError) as exc:
            log.info("modem %s: storage usage unknown: %s", spec.id, exc)

    def _take(self, spec: ModemSpec, modem: Modem, stored: StoredMessage, source: str) -> None:
        if not stored.pdu:
            log.warning(
                "modem %s: %s index %d has no PDU; left in place",
                spec.id,
                stored.storage,
                stored.index,
            )
            return
        pdu = stored.pdu
        # A few firmwares store PDUs without the SMSC field: length equals the whole PDU.
        if stored.length is not None and len(pdu) == 2 * stored.length:
            pdu = "00" + pdu
        try:
            self.on_pdu(spec.id, pdu, f"{source} {stored.storage}:{stored.index}")
        except Exception:
            log.exception(
                "modem %s: could not commit %s index %d; it stays on the modem",
                spec.id,
                stored.storage,
                stored.index,
            )
            return
        modem.delete(stored.index, stored.storage)
        with self._lock:
            status = self._status[spec.id]
            status.received += 1
            snapshot = replace(status)
        try:
            self.on_status(snapshot)
        except Exception:
            log.exception("modem %s: status callback failed", spec.id)

    def _read_notified(self, spec: ModemSpec, modem: Modem) -> None:
        """Read, commit and delete every slot a notice announced, on the supervisor thread.

        Only this thread reads or deletes the modem's storage, one slot at a time from read to
        delete, so the slot it deletes still holds what it read: the network fills only empty
        slots, and nobody else empties one in between. (A sweep on this same thread and a notice
        handled on the modem's event thread once did both, and the second delete of a slot the
        network had refilled lost a text.)"""
        notified = self._notified[spec.id]
        while True:
            try:
                storage, index = notified.get_nowait()
            except queue.Empty:
                return
            try:
                stored = modem.read(index, storage)
            except (CommandError, CommandTimeout, ModemError) as exc:
                log.warning(
                    "modem %s: reading %s:%d failed (%s); the sweep will retry",
                    spec.id,
                    storage,
                    index,
                    exc,
                )
                self._sweep_now[spec.id].set()
                self._wake[spec.id].set()
                continue
            if stored is not None:
                self._take(spec, modem, stored, "+CMTI")

    def _on_event(self, spec: ModemSpec, modem: Modem, event: ModemEvent) -> None:
        """Runs on the Modem's event thread: it may call the Modem back, but never reads or
        deletes its storage (that is the supervisor's, see _read_notified)."""
        if isinstance(event, NewMessage | StatusReportStored):
            self._notified[spec.id].put((event.storage, event.index))
            self._wake[spec.id].set()
        elif isinstance(event, DirectMessage | DirectStatusReport):
            pdu = event.pdu
            if event.length is not None and len(pdu) == 2 * event.length:
                pdu = "00" + pdu
            # Raising here makes the Modem answer AT+CNMA=2, so the network delivers it again.
            self.on_pdu(spec.id, pdu, "+CMT" if isinstance(event, DirectMessage) else "+CDS")
        elif isinstance(event, SignalChanged):
            self._set(spec.id, signal=event.signal)
        elif isinstance(event, RegistrationChanged):
            self._set(spec.id, registration=event.registration)
        elif isinstance(event, StorageFull | ModemRestarted):
            self.request_sweep(spec.id)
        elif isinstance(event, ModemGone):
            self._wake[spec.id].set()
