"""The gateway's services, built in one place: the store, the event bus, the outbox, inbound,
the dispatcher, the profile service, subscriptions, the agent desk, the modem manager and the
simulator.

:func:`build_services` is the only code that constructs them and connects them to each other;
the daemon, the demo, the web app's tests and the other test setups all call it, and the web
app is handed the :class:`Services` it returns (``create_app(services)``). Building opens the
store (and migrates it) and, when the configuration has a ``simulator:``, brings up its modems'
ports; it starts no thread of the gateway's own: :class:`gateway.daemon.Daemon` starts and stops
them, in the order "nothing lost" asks for.

This module sits beside the daemon, above the layers: it imports messaging, store and modem;
the web reads the result through ``gateway/web/context.py`` only.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from . import memory
from .config import Config, ModemConfig
from .messaging.agent import AgentDesk
from .messaging.broadcasts import BroadcastService
from .messaging.dispatcher import Dispatcher
from .messaging.events import EventBus
from .messaging.inbound import Inbound
from .messaging.optin import KeywordBook
from .messaging.outbound import Outbox
from .messaging.profiles import ProfileService
from .messaging.subscriptions import Subscriptions
from .messaging.webhooks import WebhookService
from .modem.device import Modem, ModemSettings
from .modem.manager import ModemManager, ModemSpec, ModemStatus
from .store import Store
from .store.times import now

if TYPE_CHECKING:
    from .sim import ControlServer as SimServer
    from .sim import Network, SimControl

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Simulator:
    """The simulated network the gateway drives in place of modems (the demo, tests): its
    modems' ports, the handle the Phones page uses, and the JSON control API when
    ``simulator.control_port`` is set."""

    network: Network
    control: SimControl
    server: SimServer | None = None

    def scan(self) -> list[str]:
        """Where the manager looks for ports: only the simulator's, so that a demo never
        touches a real modem plugged into the box."""
        return [str(self.network.by_id_dir / "*")]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.network.close()


@dataclass(frozen=True)
class Services:
    """The services of one gateway, complete from construction. ``manager`` is None when the
    services were built without modems (the web app's and the messaging tests); ``simulator``
    is set when the configuration runs the simulator (the demo)."""

    config: Config
    store: Store
    events: EventBus
    dispatcher: Dispatcher
    outbox: Outbox
    inbound: Inbound
    profiles: ProfileService
    subscriptions: Subscriptions
    desk: AgentDesk
    keywords: KeywordBook  # the team's keywords per short code (Settings, `gateway keyword`)
    broadcasts: BroadcastService
    webhooks: WebhookService
    manager: ModemManager | None = None
    simulator: Simulator | None = None
    demo: bool = False

    def close(self) -> None:
        """Close what building opened: the simulator, then the store. The threads are the
        daemon's to stop first."""
        for name, closer in (
            ("simulator", self.simulator.close if self.simulator is not None else None),
            ("store", self.store.close),
        ):
            if closer is None:
                continue
            try:
                closer()
            except Exception:  # keep closing the rest; the store must still be closed
                log.exception("closing the %s failed", name)


def build_services(
    config: Config,
    *,
    demo: bool = False,
    modems: bool = True,
    store: Store | None = None,
    events: EventBus | None = None,
    clock: Callable[[], datetime] = now,
    check_in_background: bool = False,
) -> Services:
    """Build and connect the gateway's services for ``config``.

    ``modems=False`` leaves out the modem manager and the simulator (the web app's and the
    messaging tests drive the dispatcher with links of their own). ``store`` and ``events``
    reuse ones already open (a test that rebuilds the services over the same store);
    otherwise the store in ``config.data_dir`` is opened here (its check at start on a thread of
    its own with ``check_in_background``: see :meth:`Store.open`). ``clock`` is the dispatcher's
    (tests move time). On an error, what was opened here is closed again.
    """
    own_store = store is None
    if store is None:
        store = Store.open(config.data_dir, check_in_background=check_in_background)
    simulator: Simulator | None = None
    try:
        events = EventBus() if events is None else events
        dispatcher = Dispatcher(config, store, events, clock=clock)
        outbox = Outbox(config, store, events, dispatcher.wake)
        subscriptions = Subscriptions(store, events)
        inbound = Inbound(config, store, events, outbox, subscriptions=subscriptions)
        # A status report that overtook its part's +CMGS answer is matched once the part is
        # recorded as sent.
        dispatcher.on_part_sent = inbound.part_sent
        manager: ModemManager | None = None
        if modems:
            scan = list(config.modem_manager.scan)
            if config.simulator is not None:
                simulator = _simulator(config)
                scan = simulator.scan()
            manager = _manager(config, store, events, dispatcher, inbound, scan)
        return Services(
            config=config,
            store=store,
            events=events,
            dispatcher=dispatcher,
            outbox=outbox,
            inbound=inbound,
            profiles=ProfileService(config, store, events, subscriptions=subscriptions),
            subscriptions=subscriptions,
            desk=AgentDesk(config, store, events),
            keywords=KeywordBook(config, store),
            broadcasts=BroadcastService(
                config, store, events, outbox, dispatcher.wake, clock=clock
            ),
            # Keeps gateway.yaml's webhooks in the store; its thread is the daemon's to start.
            webhooks=WebhookService(config, store, events, clock=clock),
            manager=manager,
            simulator=simulator,
            demo=demo,
        )
    except BaseException:
        # Close what was opened here; the error that stopped the building is the one raised.
        if simulator is not None:
            try:
                simulator.close()
            except Exception:
                log.exception("closing the simulator after a failed start failed")
        if own_store:
            store.close()
        raise


# -- the modems -------------------------------------------------------------------------------


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


def _manager(
    config: Config,
    store: Store,
    events: EventBus,
    dispatcher: Dispatcher,
    inbound: Inbound,
    scan: list[str],
) -> ModemManager:
    hooks = ModemHooks(config, store, events, dispatcher, inbound)
    mm = config.modem_manager
    manager = ModemManager(
        modem_specs(config),
        scan=scan,
        on_pdu=hooks.on_pdu,
        on_up=hooks.on_up,
        on_down=hooks.on_down,
        on_status=hooks.on_status,
        heartbeat_seconds=mm.heartbeat_seconds,
        sweep_seconds=mm.sweep_seconds,
        reconnect_max_seconds=mm.reconnect_max_seconds,
    )
    hooks.manager = manager
    # A modem that fails its sends is checked by the manager and shown with its status.
    dispatcher.probe = manager.check_sending
    dispatcher.on_health = manager.set_sending
    return manager


class ModemHooks:
    """What the modem manager tells the rest of the gateway (on the modems' threads): a PDU
    goes to Inbound, a modem coming or going to the store and the bus, and every status change
    to the dispatcher (:meth:`follow_state`)."""

    # Set by build_services right after the manager is built, before it can call back.
    manager: ModemManager

    def __init__(
        self,
        config: Config,
        store: Store,
        events: EventBus,
        dispatcher: Dispatcher,
        inbound: Inbound,
    ) -> None:
        self.config = config
        self.store = store
        self.events = events
        self.dispatcher = dispatcher
        self.inbound = inbound

    def on_pdu(self, modem_id: str, pdu_hex: str, source: str) -> None:
        try:
            self.inbound.receive(modem_id, pdu_hex, source=source)
        finally:
            # A modem's threads use the store a moment per SMS and then wait for hours: their
            # connection goes back to the store's small pool (Store.release_connection).
            self.store.release_connection()
            memory.after_work()

    def on_up(self, modem_id: str, modem: Modem) -> None:
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
        self.store.release_connection()  # the modem's thread may not need it for hours
        # The dispatcher already knows: the manager's status change ran follow_state.
        self.events.publish("modem.up", id=modem_id)

    def on_down(self, modem_id: str, reason: str) -> None:
        self.store.modems.down(modem_id)
        self.store.release_connection()
        self.events.publish("modem.down", id=modem_id, reason=reason)

    def on_status(self, status: ModemStatus) -> None:
        self.events.publish("modem.health", **status.to_json())
        self.follow_state(status.modem_id)

    def follow_state(self, modem_id: str) -> None:
        """The one place that tells the dispatcher whether a modem can take messages: when the
        manager calls it up and its network is there. Run on every status change, so that a
        hung modem being reset in place (no on_down/on_up around it, and the reset may take
        minutes) or one that lost its network gives its queue to the rest of the pool."""
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


# -- the simulator ----------------------------------------------------------------------------


def _route_short_codes(config: Config, network: Network) -> None:
    """A handset texting a short code (``55123``) reaches its default modem (else its first),
    as an operator routes a short code to the SIM behind it, when that modem is simulated."""
    for sc in config.short_codes:
        wanted = config.modem(sc.default_modem or sc.modems[0])
        for sim_modem in network.modems:
            if (wanted.imei and sim_modem.imei == wanted.imei) or (
                wanted.iccid and sim_modem.iccid.rstrip("F") == wanted.iccid
            ):
                network.serve_number(sc.code, sim_modem)
                break


def _simulator(config: Config) -> Simulator:
    # Imported here: a gateway without a simulator does not load its 3.6k lines.
    from .sim import ControlServer as SimServer
    from .sim import Network, SimControl
    from .sim.network import DEFAULT_REPORT_DELAY

    sim = config.simulator
    if sim is None:
        raise ValueError("build_services: the configuration has no simulator: section")
    delay = sim.status_report_delay
    network = Network(
        sim.dir or config.data_dir / "sim",  # the loader's default, for a config made in code
        seed=sim.seed,
        status_report_delay=DEFAULT_REPORT_DELAY if delay is None else delay,
        auto_handsets=sim.auto_handsets,
    )
    try:
        for m in sim.modems:
            network.add_modem(
                family=m.family,
                number=m.number,
                imei=m.imei,
                iccid=m.iccid,
                storage_capacity=m.storage_capacity,
                command_latency=m.command_latency,
                send_latency=m.send_latency,
            )
        for h in sim.handsets:
            network.add_handset(h.number)
        _route_short_codes(config, network)
        control = SimControl(network)
        server = None
        if sim.control_port is not None:
            server = SimServer(control, port=sim.control_port).start()
            log.info("simulator control API on %s", server.url)
    except BaseException:
        network.close()
        raise
    return Simulator(network, control, server)
