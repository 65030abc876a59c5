"""The simulated GSM network: modems and handsets by number, an SMSC that carries messages
between them, status reports, USSD, and one seeded random source for everything random."""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from gateway.modem import pdu as codec
from gateway.modem.errors import CodecError
from gateway.sim.clock import NetworkClock
from gateway.sim.errors import DuplicateNumber, NoSuchNumber, UnknownHandset, UnknownModem
from gateway.sim.families import family as family_profile
from gateway.sim.handset import Handset, ReportDelay, check_report_delay
from gateway.sim.identity import make_iccid, make_imei, make_imsi
from gateway.sim.modem import SimModem
from gateway.sim.tpdu import SubmitHeader, submit_to_deliver

log = logging.getLogger(__name__)

BALANCE_CODES = {"*100#", "*101#", "*123#", "*124#"}
NUMBER_CODES = {"*111#", "*#100#", "*135#"}
# TP-Status values (3GPP TS 23.040 §9.2.3.15). 0x40-0x5F are permanent errors: the service
# centre makes no more attempts. A number no subscriber has is "not obtainable" (0x43), the code
# for a destination that cannot be reached at all (the Symbian TSmsStatus and Windows RIL tables
# of the same spec name it ESmsPermErrorNotObtainable / RIL_MSGDLVSTATUS_NOTOBTAINABLE); 0x41
# "incompatible destination" is for a recipient that cannot take this kind of message.
STATUS_DELIVERED = 0x00
STATUS_INCOMPATIBLE = 0x41
STATUS_NOT_OBTAINABLE = 0x43
# Fewer digits than this is a short code (3-8 digits in the countries that have them), never a
# subscriber's number: ``auto_handsets`` does not invent a phone for it.
MIN_SUBSCRIBER_DIGITS = 9
# Seconds from delivery to the status report reaching the sender: on real networks one to a few
# seconds (the SMSC hears back from the recipient's MSC, then submits the report).
DEFAULT_REPORT_DELAY = (1.0, 3.0)


def number_key(number: str) -> str:
    """How the network compares numbers: the digits, with or without the leading +."""
    return number.strip().lstrip("+")


