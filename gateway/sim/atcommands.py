"""The AT command set of a simulated modem (3GPP TS 27.007 / 27.005 and family extras).

:class:`AtCommands` is one part of a :class:`~gateway.sim.modem.SimModem`, given the modem it
works on; every method here runs on the modem thread. A handler returns the information lines of
its command (or a :class:`Prompt`) and raises an :class:`AtFailure` for an error result;
:meth:`AtCommands.execute` turns a whole command line into one :class:`Reply`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING

from gateway.modem import pdu as codec
from gateway.modem.errors import CodecError
from gateway.sim.atparse import AtCommand, AtSyntaxError, parse_line
from gateway.sim.charset import CHARSETS, CharsetError, from_te, to_te
from gateway.sim.families import Family
from gateway.sim.identity import swap_nibbles
from gateway.sim.storage import (
    ALL,
    REC_READ,
    REC_UNREAD,
    STAT_NAMES,
    STO_SENT,
    STO_UNSENT,
    StoredPdu,
)
from gateway.sim.tpdu import TpduError, pack_gsm7, parse_submit, unpack_gsm7

if TYPE_CHECKING:
    from gateway.sim.modem import SimModem

log = logging.getLogger(__name__)

CME_TEXT = {
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",
    16: "incorrect password",
    30: "no network service",
    50: "incorrect parameters",
    100: "unknown",
}
CMS_TEXT = {
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    305: "invalid text mode parameter",
    311: "SIM PIN required",
    316: "SIM PUK required",
    321: "invalid memory index",
    322: "memory full",
    331: "no network service",
    340: "no +CNMA acknowledgement expected",
    500: "unknown error",
}

# Commands that need the SMS service: ERROR before "SMS Ready" on gated families, +CMS ERROR:
# 311 while the SIM is locked.
SMS_COMMANDS = {"+CMGS", "+CMGL", "+CMGR", "+CMGD", "+CNMI", "+CPMS", "+CSMS", "+CMGW", "+CSCA"}
SIM_COMMANDS = {"+CIMI", "+CNUM", "+CUSD"}
MEMORIES = ("SM", "ME", "MT")
BALANCE_CODES = {"*100#", "*101#", "*123#", "*124#"}
NUMBER_CODES = {"*111#", "*#100#", "*135#"}


class AtFailure(Exception):
    """An error final result code."""

    def line(self, cmee: int) -> str:
        return "ERROR"


class PlainError(AtFailure):
    """``ERROR``: an unknown command, a bad parameter, or not now."""


class CmeFailure(AtFailure):
    """``+CME ERROR: n`` (shown as ERROR, a number or text per AT+CMEE)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code

    def line(self, cmee: int) -> str:
        if cmee == 0:
            return "ERROR"
        if cmee == 2:
            return f"+CME ERROR: {CME_TEXT.get(self.code, 'unknown')}"
        return f"+CME ERROR: {self.code}"


