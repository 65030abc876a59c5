"""The link to one modem: its settings, its AT channel (opened again after a reset), the
signals its threads share (closing, SMS ready), and the driver's errors. The start-up
negotiation (:mod:`.startup`) and the running Modem (:mod:`.device`) both work through it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .at import ATChannel, CmeError, CmsError, CommandError, PortGone, Response, SerialLike, Urc

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ModemSettings:
    """How to drive one modem. Times are seconds.

    ``pin`` is entered at most once per Modem; after a rejection it is never tried again (three
    wrong PINs lock the SIM into PUK). ``storage`` forces a message memory (``"SM"``, ``"ME"``,
    ``"MT"``) instead of the family's preference. ``direct_messages`` routes new messages straight
    to us (``+CMT``) instead of storing them (``+CMTI``); the Modem then asks for phase 2+
    (``AT+CSMS=1``) so that each is acknowledged only after the handler returned.
    ``family`` forces a family (see :data:`gateway.modem.quirks.FAMILIES`) instead of detecting it.
    """

    baudrate: int = 115200
    rtscts: bool = False
    pin: str | None = None
    storage: str | None = None
    direct_messages: bool = False
    family: str | None = None
    command_timeout: float = 10.0
    prompt_timeout: float = 10.0
    send_timeout: float = 60.0
    ussd_timeout: float = 30.0
    startup_timeout: float = 30.0
    sms_ready_timeout: float = 45.0
    sim_busy_retries: int = 5
    retry_delay: float = 1.0
    reset_timeout: float = 90.0


class ModemError(Exception):
    """Base of the Modem's own errors; names the port."""

    def __init__(self, port: str, why: str) -> None:
        self.port = port
        self.why = why
        super().__init__(f"{port}: {why}")


class SimCardError(ModemError):
    """The SIM cannot be used (not inserted, failed, locked in a way we do not unlock)."""


class SimPinRequired(SimCardError):
    """The SIM asks for a PIN and none is configured."""


class SimPinRejected(SimCardError):
    """The configured PIN was refused. It is not tried again: fix the configuration."""


class SimPukRequired(SimCardError):
    """The SIM is PUK-locked (too many wrong PINs). Unlock it in a phone; we never guess."""


class SimBusy(SimCardError):
    """The SIM stayed busy (``+CME ERROR: 14``) through every bounded retry."""


class SmsNotReady(ModemError):
    """SMS commands kept failing: the modem never reported SMS ready in time."""


class UnexpectedAnswer(ModemError):
    """The modem answered OK but not in the shape the command promises."""


class Link:
    """One modem's AT channel and the state its threads share.

    ``channel`` is the channel in use; :meth:`open_channel` replaces it (start-up while the
    modem boots, a reset), and every URC it reads is handed to ``on_urc`` with the channel's
    generation, so that codes from a closed channel can be told apart and dropped.
    """

    def __init__(
        self,
        port: str,
        settings: ModemSettings,
        on_urc: Callable[[int, Urc | PortGone], None],
        serial_factory: Callable[..., SerialLike] | None = None,
    ) -> None:
        self.port = port
        self.settings = settings
        self.closing = threading.Event()  # set by close(): waits give up at once
        self.sms_ready = threading.Event()  # set when the modem says SMS Ready
        self.generation = 0
        self._on_urc = on_urc
        self._factory = serial_factory
        self._channel: ATChannel | None = None

    @property
    def channel(self) -> ATChannel:
        """The AT channel in use (raises :class:`PortGone` when there is none)."""
        if self._channel is None:
            raise PortGone(self.port, None, "the modem is not open")
        return self._channel

    def open_channel(self) -> None:
        """Open a new channel on the port (closing the previous one first)."""
        self.close_channel()
        self.generation += 1
        gen = self.generation
        self._channel = ATChannel(
            self.port,
            baudrate=self.settings.baudrate,
            rtscts=self.settings.rtscts,
            timeout=self.settings.command_timeout,
            on_urc=lambda item: self._on_urc(gen, item),
            serial_factory=self._factory,
        )
        self._channel.open()
        # The modem may be where a killed process left it: at the "> " prompt, or owing the
        # answer to that process's last command.
        self._channel.take_over()

    def close_channel(self) -> None:
        """Close the channel in use, if any (safe to call twice)."""
        if self._channel is not None:
            self._channel.close()

    def command(self, command: str, *, timeout: float | None = None) -> Response:
        """One AT command on the channel in use; errors as the channel's."""
        return self.channel.command(command, timeout=timeout)

    def attempt(self, command: str, timeout: float | None = None) -> Response | None:
        """A command whose failure is acceptable (a fallback follows); the failure is logged."""
        try:
            return self.channel.command(command, timeout=timeout)
        except CommandError as exc:
            log.info("%s: %s not supported here (%s)", self.port, command, exc.final)
            return None

    def retry_busy(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying a bounded number of times with backoff while the SIM is busy
        (``+CME ERROR: 14`` / ``+CMS ERROR: 314``), typical for seconds after boot."""
        delay = self.settings.retry_delay
        for attempt in range(self.settings.sim_busy_retries + 1):
            try:
                return fn()
            except (CmeError, CmsError) as exc:
                busy = exc.code in (14, 314)
                if not busy or attempt >= self.settings.sim_busy_retries:
                    if busy:
                        raise SimBusy(
                            self.port,
                            f"SIM still busy after {attempt + 1} tries of {what}",
                        ) from exc
                    raise
                log.info("%s: SIM busy during %s; retry %d", self.port, what, attempt + 1)
            if self.closing.wait(delay):
                raise PortGone(self.port, what, "the modem is being closed")
            delay = min(delay * 2, self.settings.retry_delay * 8)
        raise AssertionError("unreachable")  # pragma: no cover

    def busy_command(self, command: str) -> Response:
        """``command``, retried while the SIM is busy (see :meth:`retry_busy`)."""
        return self.retry_busy(command, lambda: self.channel.command(command))

    def ident_value(self, command: str, prefix: str) -> str | None:
        """The value an identification command answers (``AT+CGMI`` and kin), without its
        prefix and quotes; None when the modem will not say."""
        try:
            resp = self.busy_command(command)
        except (CommandError, SimBusy) as exc:
            log.info("%s: %s gave no answer (%s)", self.port, command, exc)
            return None
        for line in resp.lines:
            value = line
            if value.upper().startswith(prefix.upper() + ":"):
                value = value[len(prefix) + 1 :]
            value = value.strip().strip('"').strip()
            # SIM800 prefixes its firmware with "Revision:".
            if value.lower().startswith("revision:"):
                value = value[len("revision:") :].strip()
            if value:
                return value
        return None
