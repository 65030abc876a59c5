"""The start-up negotiation of a modem: what it supports is asked before it is used, with a
fallback for each refusal (echo off, verbose errors, the SIM PIN entered at most once, PDU mode,
a message memory, new-message indications preferring direct status reports). Family quirks come
from :mod:`gateway.modem.quirks` and are commented where they are handled.

Runs on a :class:`~gateway.modem.link.Link` and returns what was agreed; the running
:class:`~gateway.modem.device.Modem` keeps it. Nothing here reads or deletes messages.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from .at import CmeError, CommandError, CommandTimeout, PortGone, Response, split_args
from .link import (
    Link,
    ModemError,
    SimBusy,
    SimCardError,
    SimPinRejected,
    SimPinRequired,
    SimPukRequired,
    SmsNotReady,
    UnexpectedAnswer,
)
from .quirks import Quirks, detect_family, quirks_for
from .readings import parse_storage_usage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Negotiated:
    """What start-up agreed with the modem."""

    family: str
    quirks: Quirks
    manufacturer: str | None
    model: str | None
    storage: str  # the memory selected for reading and deleting
    status_report_routing: str  # "direct" (+CDS), "stored" (+CDSI) or "none"
    message_service: int | None  # AT+CSMS <service>: 1 means +CNMA is needed


def negotiate(link: Link, deadline: float, *, pin_rejected: bool) -> Negotiated:
    """Bring the modem on ``link`` from whatever state it is in to ready for SMS in PDU mode.

    ``pin_rejected`` says the configured PIN was refused before: it is then never entered
    again (three wrong PINs lock the SIM into PUK), and :class:`SimPinRejected` is raised.
    Raises :class:`PortGone`, :class:`SimCardError` and its kin, :class:`SmsNotReady` or an AT
    error.
    """
    wait_for_at(link, deadline)
    # Echo off; the channel copes with echo either way, and with its return after a reset.
    link.attempt("ATE0")
    # Verbose errors (+CME ERROR: SIM busy) are easier to log; numeric as a fallback.
    if not link.attempt("AT+CMEE=2"):
        link.attempt("AT+CMEE=1")
    manufacturer = link.ident_value("AT+CGMI", "+CGMI")
    model = link.ident_value("AT+CGMM", "+CGMM")
    family = link.settings.family or detect_family(manufacturer or "", model or "")
    quirks = quirks_for(family)
    _unlock_sim(link, pin_rejected)
    # A modem may boot in text mode (SIM800 with a saved profile), and SIM800/Quectel answer
    # ERROR to SMS commands until "SMS Ready" / "+QIND: SMS DONE": wait for it, bounded.
    # AT+CMGF is a local setting that SIM800 accepts early; AT+CPMS? needs the SMS service,
    # so it is the real gate before the storage fallbacks (which would take ERROR as "no").
    _until_sms_ready(link, "AT+CMGF=0")
    _until_sms_ready(link, "AT+CPMS?")
    storage = _select_storage(link, quirks)
    service = _configure_message_service(link)
    routing = configure_indications(link)
    # Long alphanumeric operator names in AT+COPS?.
    link.attempt("AT+COPS=3,0")
    return Negotiated(family, quirks, manufacturer, model, storage, routing, service)


def wait_for_at(link: Link, deadline: float) -> None:
    """Poll with ``AT`` until the modem answers (it may still be booting)."""
    # A modem that is up answers AT in milliseconds; a booting one ignores it.
    poll = min(0.5, link.settings.command_timeout)
    while True:
        try:
            link.command("AT", timeout=poll)
            return
        except CommandError:
            return  # it answers, even if oddly
        except CommandTimeout as exc:
            if link.closing.is_set():
                # close() from another thread (shutdown) must not wait for the deadline.
                raise PortGone(link.port, "AT", "closed while waiting for the modem") from exc
            if time.monotonic() >= deadline:
                raise CommandTimeout(
                    link.port, "AT", "the modem does not answer AT commands"
                ) from exc
            # A fresh channel: the booting modem owes us nothing, start clean.
            link.open_channel()


def _sim_state(link: Link) -> str:
    def query() -> str:
        try:
            resp = link.command("AT+CPIN?")
        except CmeError as exc:
            if exc.code == 10:
                raise SimCardError(link.port, "no SIM card inserted") from exc
            if exc.code == 13:
                raise SimCardError(link.port, "SIM failure (bad contact or dead card)") from exc
            raise
        values = resp.prefixed("+CPIN")
        if not values:
            raise UnexpectedAnswer(link.port, f"AT+CPIN? gave no +CPIN line: {resp.lines}")
        return values[0].strip().strip('"').upper()

    return link.retry_busy("AT+CPIN?", query)


def _unlock_sim(link: Link, pin_rejected: bool) -> None:
    state = _sim_state(link)
    if state == "READY":
        return
    if state == "SIM PIN":
        if pin_rejected:
            raise SimPinRejected(
                link.port, "the configured PIN was refused before; not trying it again"
            )
        pin = link.settings.pin
        if not pin:
            raise SimPinRequired(link.port, "the SIM asks for a PIN and none is configured")
        try:
            link.command(f'AT+CPIN="{pin}"')
        except (CommandError, CommandTimeout) as exc:
            # Never enter it again, whatever the error: a second wrong PIN brings the SIM
            # closer to PUK, and a busy/timeout answer may still have counted as a try.
            raise SimPinRejected(
                link.port, f"the SIM refused the configured PIN ({exc}); fix it in the config"
            ) from exc
        # The SIM takes a moment to become READY (it answers busy meanwhile).
        for _ in range(link.settings.sim_busy_retries + 1):
            state = _sim_state(link)
            if state == "READY":
                return
            if state != "SIM PIN":
                break
            if link.closing.wait(link.settings.retry_delay):
                raise PortGone(link.port, "AT+CPIN?", "the modem is being closed")
    if state == "SIM PUK":
        raise SimPukRequired(
            link.port, "the SIM needs its PUK (too many wrong PINs); unlock it in a phone"
        )
    raise SimCardError(link.port, f"SIM state is {state!r}; the gateway cannot unlock it")


def _until_sms_ready(link: Link, command: str) -> Response:
    settings = link.settings
    deadline = time.monotonic() + settings.sms_ready_timeout
    delay = settings.retry_delay
    while True:
        try:
            return link.busy_command(command)
        except (CommandError, SimBusy) as exc:
            if time.monotonic() >= deadline:
                raise SmsNotReady(
                    link.port,
                    f"{command} still fails ({exc}) {settings.sms_ready_timeout:g} s "
                    "after start-up; the modem never reported SMS ready",
                ) from exc
            log.info("%s: %s failed (%s); waiting for SMS ready", link.port, command, exc)
        # Wakes at once when SMS Ready arrives; otherwise retry after the delay anyway.
        link.sms_ready.wait(delay)
        if link.closing.is_set():
            raise PortGone(link.port, command, "the modem is being closed")
        delay = min(delay * 2, settings.retry_delay * 8)


def _select_storage(link: Link, quirks: Quirks) -> str:
    supported: list[str] | None = None
    resp = link.attempt("AT+CPMS=?")
    if resp is not None and resp.prefixed("+CPMS"):
        groups = re.findall(r"\(([^)]*)\)", resp.prefixed("+CPMS")[0])
        if groups:
            supported = [m.strip().strip('"').upper() for m in groups[0].split(",")]
    wanted = list(quirks.storage_preference)
    if link.settings.storage:
        choice = link.settings.storage.upper()
        if supported is not None and choice not in supported:
            log.warning(
                "%s: configured storage %s is not offered (%s); using the family's choice",
                link.port,
                choice,
                ",".join(supported),
            )
        else:
            wanted = [choice]
    for mem in wanted:
        if supported is not None and mem not in supported:
            continue
        if link.attempt(f'AT+CPMS="{mem}","{mem}","{mem}"') is not None:
            return mem
        # Some modems refuse to store received messages in a memory (<mem3>); read there.
        if link.attempt(f'AT+CPMS="{mem}","{mem}"') is not None:
            return mem
    # Keep whatever the modem uses now, and learn what it is.
    resp = link.busy_command("AT+CPMS?")
    usage = parse_storage_usage(link.port, resp.lines)
    if usage is None:
        raise UnexpectedAnswer(link.port, f"AT+CPMS? answer {resp.lines}")
    log.warning("%s: kept the modem's message storage %s", link.port, usage.read.storage)
    return usage.read.storage


def _configure_message_service(link: Link) -> int | None:
    if link.settings.direct_messages:
        # Phase 2+: the modem waits for our AT+CNMA before acknowledging to the network, so
        # a message is acknowledged only once the handler has stored it.
        link.attempt("AT+CSMS=1")
    resp = link.attempt("AT+CSMS?")
    values = resp.prefixed("+CSMS") if resp else []
    fields = split_args(values[0]) if values else []
    return int(fields[0]) if fields and fields[0].isdigit() else None


def configure_indications(link: Link) -> str:
    """Ask for new-message indications (``AT+CNMI``); returns how status reports will come:
    "direct" (+CDS), "stored" (+CDSI) or "none". Also run again when the modem turned them off
    (27.005: an ME that gets no acknowledgement in time resets CNMI)."""
    mt = 2 if link.settings.direct_messages else 1
    allowed = _cnmi_ranges(link)
    # Prefer status reports routed directly (+CDS, ds=1); fall back to stored (+CDSI, ds=2).
    # mode 2 buffers codes while the link is busy instead of dropping them (mode 1 drops).
    candidates = [(mode, mt, 0, ds, 0) for ds in (1, 2) for mode in (2, 1)] + [
        (2, mt, 0, 0, 0),
        (1, mt, 0, 0, 0),
    ]
    for cand in candidates:
        if allowed and not all(v in allowed[i] for i, v in enumerate(cand) if i < len(allowed)):
            continue
        if link.attempt("AT+CNMI=" + ",".join(str(v) for v in cand)) is not None:
            return {1: "direct", 2: "stored"}.get(cand[3], "none")
    raise ModemError(link.port, "the modem accepts no AT+CNMI setting for new messages")


def _cnmi_ranges(link: Link) -> list[set[int]] | None:
    resp = link.attempt("AT+CNMI=?")
    if resp is None or not resp.prefixed("+CNMI"):
        return None
    ranges = []
    for group in re.findall(r"\(([^)]*)\)", resp.prefixed("+CNMI")[0]):
        values: set[int] = set()
        for part in group.split(","):
            part = part.strip()
            if "-" in part:
                lo, _, hi = part.partition("-")
                if lo.strip().isdigit() and hi.strip().isdigit():
                    values.update(range(int(lo), int(hi) + 1))
            elif part.isdigit():
                values.add(int(part))
        ranges.append(values)
    return ranges or None
