"""The daemon: wires the store, the modems, the dispatcher and the web app into one process.

Start order matters for "nothing lost": the store opens (and migrates) first; PDUs committed
before a crash but never processed are processed; messages caught mid-send go back to the
queue; only then do modems start delivering new PDUs and the web app take requests.
Shutdown on SIGTERM stops taking requests, lets each modem finish the command in flight, and
closes the store last.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from .config import Config, ModemConfig
from .control import ControlServer
from .housekeeping import Housekeeper
from .messaging.dispatcher import Dispatcher
from .messaging.events import EventBus
from .messaging.inbound import Inbound
from .messaging.outbound import IdempotencyConflict, Outbox, SendRefused
from .messaging.requests import SendRequest
from .modem.device import Modem, ModemSettings
from .modem.manager import ModemManager, ModemSpec, ModemStatus
from .sdnotify import notify, watchdog_interval
from .store import Store
from .web.context import GatewayContext

log = logging.getLogger(__name__)


class DaemonError(RuntimeError):
    """The gateway cannot start; the message says what to fix."""


def modem_specs(config: Config) -> list[ModemSpec]:
    """The manager's view of the configured modems."""
    return [
        ModemSpec(
            id=m.id,
            imei=m.imei,
            iccid=m.iccid,
            port=m.port,
            label=m.label,
            settings=_settings(config, m),
        )
        for m in config.modems
    ]


def _settings(config: Config, m: ModemConfig) -> ModemSettings:
    return ModemSettings(
        baudrate=m.baudrate,
        rtscts=m.rtscts,
        pin=m.pin,
        command_timeout=config.modem_manager.command_timeout_seconds,
        # The '> ' prompt is an immediate answer like any command's; with the driver's own
        # default a hung modem held its sender (and its heartbeat) for that long whatever the
        # configured command timeout.
        prompt_timeout=config.modem_manager.command_timeout_seconds,
        send_timeout=config.modem_manager.send_timeout_seconds,
    )


