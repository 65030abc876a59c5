"""A fake pyserial port: the test plays the modem by injecting bytes and answering commands.

Writes are split into what a modem would see: a command ends with CR, a PDU typed after the
``> `` prompt ends with Ctrl-Z (recorded as ``"PDU:<hex>"``), and ESC is recorded as ``"<ESC>"``.
Each is appended to :attr:`commands` and, when a ``responder`` is set, passed to it; the bytes it
returns are queued for the channel to read. Nothing here sleeps: tests wait on conditions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import serial

Responder = Callable[[str], bytes | None]


class FakeSerial:
    """Stand-in for ``serial.Serial`` with the few members the AT channel uses."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder = responder
        self.commands: list[str] = []
        self.written = bytearray()
        self.open_kwargs: dict[str, Any] = {}
        self.is_open = True
        self._rx = bytearray()
        self._tx = bytearray()
        self._cond = threading.Condition()
        self._cancel = False
        self._failure: Exception | None = None
        self._write_failure: Exception | None = None

    # -- what the channel calls ------------------------------------------------------------

    def factory(self, port: str, **kwargs: Any) -> FakeSerial:
        """Use as ``ATChannel(serial_factory=fake.factory)``; records the open arguments."""
        self.open_kwargs = {"port": port, **kwargs}
        self.is_open = True
        return self

    @property
    def in_waiting(self) -> int:
        with self._cond:
            if self._failure is not None:
                raise self._failure
            return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        with self._cond:
            self._cond.wait_for(
                lambda: self._rx or self._cancel or self._failure or not self.is_open, timeout=0.5
            )
            if self._failure is not None:
                raise self._failure
            if self._cancel:
                self._cancel = False
                return b""
            data = bytes(self._rx[:size])
            del self._rx[:size]
            self._cond.notify_all()
            return data

    def write(self, data: bytes) -> int:
        replies: list[bytes] = []
        with self._cond:
            if self._write_failure is not None:
                raise self._write_failure
            if self._failure is not None:
                raise self._failure
            self.written += data
            for byte in data:
                if byte == 0x0D:
                    replies.append(self._took(self._tx.decode("ascii", "replace")))
                elif byte == 0x1A:
                    replies.append(self._took("PDU:" + self._tx.decode("ascii", "replace")))
                elif byte == 0x1B:
                    self._tx.clear()
                    replies.append(self._took("<ESC>"))
                    continue
                else:
                    self._tx.append(byte)
                    continue
                self._tx.clear()
        for reply in replies:
            if reply:
                self.inject(reply)
        return len(data)

    def _took(self, item: str) -> bytes:
        self.commands.append(item)
        self._cond.notify_all()
        if self.responder is None:
            return b""
        return self.responder(item) or b""

    def cancel_read(self) -> None:
        with self._cond:
            self._cancel = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.is_open = False
            self._cond.notify_all()

    # -- what the test calls ---------------------------------------------------------------

    def inject(self, data: bytes) -> None:
        """Bytes the modem sends, in one read unless the channel reads less at a time."""
        with self._cond:
            self._rx += data
            self._cond.notify_all()

    def wait_drained(self, timeout: float = 5.0) -> None:
        """Wait until the channel has read everything injected so far."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._rx, timeout=timeout):
                raise AssertionError("the channel did not read the injected bytes")

    def wait_for_command(self, predicate: Callable[[str], bool], timeout: float = 5.0) -> str:
        """Wait until a command matching ``predicate`` has been written; return it."""
        found: list[str] = []

        def check() -> bool:
            found[:] = [c for c in self.commands if predicate(c)]
            return bool(found)

        with self._cond:
            if not self._cond.wait_for(check, timeout=timeout):
                raise AssertionError(f"no matching command written; got {self.commands!r}")
        return found[0]

    def unplug(self) -> None:
        """Every later read and write fails as a vanished USB device does."""
        with self._cond:
            self._failure = serial.SerialException(
                "device reports readiness to read but returned no data "
                "(device disconnected or multiple access on port?)"
            )
            self._cond.notify_all()

    def block_writes(self) -> None:
        """Writes time out, as with hardware flow control on and no CTS."""
        self._write_failure = serial.SerialTimeoutException("Write timeout")


def ok(*lines: str) -> bytes:
    """A modem answer with information lines then OK, framed with CR LF as modems do."""
    body = "".join(f"\r\n{line}\r\n" for line in lines)
    return (body + "\r\nOK\r\n").encode()
