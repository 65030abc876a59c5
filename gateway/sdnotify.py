"""systemd notifications (``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``, ``STATUS=...``) over
``$NOTIFY_SOCKET``, without a dependency; does nothing when not run by systemd."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(message: str) -> bool:
    """Send one notification; False when there is no systemd to tell."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        log.warning("systemd notification %r failed: %s", message, exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings systemd expects (half of WatchdogSec), or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1_000_000 / 2
    except ValueError:
        return None
