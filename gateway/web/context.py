"""What the web app is given by the daemon: the configuration and the running services.

The web layer only calls these (web → messaging → store/modem); it owns no thread of its own
except the request threads of the WSGI server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import Config
from ..messaging.events import EventBus
from ..messaging.outbound import Outbox
from ..store import Store

if TYPE_CHECKING:
    from ..messaging.dispatcher import Dispatcher
    from ..modem.manager import ModemManager
    from ..sim import SimControl


@dataclass
class GatewayContext:
    """The services of one running gateway (``dispatcher``/``manager`` are None in tests that
    run the web app alone; ``sim`` is set when the daemon runs the simulator, e.g. the demo)."""

    config: Config
    store: Store
    events: EventBus
    outbox: Outbox
    dispatcher: Dispatcher | None = None
    manager: ModemManager | None = None
    sim: SimControl | None = None
    demo: bool = False
