"""Where a simulated modem's bytes go: a pseudo-terminal with a stable by-id symlink, or a real
serial device (``gateway sim --device``).

Both expose a file descriptor the modem thread selects on, ``write()`` that never blocks the
modem for long, and ``close()``. A pty endpoint keeps its slave side open too, so a client
closing and reopening the port never makes the master read fail; closing the master is what a
client sees as an unplug (EOF / EIO on its side).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import termios
import tty
from pathlib import Path

from gateway.sim.errors import PortError

log = logging.getLogger(__name__)

# How long a write may wait for a client that does not read before its bytes are dropped, as a
# UART without flow control would drop them.
WRITE_STALL_SECONDS = 1.0


class Endpoint:
    """One open port of a simulated modem."""

    fd: int
    device: str  # what a client opens (the /dev/pts/N or the serial device)

    def read(self) -> bytes | None:
        """What the client wrote; None when nothing is waiting; b"" when the other side is gone."""
        try:
            return os.read(self.fd, 4096)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return None
            if exc.errno == errno.EIO:
                return b""
            raise

    def write(self, data: bytes) -> None:
        """Send bytes to the client, dropping them (logged) if it stops reading for too long."""
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self.fd, view)
            except BlockingIOError:
                _, writable, _ = select.select([], [self.fd], [], WRITE_STALL_SECONDS)
                if not writable:
                    log.warning(
                        "%s: client is not reading; dropped %d bytes", self.device, len(view)
                    )
                    return
                continue
            except OSError as exc:
                log.warning("%s: write failed (%s); dropped %d bytes", self.device, exc, len(view))
                return
            view = view[sent:]

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class PtyEndpoint(Endpoint):
    """A fresh pseudo-terminal in raw mode, linked from ``link`` (atomically replaced).

    ``avoid`` names a /dev/pts path the new pty must not reuse, so that a replugged modem comes
    back under a NEW device name, as a USB device re-enumerating would.
    """

    def __init__(self, link: Path, avoid: str | None = None) -> None:
        held: list[tuple[int, int]] = []
        try:
            for _ in range(8):
                master, slave = os.openpty()
                name = os.ttyname(slave)
                if name != avoid:
                    break
                held.append((master, slave))  # keep it busy so the next one gets a new number
            else:  # pragma: no cover - the kernel hands out the same number eight times
                raise PortError(f"could not get a pty other than {avoid}")
        except OSError as exc:
            raise PortError(f"cannot create a pseudo-terminal for {link}: {exc}") from exc
        finally:
            for m, s in held:
                os.close(m)
                os.close(s)
        self.fd = master
        self._slave = slave
        self.device = name
        self.link = link
        # Raw on both sides: no echo, no CR/LF translation, no signals from ^C or ^Z (Ctrl-Z
        # ends every PDU, so the line discipline must pass it through).
        tty.setraw(slave, termios.TCSANOW)
        tty.setraw(master, termios.TCSANOW)
        os.set_blocking(master, False)
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(name, tmp)
        os.replace(tmp, link)

    def close(self) -> None:
        """Remove the link (if still ours) and close both sides: the client sees the device go."""
        with contextlib.suppress(FileNotFoundError):
            if os.readlink(self.link) == self.device:
                self.link.unlink()
        for fd in (self.fd, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class DeviceEndpoint(Endpoint):
    """A real serial device (e.g. /dev/ttyUSB0 on a null-modem cable), opened with pyserial."""

    def __init__(self, device: str, baudrate: int = 115200, rtscts: bool = False) -> None:
        import serial  # pyserial configures the line; the modem thread then uses its descriptor

        try:
            self._serial = serial.Serial(device, baudrate=baudrate, rtscts=rtscts, timeout=0)
        except (serial.SerialException, OSError) as exc:
            raise PortError(f"cannot open serial device {device}: {exc}") from exc
        self.fd = self._serial.fileno()
        self.device = device
        os.set_blocking(self.fd, False)

    def close(self) -> None:
        self._serial.close()
