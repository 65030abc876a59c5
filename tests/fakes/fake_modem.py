"""A small scripted modem behind :class:`FakeSerial`, for unit tests of the Modem driver.

It answers the commands the driver uses, with switches for the family habits and faults the tests
need. It is deliberately simple; the realistic simulator is ``gateway.sim``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from fakes.serial_port import FakeSerial


def ok(*lines: str) -> bytes:
    return ("".join(f"\r\n{line}\r\n" for line in lines) + "\r\nOK\r\n").encode()


def err(text: str = "ERROR") -> bytes:
    return f"\r\n{text}\r\n".encode()


def tpdu_length(pdu: str) -> int:
    """The <length> a modem shows: octets after the SMSC field (garbage gives a guess)."""
    try:
        smsc = int(pdu[:2], 16) + 1
    except ValueError:
        smsc = 1
    return max(len(pdu) // 2 - smsc, 0)


@dataclass
class FakeModem:
    """Call it with one command (as FakeSerial records it) to get the modem's bytes."""

    manufacturer: str = "Generic"
    model: str = "GSM Modem"
    revision: str = "1.0"
    imei: str = "866123456789012"
    imsi: str = "310150123456789"
    iccid_answers: dict[str, str] = field(
        default_factory=lambda: {"AT+CCID": "+CCID: 8944100000000000001"}
    )
    number: str | None = "+15551230000"
    echo: bool = True
    cmee_levels: tuple[int, ...] = (0, 1, 2)
    sim_state: str = "READY"
    pin: str | None = None
    busy_cpin: int = 0  # AT+CPIN? answers +CME ERROR: 14 this many times
    sms_ready: bool = True
    on_sms_not_ready: Callable[[], None] | None = None  # called after answering ERROR
    cpms_supported: tuple[str, ...] = ("SM", "ME")
    mem1: str = "SM"
    storage: dict[str, dict[int, tuple[int, str]]] = field(
        default_factory=lambda: {"SM": {}, "ME": {}}
    )
    capacity: int = 30
    empty_read: str = "321"  # "321" or "ok" (SIM800)
    cmgr_header: str = "{stat},,{length}"
    cnmi_ranges: str | None = "(0-3),(0-3),(0,2),(0-2),(0,1)"
    cnmi_rejects: set[str] = field(default_factory=set)
    csms_service: int = 0
    csms_settable: bool = True
    next_mr: int = 1
    fail_sends: dict[int, str] = field(default_factory=dict)  # send number (1-based) -> error
    prompt: bool = True
    cusd: bytes | None = None
    creg: str = "0,1"
    cops: str = '0,0,"Test Net",7'
    csq: str = "20,99"
    overrides: dict[str, bytes] = field(default_factory=dict)
    extra_before_final: dict[str, str] = field(default_factory=dict)  # cmd -> raw URC text
    sent: list[str] = field(default_factory=list)
    sends_attempted: int = 0
    cpin_entered: list[str] = field(default_factory=list)
    _pending_cmgs: int | None = None

    def attach(self) -> FakeSerial:
        return FakeSerial(self)

    def __call__(self, cmd: str) -> bytes | None:
        if cmd == "<ESC>":
            # At the prompt ESC abandons the message; in command mode a modem ignores it.
            at_prompt, self._pending_cmgs = self._pending_cmgs is not None, None
            return ok() if at_prompt else None
        if cmd.startswith("PDU:"):
            return self._pdu(cmd[4:])
        out = self._answer(cmd)
        if out is None:
            return None
        echo = (cmd + "\r").encode() if self.echo else b""
        extra = self.extra_before_final.get(cmd)
        if extra and out.endswith(b"\r\nOK\r\n"):
            out = out[: -len(b"\r\nOK\r\n")] + extra.encode() + b"\r\nOK\r\n"
        return echo + out

    # -- commands ----------------------------------------------------------------------------

    def _answer(self, cmd: str) -> bytes | None:
        if cmd in self.overrides:
            return self.overrides[cmd]
        up = cmd.upper()
        if up == "AT":
            return ok()
        if up in ("ATE0", "ATE1"):
            self.echo = up == "ATE1"
            return ok()
        if up == "AT+CMEE?":  # the AT channel's resync probe
            return ok(f"+CMEE: {max(self.cmee_levels)}")
        if up.startswith("AT+CMEE="):
            return ok() if int(up[8:]) in self.cmee_levels else err()
        if up == "AT+CGMI":
            return ok(self.manufacturer)
        if up == "AT+CGMM":
            return ok(self.model)
        if up == "AT+CGMR":
            return ok(self.revision)
        if up == "AT+CGSN":
            return ok(self.imei)
        if up == "AT+CIMI":
            return ok(self.imsi) if self.sim_state == "READY" else err("+CME ERROR: 11")
        if cmd in self.iccid_answers:
            return ok(self.iccid_answers[cmd])
        if up == "AT+CNUM":
            return ok(f'+CNUM: "","{self.number}",145') if self.number else ok()
        if up == "AT+CPIN?":
            if self.busy_cpin > 0:
                self.busy_cpin -= 1
                return err("+CME ERROR: 14")
            return ok(f"+CPIN: {self.sim_state}")
        if up.startswith("AT+CPIN="):
            entered = cmd.split("=", 1)[1].strip('"')
            self.cpin_entered.append(entered)
            if self.sim_state != "SIM PIN":
                return err("+CME ERROR: 3")
            if entered == self.pin:
                self.sim_state = "READY"
                return ok()
            return err("+CME ERROR: 16")
        if up == "AT+CSQ":
            return ok(f"+CSQ: {self.csq}")
        if up == "AT+CREG?":
            return ok(f"+CREG: {self.creg}")
        if up in ("AT+CGREG?", "AT+CEREG?"):
            return err()
        if up == "AT+COPS?":
            return ok(f"+COPS: {self.cops}")
        if up.startswith("AT+COPS="):
            return ok()
        if up.startswith("AT+CUSD="):
            return self.cusd if self.cusd is not None else ok()
        return self._sms(cmd, up)

    def _sms(self, cmd: str, up: str) -> bytes | None:
        sms_commands = ("AT+CMGF", "AT+CPMS", "AT+CNMI", "AT+CSMS", "AT+CMG", "AT+CNMA")
        if not up.startswith(sms_commands):
            return err()
        if not self.sms_ready:
            if self.on_sms_not_ready is not None:
                return err() + (self.on_sms_not_ready() or b"")
            return err()
        if up.startswith("AT+CMGF="):
            return ok()
        if up == "AT+CPMS=?":
            mems = ",".join(f'"{m}"' for m in self.cpms_supported)
            return ok(f"+CPMS: ({mems}),({mems}),({mems})")
        if up == "AT+CPMS?":
            used = len(self.storage.get(self.mem1, {}))
            part = f'"{self.mem1}",{used},{self.capacity}'
            return ok(f"+CPMS: {part},{part},{part}")
        if up.startswith("AT+CPMS="):
            mems = [m.strip('"') for m in cmd.split("=", 1)[1].split(",")]
            if any(m not in self.cpms_supported for m in mems):
                return err("+CMS ERROR: 302")
            self.mem1 = mems[0]
            used = len(self.storage.get(self.mem1, {}))
            return ok(f"+CPMS: {used},{self.capacity},{used},{self.capacity}")
        if up == "AT+CNMI=?":
            return ok(f"+CNMI: {self.cnmi_ranges}") if self.cnmi_ranges else err()
        if up.startswith("AT+CNMI="):
            return err() if cmd[8:] in self.cnmi_rejects else ok()
        if up == "AT+CSMS?":
            return ok(f"+CSMS: {self.csms_service},1,1,1")
        if up.startswith("AT+CSMS="):
            if not self.csms_settable:
                return err()
            self.csms_service = int(up[8:])
            return ok("+CSMS: 1,1,1")
        if up.startswith("AT+CNMA"):
            return ok()
        if up == "AT+CMGL=4":
            lines: list[str] = []
            for index, (stat, pdu) in sorted(self.storage.get(self.mem1, {}).items()):
                lines += [f"+CMGL: {index},{stat},,{tpdu_length(pdu)}", pdu]
            return ok(*lines)
        m = re.fullmatch(r"AT\+CMGR=(\d+)", up)
        if m:
            entry = self.storage.get(self.mem1, {}).get(int(m.group(1)))
            if entry is None:
                return ok() if self.empty_read == "ok" else err("+CMS ERROR: 321")
            stat, pdu = entry
            header = self.cmgr_header.format(stat=stat, length=tpdu_length(pdu))
            return ok(f"+CMGR: {header}", pdu)
        m = re.fullmatch(r"AT\+CMGD=(\d+)", up)
        if m:
            self.storage.get(self.mem1, {}).pop(int(m.group(1)), None)
            return ok()
        m = re.fullmatch(r"AT\+CMGS=(\d+)", up)
        if m:
            if not self.prompt:
                return None
            self._pending_cmgs = int(m.group(1))
            return b"\r\n> "
        return err()

    def _pdu(self, pdu: str) -> bytes:
        self._pending_cmgs = None
        self.sends_attempted += 1
        failure = self.fail_sends.get(self.sends_attempted)
        if failure:
            return err(failure)
        self.sent.append(pdu)
        mr = self.next_mr
        self.next_mr = (self.next_mr + 1) % 256
        return ok(f"+CMGS: {mr}")
