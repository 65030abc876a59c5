"""How the web app reaches what it is given: the gateway's services, and the app's own guards.

``create_app(services)`` keeps one :class:`AppState` in ``app.extensions``; views, the login
and templates read it through :func:`services` and :func:`app_state` (templates see the
services as ``services``), never through ``g`` or ``app.extensions`` keys of their own. The web
layer only calls the services (web → messaging → store/modem); it owns no thread of its own
except the request threads of the WSGI server.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import Flask, current_app

from ..services import Services
from ..store.users import SessionPolicy
from .api.ratelimit import TokenBuckets

if TYPE_CHECKING:
    from .auth import LoginGate, LoginThrottle
    from .views.live import StreamSlots

__all__ = ["AppState", "Services", "app_state", "services"]

_KEY = "gateway"


@dataclass(frozen=True)
class AppState:
    """One app's services and settings: the login throttle and the bound on password checks
    at once, the session policy, the live streams' slots, the API tokens' rate limits, and the
    flag that ends open streams when the server stops."""

    services: Services
    throttle: LoginThrottle
    gate: LoginGate
    policy: SessionPolicy
    stream_slots: StreamSlots
    # The REST API's request budget of each token (web/api/ratelimit.py).
    api_buckets: TokenBuckets = field(default_factory=TokenBuckets)
    stopping: threading.Event = field(default_factory=threading.Event)

    def install(self, app: Flask) -> None:
        """Keep this state as ``app``'s (once, by create_app)."""
        app.extensions[_KEY] = self


def app_state(app: Flask | None = None) -> AppState:
    """The state of ``app`` (default: the app of the request being served)."""
    state: AppState = (app or current_app).extensions[_KEY]
    return state


def services() -> Services:
    """The gateway's services, for the request being served."""
    return app_state().services