class CmsFailure(AtFailure):
    """``+CMS ERROR: n``: a final result of its own (TS 27.005 3.2.5), whatever AT+CMEE says,
    except that AT+CMEE=2 shows the text."""

    def __init__(self, code: int | None, raw: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.raw = raw

    def line(self, cmee: int) -> str:
        if self.raw is not None:
            return self.raw
        if cmee == 2 and self.code in CMS_TEXT:
            return f"+CMS ERROR: {CMS_TEXT[self.code]}"
        return f"+CMS ERROR: {self.code}"


@dataclass
class SubmittedPart:
    """A message this modem sent (AT+CMGS), with the TP-MR it answered."""

    reference: int
    destination: str
    pdu: str  # hex as written (empty for a text-mode send)
    status_report_request: bool


@dataclass
class Prompt:
    """AT+CMGS accepted its parameters: the modem sends "> " and waits for the message."""

    mode: str  # "pdu" | "text"
    length: int = 0
    destination: str = ""


@dataclass
class Reply:
    """The response to one command line: information blocks, then a final result or a prompt,
    and actions that run once it is written (routing a sent message, a reset)."""

    blocks: list[list[str]] = field(default_factory=list)
    final: str | None = "OK"
    prompt: Prompt | None = None
    after: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class AtSettings:
    """What AT commands set; back to the family's defaults at every boot (and ATZ in part)."""

    echo: bool = True
    verbose: bool = True
    cmee: int = 0
    cmgf: int = 0
    csms: int = 0
    cnmi: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    cpms: list[str] = field(default_factory=lambda: ["SM", "SM", "SM"])
    creg: int = 0
    cgreg: int = 0
    cereg: int = 0
    cscs: str = "IRA"
    csca: str = "+10000000000"
    csmp: list[int] = field(default_factory=lambda: [17, 167, 0, 0])
    ussdmode: int = 1  # Huawei ^USSDMODE: 1 = packed hex strings, 0 = plain text
    curc: int = 1  # Huawei ^CURC: 0 silences the periodic ^RSSI/^BOOT/^MODE reports
    cgatt: int = 1  # +CGATT: the packet domain attaches by itself once registered
    cusd: int = 0  # +CUSD <n>: 1 = unsolicited result codes enabled
    cops_format: int = 0  # +COPS <format>: 0 long name, 1 short name, 2 numeric (MCC MNC)
    clock_offset: timedelta = timedelta(0)  # +CCLK: the modem's clock minus the network's
    clock_zone: tzinfo | None = None  # +CCLK: the time zone it was set with (None: UTC)

    @classmethod
    def boot(cls, profile: Family) -> AtSettings:
        return cls(
            cmgf=1 if profile.boot_text_mode else 0,
            cnmi=list(profile.default_cnmi),
            cpms=list(profile.default_cpms),
        )


def _scts(ts: datetime | None) -> str:
    """A time stamp as text mode shows it: "yy/MM/dd,hh:mm:ss+zz" (zz in quarter hours)."""
    if ts is None:
        return ""
    off = ts.utcoffset()
    q = int(off.total_seconds() // 900) if off is not None else 0
    return ts.strftime("%y/%m/%d,%H:%M:%S") + f"{'+' if q >= 0 else '-'}{abs(q):02d}"


def _parse_cclk(text: str) -> datetime | None:
    """AT+CCLK="yy/MM/dd,hh:mm:ss±zz" (or a four-digit year, as Gammu may send); None if bad."""
    body, sign, zone = text[:-3], text[-3:-2], text[-2:]
    if sign not in "+-" or not sign or not zone.isdigit():
        body, sign, zone = text, "+", "00"
    for fmt in ("%y/%m/%d,%H:%M:%S", "%Y/%m/%d,%H:%M:%S"):
        try:
            naive = datetime.strptime(body, fmt)
        except ValueError:
            continue
        quarters = int(zone) * (1 if sign == "+" else -1)
        return naive.replace(tzinfo=timezone(timedelta(minutes=15 * quarters)))
    return None


class AtCommands:
    """The AT command interpreter of one SimModem (see the module docstring).

    It is given the modem whose state it reads and changes (identity, SIM, radio, storage, the
    AT settings in ``modem.at``) and whose machinery it calls (URCs, reset, acknowledgements,
    the network); it keeps only whether a command line is being run.
    """

    def __init__(self, modem: SimModem) -> None:
        self.modem = modem
        # A command line is being run: the modem holds URCs until its answer went out.
        self.executing = False

    # ------------------------------------------------------------------------------------------

    def execute(self, line: str) -> Reply:
        """Run a command line; the reply holds everything the modem answers."""
        reply = Reply()
        try:
            commands = parse_line(line)
        except AtSyntaxError as exc:
            log.debug("modem %s: %s", self.modem.imei, exc)
            reply.final = "ERROR"
            return reply
        self.executing = True
        try:
            for cmd in commands:
                try:
                    result = self._dispatch(cmd, reply)
                except AtSyntaxError as exc:
                    log.debug("modem %s: %s", self.modem.imei, exc)
                    reply.final = "ERROR"
                    return reply
                except AtFailure as failure:
                    reply.final = failure.line(self.modem.at.cmee)
                    return reply
                if isinstance(result, Prompt):
                    reply.prompt = result
                    reply.final = None
                    return reply
                if result:
                    reply.blocks.append(result)
            return reply
        finally:
            self.executing = False

    def _dispatch(self, cmd: AtCommand, reply: Reply) -> list[str] | Prompt | None:
        iccid_format = self.modem.profile.iccid_commands.get(f"{cmd.name} {cmd.kind}")
        if iccid_format is not None:
            return [
                iccid_format.format(
                    iccid=self.modem.iccid, iccid_swapped=swap_nibbles(self.modem.iccid)
                )
            ]
        if cmd.name in SMS_COMMANDS:
            self._sms_gate()
        if cmd.name in SIM_COMMANDS:
            self._sim_gate()
        if cmd.name[0] == "S" and cmd.name[1:].isdigit() and cmd.name != "S0":
            return ["000"] if cmd.kind == "read" else None  # S-registers: accepted
        handler = getattr(self, "_at_" + self._method_name(cmd.name), None)
        if handler is None:
            raise PlainError()
        return handler(cmd, reply)

    @staticmethod
    def _method_name(name: str) -> str:
        prefix = {"+": "", "^": "hw_", "&": "amp_", "!": "bang_", "$": "dollar_"}.get(name[0])
        if prefix is None:
            return name if name.isalnum() else "_unknown"
        return prefix + name[1:]

    def _sim_gate(self) -> None:
        if self.modem.sim_state == "SIM PIN":
            raise CmeFailure(11)
        if self.modem.sim_state == "SIM PUK":
            raise CmeFailure(12)

    def _sms_gate(self) -> None:
        if self.modem.sim_state == "SIM PIN":
            raise CmsFailure(311)
        if self.modem.sim_state == "SIM PUK":
            raise CmsFailure(316)
        if self.modem.profile.sms_gated and not self.modem.sms_ready:
            raise PlainError()

    @staticmethod
    def _flag(cmd: AtCommand, allowed: range) -> int:
        value = int(cmd.args[0]) if cmd.args and cmd.args[0].isdigit() else 0
        if value not in allowed:
            raise AtSyntaxError(f"{cmd.name}{value} is not supported")
        return value

    # ------------------------------------------------------------------------------------------
    # V.250 basics

    def _at_E(self, cmd: AtCommand, reply: Reply) -> None:
        self.modem.at.echo = bool(self._flag(cmd, range(2)))

    def _at_V(self, cmd: AtCommand, reply: Reply) -> None:
        self.modem.at.verbose = bool(self._flag(cmd, range(2)))

    def _at_Q(self, cmd: AtCommand, reply: Reply) -> None:
        self._flag(cmd, range(1))

    def _at_X(self, cmd: AtCommand, reply: Reply) -> None:
        self._flag(cmd, range(5))

    def _at_Z(self, cmd: AtCommand, reply: Reply) -> None:
        """Restore the user profile: echo on, verbose, errors as ERROR, the boot SMS mode."""
        fresh = AtSettings.boot(self.modem.profile)
        at = self.modem.at
        at.echo, at.verbose, at.cmee, at.cmgf = fresh.echo, fresh.verbose, fresh.cmee, fresh.cmgf

    _at_amp_F = _at_Z

    def _at_amp_W(self, cmd: AtCommand, reply: Reply) -> None:
        return None

    _at_amp_C = _at_amp_D = _at_amp_K = _at_amp_W

    def _at_S0(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        return ["000"] if cmd.kind == "read" else None

    def _at_I(self, cmd: AtCommand, reply: Reply) -> list[str]:
        return [line.format(imei=self.modem.imei) for line in self.modem.profile.ati]

    def _at_H(self, cmd: AtCommand, reply: Reply) -> None:
        return None

    def _at_D(self, cmd: AtCommand, reply: Reply) -> None:
        raise PlainError()  # voice calls are not simulated

    # ------------------------------------------------------------------------------------------
    # Identity

    def _info(self, cmd: AtCommand, value: str) -> list[str]:
        if cmd.kind == "test":
            return []
        if cmd.kind != "action":
            raise PlainError()
        return [value]

    def _at_CGMI(self, cmd: AtCommand, reply: Reply) -> list[str]:
        return self._info(cmd, self.modem.profile.manufacturer)

    def _at_CGMM(self, cmd: AtCommand, reply: Reply) -> list[str]:
        return self._info(cmd, self.modem.profile.model)

    def _at_CGMR(self, cmd: AtCommand, reply: Reply) -> list[str]:
        return self._info(cmd, self.modem.profile.revision)

    def _at_CGSN(self, cmd: AtCommand, reply: Reply) -> list[str]:
        return self._info(cmd, self.modem.imei)

    _at_GMI, _at_GMM, _at_GMR, _at_GSN = _at_CGMI, _at_CGMM, _at_CGMR, _at_CGSN

    def _at_CIMI(self, cmd: AtCommand, reply: Reply) -> list[str]:
        return self._info(cmd, self.modem.imsi)

    def _at_GCAP(self, cmd: AtCommand, reply: Reply) -> list[str]:
        return ["+GCAP: +CGSM"]

    def _at_CNUM(self, cmd: AtCommand, reply: Reply) -> list[str]:
        if cmd.kind == "test":
            return []
        toa = 145 if self.modem.number.startswith("+") else 129
        return [f'+CNUM: "","{self.modem.number}",{toa}{self.modem.profile.cnum_suffix}']

    def _at_CLAC(self, cmd: AtCommand, reply: Reply) -> list[str]:
        if self.modem.profile.clac is None:
            raise PlainError()
        return ["AT" + c for c in self.modem.profile.clac]

    # ------------------------------------------------------------------------------------------
    # Settings

    def _at_CMEE(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        if cmd.kind == "read":
            return [f"+CMEE: {self.modem.at.cmee}"]
        if cmd.kind == "test":
            return ["+CMEE: (0-2)"]
        value = cmd.int_arg(0, 0)
        if value not in (0, 1, 2):
            raise CmeFailure(50)
        self.modem.at.cmee = value
        return None

    def _at_CMGF(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        if cmd.kind == "read":
            return [f"+CMGF: {self.modem.at.cmgf}"]
        if cmd.kind == "test":
            return ["+CMGF: (0-1)"]
        value = cmd.int_arg(0, 0)
        if value not in (0, 1):
            raise PlainError()
        self.modem.at.cmgf = value
        return None

    def _at_CSCS(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        if cmd.kind == "read":
            return [f'+CSCS: "{self.modem.at.cscs}"']
        if cmd.kind == "test":
            return ['+CSCS: ("IRA","GSM","UCS2")']
        value = (cmd.arg(0) or "").upper()
        if value not in CHARSETS:
            raise CmeFailure(4)
        self.modem.at.cscs = value
        return None

    def _at_CSCA(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        if cmd.kind == "read":
            toa = 145 if self.modem.at.csca.startswith("+") else 129
            return [f'+CSCA: "{self.modem.at.csca}",{toa}']
        if cmd.kind == "set" and cmd.arg(0):
            self.modem.at.csca = cmd.arg(0) or ""
            return None
        return []

    def _at_CSMP(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        if cmd.kind == "read":
            return ["+CSMP: " + ",".join(str(v) for v in self.modem.at.csmp)]
        if cmd.kind == "set":
            for i in range(4):
                value = cmd.int_arg(i)
                if value is not None:
                    self.modem.at.csmp[i] = value
        return None

    def _accept(self, cmd: AtCommand, reply: Reply) -> None:
        return None

    _at_CLIP = _at_CRC = _at_CVHU = _at_CMER = _at_CSCB = _accept

    def _at_CPAS(self, cmd: AtCommand, reply: Reply) -> list[str]:
        return ["+CPAS: 0"]

    def _at_CBC(self, cmd: AtCommand, reply: Reply) -> list[str]:
        """Battery charge (TS 27.007 8.4): modules on a supply measure it; USB sticks do not."""
        if self.modem.profile.battery is None:
            raise PlainError()
        if cmd.kind == "test":
            return ["+CBC: (0-3),(0-100)"]
        return [self.modem.profile.battery]

    def _at_CCLK(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        """The modem's clock (TS 27.007 8.15), "yy/MM/dd,hh:mm:ss±zz" in quarter hours; set
        by AT+CCLK=, otherwise the network's time (NITZ)."""
        if cmd.kind == "test":
            return []
        if cmd.kind == "read":
            now = self.modem.network.clock.now() + self.modem.at.clock_offset
            if self.modem.at.clock_zone is not None:
                now = now.astimezone(self.modem.at.clock_zone)
            return [f'+CCLK: "{_scts(now)}"']
        if cmd.kind != "set":
            raise PlainError()
        when = _parse_cclk(cmd.arg(0) or "")
        if when is None:
            raise CmeFailure(50)
        self.modem.at.clock_offset = when - self.modem.network.clock.now()
        self.modem.at.clock_zone = when.tzinfo
        return None

    def _at_hw_CURC(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        """Huawei: periodic status reports on (1, the boot default) or off (0); Gammu sends
        ``AT^CURC=0`` when it connects to any Huawei (its F_HUAWEI_INIT)."""
        if self.modem.profile.name != "huawei":
            raise PlainError()
        if cmd.kind == "read":
            return [f"^CURC: {self.modem.at.curc}"]
        if cmd.kind == "test":
            return ["^CURC: (0-1)"]
        value = cmd.int_arg(0)
        if cmd.kind != "set" or value not in (0, 1):
            raise CmeFailure(50)
        self.modem.at.curc = value
        return None

    def _at_hw_PORTSEL(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        """Huawei: which port gets the URCs (0 PC UI, 1 modem); accepted and shown, not routed:
        the simulator serves one port per modem. Gammu sends ``AT^PORTSEL=1`` after ^CURC."""
        if self.modem.profile.name != "huawei":
            raise PlainError()
        if cmd.kind == "read":
            return ["^PORTSEL: 0"]
        if cmd.kind == "test":
            return ["^PORTSEL: (0-1)"]
        if cmd.kind != "set" or cmd.int_arg(0) not in (0, 1):
            raise CmeFailure(50)
        return None

    def _at_hw_USSDMODE(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        if self.modem.profile.name != "huawei":
            raise PlainError()
        if cmd.kind == "read":
            return [f"^USSDMODE: {self.modem.at.ussdmode}"]
        if cmd.kind == "set":
            self.modem.at.ussdmode = cmd.int_arg(0, 1) or 0
        return None

    # ------------------------------------------------------------------------------------------
    # SIM

    def _at_CPIN(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        if cmd.kind == "read":
            return [f"+CPIN: {self.modem.sim_state}"]
        if cmd.kind == "test":
            return []
        if cmd.kind != "set":
            raise PlainError()
        code = cmd.arg(0) or ""
        if self.modem.sim_state == "READY":
            raise CmeFailure(3)
        if self.modem.sim_state == "SIM PIN":
            if code != self.modem.pin:
                self.modem.pin_tries -= 1
                log.info(
                    "modem %s: wrong PIN, %d tries left", self.modem.imei, self.modem.pin_tries
                )
                if self.modem.pin_tries <= 0:
                    self.modem.sim_state = "SIM PUK"
                raise CmeFailure(16)
        else:
            new_pin = cmd.arg(1)
            if code != self.modem.puk or not new_pin:
                self.modem.puk_tries -= 1
                raise CmeFailure(16)
            self.modem.pin = new_pin
        self.modem.sim_state = "READY"
        self.modem.pin_tries, self.modem.puk_tries = 3, 10
        self.modem.faults.pop("pin", None)
        epoch = self.modem.boot_epoch
        reply.after.append(lambda: self.modem.on_sim_ready(epoch))
        reply.after.append(self.modem.update_registration)
        return None

    def _at_QPINC(self, cmd: AtCommand, reply: Reply) -> list[str]:
        if self.modem.profile.name != "quectel":
            raise PlainError()
        return [f'+QPINC: "SC",{self.modem.pin_tries},{self.modem.puk_tries}']

    # ------------------------------------------------------------------------------------------
    # Radio and network

    def _at_CFUN(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        if cmd.kind == "read":
            return [f"+CFUN: {self.modem.cfun}"]
        if cmd.kind == "test":
            return ["+CFUN: (0,1,4),(0-1)"]
        fun, rst = cmd.int_arg(0, 1), cmd.int_arg(1, 0)
        if fun not in (0, 1, 4) or rst not in (0, 1):
            raise CmeFailure(50)
        if rst == 1:
            reply.after.append(lambda: self.modem.reset(True))
            return None
        self.modem.cfun = fun
        reply.after.append(self.modem.update_registration)
        reply.after.append(self.modem.retry_held)
        return None

    def _at_CSQ(self, cmd: AtCommand, reply: Reply) -> list[str]:
        if cmd.kind == "test":
            return ["+CSQ: (0-31,99),(0-7,99)"]
        if self.modem.cfun != 1 or "no_network" in self.modem.faults:
            return ["+CSQ: 99,99"]
        return [f"+CSQ: {self.modem.signal},99"]

    def registration_fields(self, stat: int, n: int, *, unsolicited: bool) -> str:
        """The fields after "+CREG: " for a query (n first) or an unsolicited report."""
        parts = [] if unsolicited else [str(n)]
        parts.append(str(stat))
        if n == 2 and stat in (1, 5):
            lac = f"{self.modem.lac:04X}"
            if self.modem.profile.access_technology:  # UMTS/LTE: 28-bit cell id; GSM: 16-bit
                ci = f"{self.modem.cell_id:07X}"
            else:
                ci = f"{self.modem.cell_id & 0xFFFF:04X}"
            if self.modem.profile.creg_hex_unquoted:
                parts += [lac, ci]
            else:
                parts += [f'"{lac}"', f'"{ci}"']
                if self.modem.profile.access_technology is not None:
                    parts.append(str(self.modem.profile.access_technology))
        return ",".join(parts)

    def _registration(self, cmd: AtCommand, attr: str) -> list[str] | None:
        name = cmd.name
        if cmd.kind == "read":
            n = getattr(self.modem.at, attr)
            fields = self.registration_fields(
                self.modem.registration_status(), n, unsolicited=False
            )
            return [f"{name}: {fields}"]
        if cmd.kind == "test":
            return [f"{name}: (0-2)"]
        n = cmd.int_arg(0, 0)
        if n not in (0, 1, 2):
            raise CmeFailure(50)
        setattr(self.modem.at, attr, n)
        return None

    def _at_CREG(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        return self._registration(cmd, "creg")

    def _at_CGREG(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        return self._registration(cmd, "cgreg")

    def _at_CEREG(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        if not self.modem.profile.supports_cereg:
            raise PlainError()
        return self._registration(cmd, "cereg")

    def _at_CGATT(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        """Packet domain attach (TS 27.007 10.1.9): attached while registered, unless detached
        with AT+CGATT=0. Gammu's networkinfo and monitor ask it, and give up on ERROR."""
        if cmd.kind == "read":
            attached = self.modem.at.cgatt == 1 and self.modem.registration_status() in (1, 5)
            return [f"+CGATT: {int(attached)}"]
        if cmd.kind == "test":
            return ["+CGATT: (0,1)"]
        state = cmd.int_arg(0)
        if cmd.kind != "set" or state not in (0, 1):
            raise CmeFailure(50)
        if state == 1 and self.modem.registration_status() not in (1, 5):
            raise CmeFailure(30)
        self.modem.at.cgatt = state
        return None

    def _at_COPS(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        act = self.modem.profile.access_technology
        name = self.modem.network.operator
        fmt = self.modem.at.cops_format
        if cmd.kind == "read":
            if self.modem.registration_status() not in (1, 5):
                return ["+COPS: 0"]
            oper = self.modem.network.plmn if fmt == 2 else name
            return [f'+COPS: 0,{fmt},"{oper}"' + (f",{act}" if act is not None else "")]
        if cmd.kind == "test":
            plmn = self.modem.network.plmn
            tail = f",{act}" if act is not None else ""
            return [f'+COPS: (2,"{name}","{name}","{plmn}"{tail}),,(0-4),(0-2)']
        # AT+COPS=<mode>[,<format>...]: mode 3 only sets the format the read answers in
        # (Gammu asks AT+COPS=3,2 then AT+COPS? for the MCC MNC).
        mode, new_format = cmd.int_arg(0, 0), cmd.int_arg(1)
        if mode not in range(5) or (new_format is not None and new_format not in (0, 1, 2)):
            raise CmeFailure(50)
        if new_format is not None:
            self.modem.at.cops_format = new_format
        return None

    def _at_CUSD(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        """USSD (TS 27.007 7.15). With a GSM 7-bit <dcs> the request and the answer are strings
        in the character set of AT+CSCS (UCS2: hex); Huawei's ^USSDMODE=1 packs them instead."""
        if cmd.kind == "read":
            return [f"+CUSD: {self.modem.at.cusd}"]
        if cmd.kind == "test":
            return ["+CUSD: (0-2)"]
        n = cmd.int_arg(0, 0)
        if n not in (0, 1, 2):
            raise CmeFailure(50)
        if n in (0, 1):
            self.modem.at.cusd = n
        request = cmd.arg(1)
        if n == 2 or request is None:
            return None
        if self.modem.registration_status() not in (1, 5):
            raise CmeFailure(30)
        hex_strings = self.modem.profile.ussd_hex and self.modem.at.ussdmode == 1
        charset = self.modem.at.cscs
        try:
            request = unpack_gsm7(request) if hex_strings else from_te(request, charset)
        except (ValueError, CharsetError) as exc:
            log.info("modem %s: USSD request %r: %s", self.modem.imei, request, exc)
            raise CmeFailure(50) from None
        answer = self.modem.network.ussd_answer(self.modem, request)

        def respond() -> None:
            if answer is None:
                self.modem.urc("+CUSD: 4")
            else:
                text = pack_gsm7(answer) if hex_strings else to_te(answer, charset)
                self.modem.urc(f'+CUSD: 0,"{text}",15')

        reply.after.append(respond)
        return None

    # ------------------------------------------------------------------------------------------
    # SMS settings

    def _at_CSMS(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        if cmd.kind == "read":
            return [f"+CSMS: {self.modem.at.csms},1,1,1"]
        if cmd.kind == "test":
            return ["+CSMS: (0,1)"]
        value = cmd.int_arg(0, 0)
        if value not in (0, 1):
            raise CmsFailure(303)
        self.modem.at.csms = value
        return ["+CSMS: 1,1,1"]

    def _at_CPMS(self, cmd: AtCommand, reply: Reply) -> list[str]:
        if cmd.kind == "test":
            mems = "(" + ",".join(f'"{m}"' for m in MEMORIES) + ")"
            return [f"+CPMS: {mems},{mems},{mems}"]
        if cmd.kind == "read":
            parts = []
            for mem in self.modem.at.cpms:
                view = self.modem.storage.view(mem)
                parts.append(f'"{mem}",{view.used},{view.capacity}')
            return ["+CPMS: " + ",".join(parts)]
        if cmd.kind != "set" or not 1 <= len(cmd.args) <= 3:
            raise PlainError()
        wanted = [(cmd.arg(i) or "").upper() for i in range(len(cmd.args))]
        if any(m not in MEMORIES for m in wanted):
            raise CmsFailure(302)
        self.modem.at.cpms[: len(wanted)] = wanted
        counts = []
        for mem in self.modem.at.cpms:
            view = self.modem.storage.view(mem)
            counts += [str(view.used), str(view.capacity)]
        return ["+CPMS: " + ",".join(counts)]

    def _at_CNMI(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        if cmd.kind == "read":
            return ["+CNMI: " + ",".join(str(v) for v in self.modem.at.cnmi)]
        if cmd.kind == "test":
            return ["+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)"]
        if cmd.kind != "set":
            raise PlainError()
        limits = (3, 3, 3, 2, 1)
        values = list(self.modem.at.cnmi)
        for i in range(min(len(cmd.args), 5)):
            value = cmd.int_arg(i)
            if value is None:
                continue
            if not 0 <= value <= limits[i]:
                raise CmsFailure(303)
            values[i] = value
        self.modem.at.cnmi = values
        reply.after.append(self.modem.retry_held)
        return None

    def _at_CNMA(self, cmd: AtCommand, reply: Reply) -> None:
        ok = cmd.int_arg(0, 0) != 2 if cmd.kind == "set" else True
        if not self.modem.acknowledge(ok):
            raise CmsFailure(340)

    # ------------------------------------------------------------------------------------------
    # Sending

    def _at_CMGS(self, cmd: AtCommand, reply: Reply) -> Prompt | list[str]:
        if cmd.kind == "test":
            return []
        if cmd.kind != "set":
            raise PlainError()
        if self.modem.at.cmgf == 1:
            destination = cmd.arg(0)
            if not destination:
                raise CmsFailure(305)
            return Prompt("text", destination=destination)
        length = cmd.int_arg(0)
        if length is None or not 7 <= length <= 176:
            raise CmsFailure(304)
        return Prompt("pdu", length=length)

    def finish_send(self, prompt: Prompt, body: str) -> Reply:
        """The message after the prompt arrived (Ctrl-Z): check it, answer +CMGS, route it."""
        reply = Reply()
        try:
            if prompt.mode == "pdu":
                pdu_hex = "".join(body.split()).upper()
                try:
                    header = parse_submit(pdu_hex, smsc=True)
                except TpduError as exc:
                    log.info("modem %s: bad PDU after AT+CMGS: %s", self.modem.imei, exc)
                    raise CmsFailure(304) from None
                if header.tpdu_length != prompt.length:
                    log.info(
                        "modem %s: AT+CMGS=%d but the TPDU is %d octets",
                        self.modem.imei,
                        prompt.length,
                        header.tpdu_length,
                    )
                    raise CmsFailure(304)
            self._send_gate()
        except AtFailure as failure:
            reply.final = failure.line(self.modem.at.cmee)
            return reply
        mr = self.modem.next_reference()
        self.modem.balance_cents -= 5
        if prompt.mode == "pdu":
            self.modem.sent.append(
                SubmittedPart(mr, header.destination, pdu_hex, header.status_report_request)
            )
            # The network takes the message before the modem answers +CMGS (the SMSC acknowledged
            # it); a status report lands in this modem's queue and so comes after the answer.
            self.modem.network.route_submit(self.modem, header, pdu_hex, mr)
        else:
            srr = bool(self.modem.at.csmp[0] & 0x20)
            self.modem.sent.append(SubmittedPart(mr, prompt.destination, "", srr))
            self.modem.network.route_text(self.modem, prompt.destination, body, mr, srr)
        reply.blocks.append([f"+CMGS: {mr}"])
        return reply

    def _send_gate(self) -> None:
        if self.modem.registration_status() not in (1, 5):
            raise CmsFailure(331)
        forced = self.modem.consume_cms_fault("CMGS")
        if forced is not None:
            raise CmsFailure(None, raw=forced)

    # ------------------------------------------------------------------------------------------
    # Reading and deleting

    def _forced_cms(self, command: str) -> None:
        forced = self.modem.consume_cms_fault(command)
        if forced is not None:
            raise CmsFailure(None, raw=forced)

    def _stat_filter(self, cmd: AtCommand) -> int:
        if self.modem.at.cmgf == 0:
            raw = cmd.args[0].strip() if cmd.kind == "set" and cmd.args else "0"
            if not raw.isdigit() or int(raw) not in STAT_NAMES:
                raise CmsFailure(302)
            return int(raw)
        name = (cmd.arg(0) or "REC UNREAD").upper() if cmd.kind == "set" else "REC UNREAD"
        for stat, text in STAT_NAMES.items():
            if text == name:
                return stat
        raise CmsFailure(302)

    def _at_CMGL(self, cmd: AtCommand, reply: Reply) -> list[str]:
        if cmd.kind == "test":
            if self.modem.at.cmgf == 0:
                return ["+CMGL: (0-4)"]
            return ['+CMGL: ("REC UNREAD","REC READ","STO UNSENT","STO SENT","ALL")']
        self._forced_cms("CMGL")
        stat = self._stat_filter(cmd)
        keep = cmd.int_arg(1, 0) == 1
        lines: list[str] = []
        for index, msg in self.modem.storage.view(self.modem.at.cpms[0]).items():
            if stat != ALL and msg.stat != stat:
                continue
            if self.modem.at.cmgf == 0:
                header = self.modem.profile.cmgl_header.format(
                    index=index, stat=msg.stat, length=msg.tpdu_length
                )
                lines += [f"+CMGL: {header}", msg.pdu]
            else:
                lines += self._text_listing(f"+CMGL: {index},", msg)
            if msg.stat == REC_UNREAD and not keep:
                msg.stat = REC_READ
        return lines

    def _at_CMGR(self, cmd: AtCommand, reply: Reply) -> list[str]:
        if cmd.kind == "test":
            return []
        index = cmd.int_arg(0)
        if cmd.kind != "set" or index is None:
            raise PlainError()
        self._forced_cms("CMGR")
        view = self.modem.storage.view(self.modem.at.cpms[0])
        if not view.valid(index):
            raise CmsFailure(321)
        msg = view.get(index)
        if msg is None:
            if self.modem.profile.empty_read_ok:
                return []
            raise CmsFailure(321)
        if self.modem.at.cmgf == 0:
            header = self.modem.profile.cmgr_header.format(stat=msg.stat, length=msg.tpdu_length)
            lines = [f"+CMGR: {header}", msg.pdu]
        else:
            lines = self._text_listing("+CMGR: ", msg)
        if msg.stat == REC_UNREAD and cmd.int_arg(1, 0) != 1:
            msg.stat = REC_READ
        return lines

    def _at_CMGD(self, cmd: AtCommand, reply: Reply) -> list[str] | None:
        view = self.modem.storage.view(self.modem.at.cpms[0])
        if cmd.kind == "test":
            used = ",".join(str(i) for i, _ in view.items())
            return [f"+CMGD: ({used}),(0-4)"]
        index = cmd.int_arg(0)
        flag = cmd.int_arg(1, 0)
        if cmd.kind != "set" or index is None or flag not in range(5):
            raise PlainError()
        self._forced_cms("CMGD")
        if flag == 0:
            if not view.valid(index):
                raise CmsFailure(321)
            view.delete(index)
        else:
            doomed = {1: {REC_READ}, 2: {REC_READ, STO_SENT}, 3: {REC_READ, STO_SENT, STO_UNSENT}}
            for i, msg in list(view.items()):
                if flag == 4 or msg.stat in doomed[flag]:
                    view.delete(i)
        reply.after.append(self.modem.storage_changed)
        return None

    # ------------------------------------------------------------------------------------------
    # Text mode (a modem that booted in it, or a driver that never switched to PDU mode)

    def _text_listing(self, prefix: str, msg: StoredPdu) -> list[str]:
        stat = STAT_NAMES[msg.stat]
        try:
            decoded = codec.decode(msg.pdu, smsc=True)
        except CodecError as exc:
            log.info("modem %s: stored PDU does not decode: %s", self.modem.imei, exc)
            return [f'{prefix}"{stat}","",,""', ""]
        if isinstance(decoded, codec.StatusReport):
            return [
                f'{prefix}"{stat}",6,{decoded.reference},"{decoded.number}",145,'
                f'"{_scts(decoded.timestamp)}","{_scts(decoded.discharge_time)}",{decoded.status}'
            ]
        ts = _scts(getattr(decoded, "timestamp", None))
        return [f'{prefix}"{stat}","{decoded.number}",,"{ts}"', decoded.text]

    def text_mode_cmt(self, pdu_hex: str) -> list[str]:
        """+CMT in text mode: header and text lines."""
        try:
            d = codec.decode(pdu_hex, smsc=True)
        except CodecError as exc:
            log.info("modem %s: incoming PDU does not decode: %s", self.modem.imei, exc)
            return ['+CMT: "",,""', ""]
        return [f'+CMT: "{d.number}",,"{_scts(getattr(d, "timestamp", None))}"', d.text or ""]

    def text_mode_cds(self, pdu_hex: str) -> str:
        """+CDS in text mode: one line."""
        try:
            d = codec.decode(pdu_hex, smsc=True)
        except CodecError as exc:
            log.info("modem %s: status report does not decode: %s", self.modem.imei, exc)
            return "+CDS: 6,0"
        if not isinstance(d, codec.StatusReport):
            return "+CDS: 6,0"
        return (
            f'+CDS: 6,{d.reference},"{d.number}",145,"{_scts(d.timestamp)}",'
            f'"{_scts(d.discharge_time)}",{d.status}'
        )
