"""The web server's start-up error, in a module of its own so that ``gateway run`` can catch it
without loading Flask and cheroot before the modems are started."""

from __future__ import annotations


class WebServerError(RuntimeError):
    """The web app cannot be served (address in use, certificate missing or unreadable)."""