class Network:
    """A virtual GSM network. Use as a context manager; closing it unplugs every modem.

    ``base_dir/by-id/`` holds one stable symlink per modem. ``seed`` makes identities,
    TP-MRs, concatenation references, out-of-order delivery and faults reproducible.
    ``reorder_probability`` is the chance a multipart text from a handset arrives shuffled.
    ``auto_handsets``: a message to an unknown subscriber number (9 digits or more) creates a
    handset for it. Off (the default), the network behaves like a real one: a submit to a
    number nobody has is accepted (+CMGS with its TP-MR) and its status report, when asked
    for, says "not obtainable" (0x43, a permanent error); a handset texting such a number is
    refused with :class:`NoSuchNumber`. A short code is never invented: it reaches a modem
    that serves it (:meth:`serve_number`) or nothing.
    ``status_report_delay``: seconds from delivery to the status report, fixed or drawn from a
    (shortest, longest) range; a handset may have its own (:meth:`Handset.set_report_delay`).
    0 gives the report at once; a modem with the ``instant_reports`` fault gets its reports
    at once whatever the delay, the race a client must survive.
    """

    def __init__(
        self,
        base_dir: str | Path,
        *,
        seed: int = 0,
        operator: str = "SimNet",
        plmn: str = "00101",
        smsc: str = "+10000000000",
        clock_start: datetime | None = None,
        reorder_probability: float = 0.5,
        auto_handsets: bool = False,
        status_report_delay: ReportDelay = DEFAULT_REPORT_DELAY,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.by_id_dir = self.base_dir / "by-id"
        self.by_id_dir.mkdir(parents=True, exist_ok=True)
        self.seed = seed
        self.operator = operator
        self.plmn = plmn
        self.smsc = smsc
        self.clock = NetworkClock(clock_start)
        self.reorder_probability = reorder_probability
        self.auto_handsets = auto_handsets
        self.status_report_delay = check_report_delay(status_report_delay)
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._modems: list[SimModem] = []
        self._handsets: list[Handset] = []
        self._by_number: dict[str, SimModem | Handset] = {}
        # Every message the network carried (and each it refused: kind "refused"), for tests.
        self.traffic: list[dict[str, Any]] = []
        self._closed = False
        # Status reports on their way back: (due, seq, deliver), run by one timer thread.
        self._pending: list[tuple[float, int, Callable[[], None]]] = []
        self._pending_seq = itertools.count()
        self._pending_changed = threading.Condition(self._lock)
        # Its own seeded source, so that report delays do not shift the other seeded choices.
        self._report_rng = random.Random(f"{seed}-reports")
        self._timer: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------

    def __enter__(self) -> Network:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every modem (their ports and links go away)."""
        with self._lock:
            self._closed = True
            modems = list(self._modems)
            self._pending.clear()  # reports still in the network are lost with it
            self._pending_changed.notify_all()
            timer = self._timer
        if timer is not None and timer is not threading.current_thread():
            timer.join(timeout=5)
        for m in modems:
            m.close()

    # ------------------------------------------------------------------------------------------
    # Members

    def add_modem(
        self,
        family: str = "generic",
        number: str | None = None,
        imei: str | None = None,
        iccid: str | None = None,
        imsi: str | None = None,
        pin: str | None = None,
        storage_capacity: int = 30,
        command_latency: float = 0.0,
        send_latency: float = 0.0,
        *,
        puk: str = "12345678",
        boot_time: float | None = None,
        reset_time: float = 0.2,
        cnma_timeout: float = 5.0,
        urc_pdu_gap: float = 0.0,
        chatter_interval: float | None = None,
        signal: int = 20,
        device: str | None = None,
        baudrate: int = 115200,
        cmgr_header: str | None = None,
    ) -> SimModem:
        """A new modem on the network, plugged in and booting (see SimModem for the knobs).

        ``boot_time`` (default: the family's) is the delay from power-on to "SMS Ready";
        ``device`` serves it on that serial device instead of a pty (no symlink then).
        ``cmgr_header`` replaces the family's ``+CMGR`` header template (``{stat}`` and
        ``{length}``), for the shapes seen in public logs but not tied to one family here:
        ``"{length}"`` gives ``+CMGR: 24`` and ``",,{length}"`` gives ``+CMGR: ,,92``.
        """
        profile = family_profile(family)
        if cmgr_header is not None:
            profile = dataclasses.replace(profile, cmgr_header=cmgr_header)
        with self._lock:
            rng = random.Random(self._rng.randrange(2**32))
            index = len(self._modems) + 1
            number = number or f"+1555000{index:04d}"
            taken = {m.imei for m in self._modems}
            imei = imei or self._unique(lambda: make_imei(self._rng), taken)
            iccid = iccid or make_iccid(self._rng)
            imsi = imsi or make_imsi(self._rng)
            if number_key(number) in self._by_number:
                raise DuplicateNumber(f"number {number} is already on the network")
            if any(m.imei == imei for m in self._modems):
                raise DuplicateNumber(f"IMEI {imei} is already on the network")
            link = None
            if device is None:
                serial = imei[-8:]
                link = self.by_id_dir / (
                    f"usb-{profile.usb_vendor}_{profile.usb_model}_{serial}-{profile.interface}-port0"
                )
            modem = SimModem(
                self,
                profile=profile,
                number=number,
                imei=imei,
                iccid=iccid,
                imsi=imsi,
                pin=pin,
                puk=puk,
                storage_capacity=storage_capacity,
                command_latency=command_latency,
                send_latency=send_latency,
                boot_time=profile.boot_time if boot_time is None else boot_time,
                reset_time=reset_time,
                cnma_timeout=cnma_timeout,
                urc_pdu_gap=urc_pdu_gap,
                chatter_interval=chatter_interval,
                signal=signal,
                rng=rng,
                link=link,
                device=device,
                baudrate=baudrate,
            )
            modem.start()
            self._modems.append(modem)
            self._by_number[number_key(number)] = modem
        log.info("sim: %s modem %s (IMEI %s) on %s", family, number, imei, modem.port)
        return modem

    @staticmethod
    def _unique(make: Any, taken: set[str]) -> str:
        while True:
            value = make()
            if value not in taken:
                return value

    def add_handset(self, number: str, *, report_delay: ReportDelay | None = None) -> Handset:
        """A new handset with this number; ``report_delay`` overrides the network's delay of the
        status reports for messages delivered to it."""
        with self._lock:
            if number_key(number) in self._by_number:
                raise DuplicateNumber(f"number {number} is already on the network")
            handset = Handset(self, number)
            if report_delay is not None:
                handset.set_report_delay(report_delay)
            self._handsets.append(handset)
            self._by_number[number_key(number)] = handset
            return handset

    def serve_number(self, number: str, modem: SimModem) -> None:
        """Route texts to ``number`` (a short code, or a second number) to ``modem`` as well, as
        an operator routes a short code to the SIM behind it. The sender sees ``number`` as the
        recipient; the modem receives them like texts to its own number."""
        with self._lock:
            found = self._by_number.get(number_key(number))
            if found is modem:
                return
            if found is not None:
                raise DuplicateNumber(f"number {number} is already on the network")
            if modem not in self._modems:
                raise UnknownModem(modem.imei)
            self._by_number[number_key(number)] = modem

    def served_numbers(self, modem: SimModem) -> list[str]:
        """The numbers that reach ``modem`` besides its own (see :meth:`serve_number`)."""
        own = number_key(modem.number)
        with self._lock:
            return sorted(k for k, v in self._by_number.items() if v is modem and k != own)

    @property
    def modems(self) -> list[SimModem]:
        with self._lock:
            return list(self._modems)

    @property
    def handsets(self) -> list[Handset]:
        with self._lock:
            return list(self._handsets)

    def modem(self, key: str) -> SimModem:
        """The modem with this IMEI or phone number; UnknownModem otherwise."""
        with self._lock:
            for m in self._modems:
                if key == m.imei or number_key(key) == number_key(m.number):
                    return m
        raise UnknownModem(key)

    def handset(self, number: str) -> Handset:
        """The handset with this number; UnknownHandset otherwise."""
        with self._lock:
            found = self._by_number.get(number_key(number))
        if isinstance(found, Handset):
            return found
        raise UnknownHandset(number)

    def _destination(self, number: str) -> SimModem | Handset | None:
        with self._lock:
            key = number_key(number)
            found = self._by_number.get(key)
            if (
                found is None
                and self.auto_handsets
                and key.isdigit()
                and len(key) >= MIN_SUBSCRIBER_DIGITS
            ):
                found = self.add_handset(number)
            return found

    def _record(self, **event: Any) -> None:
        with self._lock:
            self.traffic.append({"time": self.clock.now().isoformat(), **event})

    # ------------------------------------------------------------------------------------------
    # The SMSC

    def send_from_handset(
        self, sender: str, to: str, text: str, *, reorder: bool | None = None
    ) -> list[str]:
        """Carry a handset's text to ``to``; returns the SMS-DELIVER PDUs in delivery order.
        :class:`NoSuchNumber` when no modem or handset has (or serves) that number: the phone
        shows "not sent", nothing is carried."""
        dest = self._destination(to)
        if dest is None:
            self._record(kind="refused", sender=sender, to=to, text=text)
            raise NoSuchNumber(to)
        now = self.clock.now()
        self._record(kind="text", sender=sender, to=to, text=text)
        if isinstance(dest, Handset):
            dest.receive_text(sender, text, now)
            return []
        with self._lock:
            reference = self._rng.randrange(256)
            pdus = codec.encode_deliver(
                sender, text, timestamp=now, smsc=self.smsc, reference=reference
            )
            order = list(pdus)
            if reorder is None:
                reorder = self._rng.random() < self.reorder_probability
            shuffle = reorder
            if shuffle and len(order) > 1:
                while order == pdus:
                    self._rng.shuffle(order)
        for p in order:
            dest.deliver(p)
        return order

    def route_submit(self, modem: SimModem, header: SubmitHeader, pdu_hex: str, mr: int) -> None:
        """An SMS-SUBMIT a modem sent: deliver it and send back the status report it asked for."""
        submitted = self.clock.now()
        self._record(
            kind="submit", sender=modem.number, to=header.destination, reference=mr, pdu=pdu_hex
        )

        dest = self._destination(header.destination)

        def report(status: int) -> None:
            if not header.status_report_request:
                return
            sr = codec.encode_status_report(
                header.destination,
                mr,
                status,
                submitted=submitted,
                discharged=self.clock.now(),
                smsc=self.smsc,
            )
            self._report_later(modem, dest, sr)

        if isinstance(dest, SimModem):
            deliver = submit_to_deliver(header, modem.number, submitted, self.smsc)
            dest.deliver(deliver, on_delivered=lambda: report(STATUS_DELIVERED))
        elif isinstance(dest, Handset):
            try:
                part = codec.decode(pdu_hex, smsc=True)
            except CodecError as exc:
                log.warning("sim: modem %s sent a PDU that does not decode: %s", modem.imei, exc)
                report(STATUS_INCOMPATIBLE)
                return
            dest.receive_part(
                modem.number, part, submitted, on_delivered=lambda: report(STATUS_DELIVERED)
            )
        else:
            report(STATUS_NOT_OBTAINABLE)

    def route_text(self, modem: SimModem, to: str, text: str, mr: int, srr: bool) -> None:
        """A text-mode AT+CMGS: the network carries the text as it is."""
        submitted = self.clock.now()
        self._record(kind="text", sender=modem.number, to=to, text=text, reference=mr)

        dest = self._destination(to)

        def report(status: int = STATUS_DELIVERED) -> None:
            if srr:
                sr = codec.encode_status_report(
                    to,
                    mr,
                    status,
                    submitted=submitted,
                    discharged=self.clock.now(),
                    smsc=self.smsc,
                )
                self._report_later(modem, dest, sr)

        if isinstance(dest, Handset):
            dest.receive_text(modem.number, text, submitted, on_delivered=report)
        elif isinstance(dest, SimModem):
            pdus = codec.encode_deliver(modem.number, text, timestamp=submitted, smsc=self.smsc)
            for i, p in enumerate(pdus):
                dest.deliver(p, on_delivered=report if i == len(pdus) - 1 else None)
        else:
            report(STATUS_NOT_OBTAINABLE)

    # ------------------------------------------------------------------------------------------
    # Status reports on their way back

    def _report_later(self, modem: SimModem, dest: SimModem | Handset | None, pdu: str) -> None:
        """Hand ``modem`` its status report after the recipient's (or the network's) delay."""
        if "instant_reports" in modem.faults:
            modem.deliver_status_report(pdu)
            return
        low, high = (
            dest.report_delay
            if isinstance(dest, Handset) and dest.report_delay is not None
            else self.status_report_delay
        )
        with self._lock:
            delay = low if low == high else self._report_rng.uniform(low, high)
            if delay <= 0:
                later = False
            elif self._closed:
                return
            else:
                later = True
                due = time.monotonic() + delay
                entry = (due, next(self._pending_seq), lambda: modem.deliver_status_report(pdu))
                heapq.heappush(self._pending, entry)
                if self._timer is None:
                    self._timer = threading.Thread(
                        target=self._run_reports, name="sim-network-reports", daemon=True
                    )
                    self._timer.start()
                self._pending_changed.notify_all()
        if not later:
            modem.deliver_status_report(pdu)

    def _run_reports(self) -> None:
        """The timer thread: hands each pending status report over when it is due."""
        while True:
            with self._lock:
                while not self._closed:
                    if self._pending and self._pending[0][0] <= time.monotonic():
                        break
                    timeout = self._pending[0][0] - time.monotonic() if self._pending else None
                    self._pending_changed.wait(timeout)
                if self._closed:
                    return
                _, _, deliver = heapq.heappop(self._pending)
            deliver()

    def ussd_answer(self, modem: SimModem, request: str) -> str | None:
        """What the network answers a USSD request; None when the code is not served."""
        code = request.strip()
        if code in BALANCE_CODES:
            return f"Your balance is {modem.balance_cents / 100:.2f} USD."
        if code in NUMBER_CODES:
            return f"Your number is {modem.number}."
        return None
