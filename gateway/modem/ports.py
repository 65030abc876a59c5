"""Finding modem ports: the candidates of the scan patterns, probing a port for an AT interface
and its identity (IMEI, ICCID) without entering any PIN, which supervisor holds which device,
and a cache of what each device node said when probed.

The modem manager (:mod:`.manager`) supervises the modems this finds; nothing here keeps a
modem open longer than one probe.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from .at import ATChannel, ATError, CommandError, CommandTimeout
from .device import ModemSettings, parse_iccid
from .hotplug import HotplugWatcher

log = logging.getLogger(__name__)

# (command, answer prefix) of every family's ICCID query, tried on probe when a config binds
# by ICCID; each is harmless on a modem that does not know it (it answers ERROR).
_ICCID_PROBES = (
    ("AT+CCID", "+CCID"),
    ("AT+QCCID", "+QCCID"),
    ("AT^ICCID?", "^ICCID"),
    ("AT+ICCID", "+ICCID"),
    ("AT+CICCID", "+ICCID"),
)


@dataclass(frozen=True)
class Probe:
    """What a port said when probed: its real device and, if it is an AT port, who it is."""

    port: str
    real: str
    imei: str | None
    iccid: str | None


@dataclass(frozen=True)
class _Probed:
    """A cached probe: what it said, when (monotonic) and at which hot-plug generation."""

    probe: Probe | None
    when: float
    generation: int


def probe_port(
    port: str,
    *,
    baudrate: int = 115200,
    rtscts: bool = False,
    want_iccid: bool = False,
    timeout: float = 2.0,
) -> Probe | None:
    """Open ``port``, check that it answers ``AT``, read its IMEI (and ICCID when asked).
    None when it is not an AT port (or not there). Enters no PIN and changes nothing."""
    real = os.path.realpath(port)
    channel = ATChannel(port, baudrate=baudrate, rtscts=rtscts, timeout=timeout)
    try:
        channel.open()
        channel.take_over()  # a killed process may have left it at "> " or owing an answer
        try:
            channel.command("AT", timeout=timeout)
        except CommandTimeout:
            # The first may meet a half-typed line, or a modem that was busy when the first ESC
            # came and is still at the "> " prompt: ESC once more.
            channel.take_over()
            channel.command("AT", timeout=timeout)
        imei = None
        try:
            for line in channel.command("AT+CGSN", timeout=timeout).lines:
                digits = "".join(c for c in line if c.isdigit())
                if 14 <= len(digits) <= 17:
                    imei = digits
                    break
        except CommandError as exc:
            log.debug("%s: AT+CGSN failed: %s", port, exc)
        iccid = None
        if want_iccid:
            for command, prefix in _ICCID_PROBES:
                try:
                    lines = channel.command(command, timeout=timeout).lines
                except CommandError:
                    continue
                for line in lines:
                    iccid = parse_iccid(line, prefix)
                    if iccid:
                        break
                if iccid:
                    break
        return Probe(port, real, imei, iccid)
    except (ATError, OSError) as exc:
        log.debug("%s: not an AT port (%s)", port, exc)
        return None
    finally:
        channel.close()


def candidates(scan: Iterable[str]) -> list[str]:
    """Every port the glob patterns ``scan`` name, one per real device: the stable by-id name
    is preferred to ``/dev/ttyUSBn`` for the same device."""
    seen: dict[str, str] = {}
    for pattern in scan:
        for path in sorted(glob.glob(pattern)):
            real = os.path.realpath(path)
            if real not in seen or "/by-id/" in path:
                seen[real] = path
    return list(seen.values())


class PortFinder:
    """Claims of devices (one owner at a time: a modem id, or "probe" for discovery) and the
    probe cache, shared by the manager's threads.

    The cache is keyed by device node (real path, rdev, ctime), so a replugged modem is probed
    afresh. An answer with an IMEI holds as long as its node does; a failed probe (no answer,
    or no IMEI: a modem booting, busy or hung) holds only until the next hot-plug event or
    rescan, and at most ``retry_seconds``, so such a modem is probed again without a replug.
    """

    def __init__(
        self,
        hotplug: HotplugWatcher,
        *,
        probe_timeout: float = 2.0,
        retry_seconds: float = 30.0,
    ) -> None:
        self.hotplug = hotplug
        self.probe_timeout = probe_timeout
        self.retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._claims: dict[str, str] = {}  # real device -> modem id (or "probe")
        # (real device, rdev, ctime) -> what its probe said, when, at which hot-plug generation
        self._probes: dict[tuple, _Probed] = {}

    def claim(self, real: str, owner: str) -> bool:
        """Hold device ``real`` for ``owner``; False when someone else holds it."""
        with self._lock:
            if real in self._claims and self._claims[real] != owner:
                return False
            self._claims[real] = owner
            return True

    def release(self, real: str, owner: str) -> bool:
        """Let go of ``real`` if ``owner`` holds it; True when it did."""
        with self._lock:
            if self._claims.get(real) != owner:
                return False
            del self._claims[real]
            return True

    def probe(
        self, port: str, settings: ModemSettings | None = None, *, want_iccid: bool = False
    ) -> Probe | None:
        """What ``port`` says: from the cache while that is still true, else probed now (the
        caller holds its claim)."""
        real = os.path.realpath(port)
        try:
            st = os.stat(real)
        except OSError:
            return None
        key = (real, st.st_rdev, st.st_ctime_ns)
        with self._lock:
            entry = self._probes.get(key)
            if entry is not None and self._still_true(entry):
                cached = entry.probe
                if cached is None or not want_iccid or cached.iccid:
                    return cached
        settings = settings or ModemSettings()
        result = probe_port(
            port,
            baudrate=settings.baudrate,
            rtscts=settings.rtscts,
            want_iccid=want_iccid,
            timeout=self.probe_timeout,
        )
        with self._lock:
            self._probes[key] = _Probed(result, time.monotonic(), self.hotplug.generation)
        return result

    def cached(self, port: str) -> tuple[bool, Probe | None]:
        """(known, probe): what an earlier probe of this device said, without opening it."""
        real = os.path.realpath(port)
        try:
            st = os.stat(real)
        except OSError:
            return True, None
        with self._lock:
            entry = self._probes.get((real, st.st_rdev, st.st_ctime_ns))
            if entry is None or not self._still_true(entry):
                return False, None
            return True, entry.probe

    def _still_true(self, entry: _Probed) -> bool:
        """Whether a cached probe may be believed (see the class docstring)."""
        if entry.probe is not None and entry.probe.imei is not None:
            return True
        return (
            entry.generation == self.hotplug.generation
            and time.monotonic() - entry.when < self.retry_seconds
        )