@dataclass
class Daemon:
    """One running gateway. ``start()`` returns once everything is up; ``stop()`` undoes it."""

    config: Config
    demo: bool = False
    web: bool = True
    store: Store | None = None
    events: EventBus = field(default_factory=EventBus)
    sim_network: Any = None
    sim_control: Any = None
    sim_server: Any = None
    manager: ModemManager | None = None
    dispatcher: Dispatcher | None = None
    outbox: Outbox | None = None
    inbound: Inbound | None = None
    housekeeper: Housekeeper | None = None
    control: ControlServer | None = None
    web_server: Any = None
    on_started: Any = None  # called with the daemon once everything is up (the demo banner)
    _stopped: threading.Event = field(default_factory=threading.Event)
    _watchdog: threading.Thread | None = None

    # -- start ---------------------------------------------------------------------------

    def start(self) -> None:
        cfg = self.config
        self.store = Store.open(cfg.data_dir)
        if self.demo:
            from .demo import seed

            seed(cfg, self.store)
        self.dispatcher = Dispatcher(cfg, self.store, self.events)
        self.outbox = Outbox(cfg, self.store, self.events, self.dispatcher.wake)
        self.inbound = Inbound(cfg, self.store, self.events, self.outbox)
        self.dispatcher.on_part_sent = self.inbound.part_sent
        self.inbound.recover()
        scan = list(cfg.modem_manager.scan)
        if cfg.simulator is not None:
            scan = self._start_simulator()
        self.manager = ModemManager(
            modem_specs(cfg),
            scan=scan,
            on_pdu=self._on_pdu,
            on_up=self._on_up,
            on_down=self._on_down,
            on_status=self._on_status,
            heartbeat_seconds=cfg.modem_manager.heartbeat_seconds,
            sweep_seconds=cfg.modem_manager.sweep_seconds,
            reconnect_max_seconds=cfg.modem_manager.reconnect_max_seconds,
        )
        # A modem that fails its sends is checked by the manager and shown with its status.
        self.dispatcher.probe = self.manager.check_sending
        self.dispatcher.on_health = self.manager.set_sending
        self.dispatcher.start()
        self.manager.start()
        self.housekeeper = Housekeeper(cfg, self.store, self.inbound, self.events)
        self.housekeeper.start()
        self.control = ControlServer(
            cfg.data_dir, {"ping": self._op_ping, "send": self._op_send, "modems": self._op_modems}
        )
        self.control.start()
        if self.web:
            self._start_web()
        notify("READY=1\nSTATUS=running")
        interval = watchdog_interval()
        if interval:
            self._watchdog = threading.Thread(
                target=self._watchdog_loop, args=(interval,), name="watchdog", daemon=True
            )
            self._watchdog.start()
        log.info(
            "gateway running: %d modem(s), %d short code(s)", len(cfg.modems), len(cfg.short_codes)
        )

    def _start_simulator(self) -> list[str]:
        from .sim import ControlServer as SimServer
        from .sim import Network, SimControl
        from .sim.network import DEFAULT_REPORT_DELAY

        sim = self.config.simulator
        assert sim is not None and sim.dir is not None
        delay = sim.status_report_delay
        self.sim_network = Network(
            sim.dir,
            seed=sim.seed,
            status_report_delay=DEFAULT_REPORT_DELAY if delay is None else delay,
        )
        for m in sim.modems:
            self.sim_network.add_modem(
                family=m.family,
                number=m.number,
                imei=m.imei,
                iccid=m.iccid,
                storage_capacity=m.storage_capacity,
                command_latency=m.command_latency,
                send_latency=m.send_latency,
            )
        for h in sim.handsets:
            self.sim_network.add_handset(h.number)
        self.sim_control = SimControl(self.sim_network)
        if sim.control_port is not None:
            self.sim_server = SimServer(self.sim_control, port=sim.control_port).start()
            log.info("simulator control API on %s", self.sim_server.url)
        # Only the simulator's ports: a demo never touches a real modem plugged into the box.
        return [str(self.sim_network.by_id_dir / "*")]

    def _start_web(self) -> None:
        from .web.server import WebServer

        assert self.store and self.outbox
        ctx = GatewayContext(
            config=self.config,
            store=self.store,
            events=self.events,
            outbox=self.outbox,
            dispatcher=self.dispatcher,
            manager=self.manager,
            sim=self.sim_control,
            demo=self.demo,
        )
        self.web_server = WebServer(ctx)
        self.web_server.start()

    # -- callbacks from the modems -------------------------------------------------------

    def _on_pdu(self, modem_id: str, pdu_hex: str, source: str) -> None:
        assert self.inbound is not None
        self.inbound.receive(modem_id, pdu_hex, source=source)

    def _on_up(self, modem_id: str, modem: Modem) -> None:
        assert self.store and self.manager
        status = self.manager.status(modem_id)
        ident = status.identity
        label = None
        with contextlib.suppress(KeyError):  # a modem found but not configured has no label
            label = self.config.modem(modem_id).label
        self.store.modems.seen(
            modem_id,
            imei=ident.imei if ident else None,
            iccid=ident.iccid if ident else None,
            imsi=ident.imsi if ident else None,
            number=ident.number if ident else None,
            label=label,
            manufacturer=ident.manufacturer if ident else None,
            model=ident.model if ident else None,
            firmware=ident.firmware if ident else None,
        )
        # The dispatcher already knows: the manager's status change ran _follow_state.
        self.events.publish("modem.up", id=modem_id)

    def _on_down(self, modem_id: str, reason: str) -> None:
        assert self.store is not None
        self.store.modems.down(modem_id)
        self.events.publish("modem.down", id=modem_id, reason=reason)

    def _on_status(self, status: ModemStatus) -> None:
        self.events.publish("modem.health", **status.to_json())
        self._follow_state(status.modem_id)

    def _follow_state(self, modem_id: str) -> None:
        """The one place that tells the dispatcher whether a modem can take messages: when the
        manager calls it up and its network is there. Run on every status change, so that a
        hung modem being reset in place (no on_down/on_up around it, and the reset may take
        minutes) or one that lost its network gives its queue to the rest of the pool."""
        if self.manager is None or self.dispatcher is None:
            return
        try:
            status = self.manager.status(modem_id)  # now, not the snapshot: no stale 'up'
        except KeyError:
            return  # a modem found that no configuration names
        modem = self.manager.modem(modem_id)
        # A modem that answers but has lost its network cannot send: treat it as down, so its
        # profiles move to the rest of the pool after the grace (unknown registration is fine).
        registered = status.registration is None or status.registration.registered
        if status.state == "up" and modem is not None and registered:
            if not self.dispatcher.healthy(modem_id):
                self.dispatcher.modem_up(modem_id, modem)
        elif self.dispatcher.healthy(modem_id):
            self.dispatcher.modem_down(modem_id)

    # -- control socket ------------------------------------------------------------------

    def _op_ping(self, request: dict) -> dict:
        return {"ok": True}

    def _op_send(self, request: dict) -> dict:
        assert self.outbox is not None
        try:
            # The same rules as the web API and the form (messaging/requests.py).
            req = SendRequest.from_mapping(request, user=True, ignore=frozenset({"op"}))
            acc = self.outbox.submit(
                req.text,
                to=req.to,
                short_code=req.short_code,
                idempotency_key=req.idempotency_key,
                user=req.user or "cli",
            )
        except SendRefused as exc:
            reply = {"ok": False, "field": exc.field, "error": exc.reason}
            if isinstance(exc, IdempotencyConflict):
                reply["conflict"] = True
            return reply
        return {
            "ok": True,
            "id": acc.message_id,
            "to": acc.phone,
            "short_code": acc.short_code,
            "parts": acc.parts,
            "encoding": acc.encoding,
            "created": acc.created,
        }

    def _op_modems(self, request: dict) -> dict:
        assert self.manager is not None
        return {"ok": True, "modems": [s.to_json() for s in self.manager.statuses()]}

    # -- running and stopping ------------------------------------------------------------

    def _watchdog_loop(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            alive = self.dispatcher is not None and self.dispatcher.alive
            if alive:
                notify("WATCHDOG=1")
            else:
                log.error("dispatcher thread is dead; not feeding the watchdog")

    def run_forever(self) -> None:
        """Start, then block until SIGTERM or SIGINT, then stop cleanly."""
        stop = threading.Event()

        def handler(signum: int, frame: object) -> None:
            log.info("received %s; shutting down", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        self.start()
        if self.on_started is not None:
            self.on_started(self)
        try:
            stop.wait()
        finally:
            self.stop()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        notify("STOPPING=1")
        for name, closer in (
            ("web", lambda: self.web_server and self.web_server.stop()),
            ("control", lambda: self.control and self.control.close()),
            ("housekeeping", lambda: self.housekeeper and self.housekeeper.stop()),
            ("dispatcher", lambda: self.dispatcher and self.dispatcher.stop()),
            ("modems", lambda: self.manager and self.manager.stop()),
            ("simulator control", lambda: self.sim_server and self.sim_server.close()),
            ("simulator", lambda: self.sim_network and self.sim_network.close()),
            ("store", lambda: self.store and self.store.close()),
        ):
            try:
                closer()
            except Exception:  # keep closing the rest; the store must still be closed
                log.exception("stopping %s failed", name)
        log.info("gateway stopped")
