"""A bare AT terminal over pyserial: what a person types into minicom, for tests and poking at a
simulated (or real) modem. Not a driver: no URC handling, no retries; it waits on the bytes it
expects, with a deadline."""

from __future__ import annotations

import re
import time

import serial

FINAL = re.compile(rb"\r\n(OK|ERROR|\+CM[ES] ERROR(: [^\r]*)?|NO CARRIER)\r\n|\r\n> ")


class Terminal:
    """An open port: ``command("AT+CSQ")`` returns everything up to and including the final
    result (or the ``> `` prompt); ``expect(pattern)`` waits for other output."""

    def __init__(self, port: str, baudrate: int = 115200) -> None:
        self.serial = serial.Serial(port, baudrate, timeout=0.05)
        self.buffer = bytearray()

    def close(self) -> None:
        self.serial.close()

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, data: bytes | str) -> None:
        self.serial.write(data.encode("latin-1") if isinstance(data, str) else data)

    def expect(self, pattern: bytes | re.Pattern[bytes], timeout: float = 3.0) -> re.Match[bytes]:
        """Wait until ``pattern`` matches the unread output; consume through the match."""
        regex = re.compile(pattern) if isinstance(pattern, bytes) else pattern
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(bytes(self.buffer))
            if match:
                self.consumed = bytes(self.buffer[: match.end()])
                del self.buffer[: match.end()]
                return match
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{pattern!r} not seen within {timeout}s; got {bytes(self.buffer)!r}"
                )
            # Returns as soon as one byte is there (then takes whatever else is waiting).
            self.buffer += self.serial.read(max(1, self.serial.in_waiting))

    def command(self, line: str, timeout: float = 3.0) -> str:
        """Send ``line`` + CR and return the output up to its final result, decoded latin-1."""
        self.write(line + "\r")
        self.expect(FINAL, timeout)
        return self.consumed.decode("latin-1")

    def read_for(self, seconds: float) -> bytes:
        """Everything that arrives within ``seconds`` (for asserting that nothing does)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.buffer += self.serial.read(4096)
        out = bytes(self.buffer)
        self.buffer.clear()
        return out
