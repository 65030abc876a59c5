"""The daemon: runs the gateway's services (built by :mod:`gateway.services`), the housekeeping,
the control socket and the web app in one process.

Start order matters for "nothing lost": the store opens (and migrates) first, when the daemon
is built; its check (``quick_check``, seconds on a large store read cold) runs on a thread of
its own, and every write waits for its verdict. Meanwhile ``start()`` takes the control socket
(one gateway per data directory), opens and negotiates with the modems, and starts the web app
(pages that only read answer at once; a login or a send waits for the verdict). Once the store
passed: PDUs committed before a crash but never processed are processed; messages caught
mid-send go back to the queue; the dispatcher starts; only then are the modems announced up and
allowed to read (and, after each commit, delete) their storage. A store that fails its check is
refused: ``start()`` raises :class:`StoreDamaged` before anything was written or deleted from a
SIM (docs/reliability.md, "The store's check at start").
Shutdown on SIGTERM stops taking requests, lets each modem finish the command in flight, and
closes the store last.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import diagnostics, memory
from .config import Config
from .control import ControlSocketServer
from .housekeeping import Housekeeper
from .messaging.outbound import IdempotencyConflict, SendRefused
from .messaging.requests import SendRequest
from .sdnotify import notify, watchdog_interval
from .services import Services, build_services

if TYPE_CHECKING:
    from .web.server import WebServer

log = logging.getLogger(__name__)

# How long a thread may keep the interpreter while another waits for it (Python's default is
# 5 ms). Between a modem's answer and its next PDU a reader thread and a sender thread each
# wait for it once or more; on a busy machine the 5 ms waits were most of the modem's idle time
# (issue 10: 2 to 8 modems at 0.5 s per send, efficiency 0.965-0.977 -> 0.979-0.986 with two
# CPU-bound processes per core alongside). Only contended switches cost anything.
SWITCH_INTERVAL = 0.0005


class DaemonError(RuntimeError):
    """The gateway cannot start; the message says what to fix."""


class Daemon:
    """One gateway. Constructing it builds the services (:func:`gateway.services.build_services`:
    the store is opened, the simulator's ports come up); ``start()`` starts their threads and
    returns once everything is up; ``stop()`` undoes both. ``on_started`` is called with the
    daemon once everything is up (the demo's banner)."""

    def __init__(
        self,
        config: Config,
        *,
        demo: bool = False,
        web: bool = True,
        on_started: Callable[[Daemon], None] | None = None,
        whole_process: bool = False,
    ) -> None:
        self.config = config
        # `gateway run`: the process is the daemon's alone, and may be tuned as a whole.
        self.whole_process = whole_process
        self.demo = demo
        self.web = web
        self.on_started = on_started
        self.services: Services = build_services(config, demo=demo, check_in_background=True)
        s = self.services
        self.housekeeper = Housekeeper(config, s.store, s.inbound, s.events)
        # Made in start(): the control socket refuses when another gateway runs on this data
        # directory, and the web server may first have to make its certificate.
        self.control: ControlSocketServer | None = None
        self.web_server: WebServer | None = None
        self._running: set[str] = set()  # what start() has started, for stop()
        self._stopped = threading.Event()
        self._watchdog: threading.Thread | None = None

    # -- start ---------------------------------------------------------------------------

    def start(self) -> None:
        cfg = self.config
        s = self.services
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.control = ControlSocketServer(
            cfg.data_dir,
            {
                "ping": self._op_ping,
                "send": self._op_send,
                "modems": self._op_modems,
                "memory": self._op_memory,
                "keyword": s.keywords.control,  # gateway keyword add|list|remove
                **s.broadcasts.control_ops(),
            },
            after_request=s.store.release_connection,
        )
        self._running.add("control")
        self.control.start()  # first: it refuses when another gateway runs on this data dir
        if s.manager is not None:
            self._running.add("modems")
            # Negotiation with the modems overlaps the store's check; storage waits for it.
            s.manager.start(hold_storage=True)
        if self.web:
            from .web.server import WebServer  # not loaded by a daemon without its web app

            self.web_server = WebServer(s)
            self._running.add("web")
            self.web_server.start()
        check = s.store.check
        if check is not None:
            check.wait()  # StoreDamaged: refused, nothing written, nothing deleted from a SIM
            log.info("message store checked in %.2f s (in the background)", check.seconds or 0)
        if self.demo:
            from .demo import seed

            seed(cfg, s.store)
        # First after the check: the configuration's webhooks are in the store before anything
        # makes an event (recovery included), what a crash left in the outbox goes out, and
        # every event from here on wakes the thread.
        self._running.add("webhooks")
        s.webhooks.start()
        s.inbound.recover()
        self._running.add("dispatcher")
        s.dispatcher.start()
        self._running.add("broadcasts")
        s.broadcasts.start()
        if s.manager is not None:
            s.manager.release_storage()
        self._running.add("housekeeping")
        self.housekeeper.start()
        self._running.add("trimmer")
        # Gives back what bursts freed, a few seconds after them; freezes start-up's objects.
        memory.start_trimmer(whole_process=self.whole_process)
        s.store.release_connection()  # the main thread only waits from here on
        diagnostics.mark_baseline()  # GATEWAY_TRACEMALLOC: growth is counted from here
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

    # -- control socket ------------------------------------------------------------------

    def _op_ping(self, request: dict) -> dict:
        return {"ok": True}

    def _op_memory(self, request: dict) -> dict:
        """Where the memory is (gateway/diagnostics.py); ``trim``: give the C heap's free
        memory back first."""
        if request.get("trim"):
            memory.give_back()
        top = int(request.get("top", 25))
        return {"ok": True, **diagnostics.report(self.services.store.connection_counts(), top)}

    def _op_send(self, request: dict) -> dict:
        memory.after_work()  # a burst of sends: what it freed goes back in a few seconds
        try:
            # The same rules as the web API and the form (messaging/requests.py).
            req = SendRequest.from_mapping(request, user=True, ignore=frozenset({"op"}))
            acc = self.services.outbox.submit(
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
        manager = self.services.manager
        statuses = manager.statuses() if manager is not None else []
        return {"ok": True, "modems": [s.to_json() for s in statuses]}

    # -- running and stopping ------------------------------------------------------------

    def _watchdog_loop(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            if self.services.dispatcher.alive:
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
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        if self.on_started is not None:
            self.on_started(self)
        try:
            stop.wait()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop taking requests, let each modem finish the command in flight, close the store
        last. Safe to call more than once, and on a daemon that was never started."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        s = self.services
        if self._running:
            notify("STOPPING=1")
        web, control, manager = self.web_server, self.control, s.manager
        closers: list[tuple[str, Callable[[], object]]] = [
            (name, closer)
            for name, closer in (
                ("web", web.stop if web is not None else _nothing),
                ("control", control.close if control is not None else _nothing),
                ("housekeeping", self.housekeeper.stop),
                ("broadcasts", s.broadcasts.stop),
                ("dispatcher", s.dispatcher.stop),
                ("modems", manager.stop if manager is not None else _nothing),
                # Last of the threads: the events of the modems' last work are recorded.
                ("webhooks", s.webhooks.stop),
                ("trimmer", memory.stop_trimmer),
            )
            if name in self._running
        ]
        closers.append(("services", s.close))
        for name, closer in closers:
            try:
                closer()
            except Exception:  # keep closing the rest; the store must still be closed
                log.exception("stopping %s failed", name)
        log.info("gateway stopped")


def _nothing() -> None:
    pass
