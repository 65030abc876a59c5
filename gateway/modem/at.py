"""The AT channel: one serial port of one modem, spoken to one command at a time.

A reader thread turns the byte stream into lines, whatever the line endings, and sorts each line
into: the echo of our own command, a line of the response, a final result code (``OK``,
``ERROR``, ``+CME ERROR``, ``+CMS ERROR``, ...), the ``> `` prompt (which has no line end), or an
unsolicited result code (URC) that goes to the layer above even when it arrives in the middle of
another command's response. ``+CMT``, ``+CDS`` and ``+CBM`` headers announce a PDU line; the pair
is joined by parser state, never by timing.

Commands run one at a time under a lock, each with a timeout. After a timeout the channel is
*dirty*: the late answer may still come, and must not be taken as the answer to the next command.
Before the next command the channel sends a probe whose answer carries a line no timed-out
command could produce (for instance ``+CMEE: 2`` for ``AT+CMEE?``) and discards everything up to
that line; the final code after it is the probe's. So a late reply never shifts later replies.
A port just opened is treated the same way (:meth:`ATChannel.take_over`): a process killed in the
middle of a command may have left the modem owing an answer, or waiting at the ``> `` prompt.

A serial error or an unplugged device becomes one :class:`PortGone`, raised to the current and to
every later caller and handed to the URC consumer.
"""

from __future__ import annotations

import codecs
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

CTRL_Z = b"\x1a"
ESC = b"\x1b"

# Final result codes other than OK that end a command with a failure (V.250 and 27.007/27.005).
# "COMMAND NOT SUPPORT" is what SIMCom and some Huawei firmwares print instead of ERROR.
_FAILURE_FINALS = frozenset(
    {
        "ERROR",
        "NO CARRIER",
        "BUSY",
        "NO ANSWER",
        "NO DIALTONE",
        "COMMAND NOT SUPPORT",
        "TOO MANY PARAMETERS",
        "ABORTED",
    }
)
_CME_RE = re.compile(r"^\+CME ERROR(?::\s*(.*))?$", re.IGNORECASE)
_CMS_RE = re.compile(r"^\+CMS ERROR(?::\s*(.*))?$", re.IGNORECASE)

# Prefixes of codes a modem sends on its own. A line with one of these prefixes is a URC unless the
# command in flight asked for it (``+CREG: 0,1`` answers ``AT+CREG?``; ``+CREG: 1`` alone is a URC).
URC_PREFIXES = frozenset(
    {
        "+CMTI",
        "+CMT",
        "+CDS",
        "+CDSI",
        "+CBM",
        "+CBMI",
        "+CLIP",
        "+CRING",
        "+CCWA",
        "+CSSI",
        "+CSSU",
        "+CREG",
        "+CGREG",
        "+CEREG",
        "+C5GREG",
        "+CUSD",
        "+CPIN",
        "+CIEV",
        "+CGEV",
        "+CTZV",
        "+CTZE",
        "+CTZU",
        "+CFUN",
        # SIMCom: network time, and +PACSP (SIM7600 PLMN mode) at boot.
        "+PSUTTZ",
        "*PSUTTZ",
        "DST",
        "+PACSP0",
        "+PACSP1",
        # Quectel: +QIND (SMS DONE, PB DONE, csq), +QUSIM, +QIURC.
        "+QIND",
        "+QUSIM",
        "+QIURC",
        "+QSIMSTAT",
        # u-blox: every +UU... code is unsolicited by convention; the ones a SMS modem shows.
        "+UUSIMSTAT",
        "+UUPSDD",
        "+UMWI",
    }
)
# Whole lines that are URCs (no prefix). "Call Ready"/"SMS Ready": SIMCom SIM800 after boot;
# "RDY": Quectel after boot; "PB DONE"/"SMS DONE": SIMCom SIM7600; power-down notices: SIMCom.
URC_WORDS = frozenset(
    {
        "RING",
        "CALL READY",
        "SMS READY",
        "RDY",
        "PB DONE",
        "SMS DONE",
        "NORMAL POWER DOWN",
        "POWERED DOWN",
        "UNDER-VOLTAGE POWER DOWN",
        "UNDER-VOLTAGE WARNNING",
        "OVER-VOLTAGE POWER DOWN",
        "OVER-VOLTAGE WARNNING",
    }
)
# Huawei sends ^XXX codes unsolicited (^RSSI, ^BOOT, ^MODE, ^SIMST, ^SMMEMFULL, ^SRVST, ...);
# u-blox sends +UUXXX. Both are URCs unless the command in flight owns the prefix.
_URC_PREFIX_PATTERNS = (re.compile(r"^\^[A-Z0-9]+$"), re.compile(r"^\+UU[A-Z0-9]+$"))

_PREFIX_RE = re.compile(r"^([+^*!$#%][A-Z0-9_]+|DST)(?::|$)", re.IGNORECASE)
_COMMAND_PREFIX_RE = re.compile(r"^AT([+^*!$#%][A-Z0-9_]+)", re.IGNORECASE)
# An echoed command: "AT" followed by command characters, no spaces. Data lines never look like
# this in PDU mode, so such a line is echo (e.g. echo switched back on by a modem reset).
# "ATE0", "ATI", "AT+CSQ", "AT&F", "AT" - but not a word such as "ATMEL".
_ECHO_LIKE_RE = re.compile(
    r"^AT(?:$|[^A-Za-z]|[A-Za-z](?:$|[^A-Za-z]))[\x21-\x7e]*$", re.IGNORECASE
)
_HEX_RE = re.compile(r"^[0-9A-Fa-f]+$")
# What is stripped from both ends of a line: spaces, control characters (a stray Ctrl-Z or NUL),
# and U+FFFD that stands for bytes that were not UTF-8.
_EDGE_JUNK = " \t\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15"
_EDGE_JUNK += "\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f\ufffd"

# Probes used to resynchronise after a timeout: each answer has a prefix that is not a URC, and
# the probe is chosen so that no command still owed an answer has the same prefix.
_PROBES = (
    ("AT+CMEE?", "+CMEE"),
    ("AT+CSCS?", "+CSCS"),
    ("AT+GCAP", "+GCAP"),
    ("AT+CMGF?", "+CMGF"),
)

# Verbose (+CMEE=2) texts of the +CME errors the driver acts on, so a caller can test ``code``
# whatever the modem's error mode (27.007 clause 9.2.1).
CME_TEXT_CODES = {
    "phone failure": 0,
    "operation not allowed": 3,
    "operation not supported": 4,
    "sim not inserted": 10,
    "sim pin required": 11,
    "sim puk required": 12,
    "sim failure": 13,
    "sim busy": 14,
    "sim wrong": 15,
    "incorrect password": 16,
    "sim pin2 required": 17,
    "sim puk2 required": 18,
    "memory full": 20,
    "invalid index": 21,
    "not found": 22,
    "no network service": 30,
    "network timeout": 31,
}
# Verbose texts of +CMS errors (27.005 clause 3.2.5), same purpose.
CMS_TEXT_CODES = {
    "me failure": 300,
    "sms service of me reserved": 301,
    "operation not allowed": 302,
    "operation not supported": 303,
    "invalid pdu mode parameter": 304,
    "invalid text mode parameter": 305,
    "sim not inserted": 310,
    "sim pin required": 311,
    "sim failure": 313,
    "sim busy": 314,
    "sim wrong": 315,
    "memory failure": 320,
    "invalid memory index": 321,
    "memory full": 322,
    "smsc address unknown": 330,
    "no network service": 331,
    "network timeout": 332,
    "no +cnma acknowledgement expected": 340,
    "unknown error": 500,
}


# ---------------------------------------------------------------------------------------------
# Errors


class ATError(Exception):
    """Base of every error of the AT channel; names the port and, when there is one, the command."""

    def __init__(self, port: str, command: str | None, why: str) -> None:
        self.port = port
        self.command = command
        self.why = why
        where = f"{port}: {command}" if command else port
        super().__init__(f"{where}: {why}")


class PortGone(ATError):
    """The serial port cannot be used: it could not be opened, was unplugged, or failed.

    Raised to the command in flight and to every later caller until the channel is reopened.
    """


class CommandTimeout(ATError):
    """No final result code arrived in time. The channel resynchronises before the next command."""


class PromptTimeout(CommandTimeout):
    """The ``> `` prompt did not come after ``AT+CMGS``; ESC was sent to abort the message."""


class CommandError(ATError):
    """The modem ended the command with a failure (``ERROR``, ``NO CARRIER``, ...)."""

    def __init__(self, port: str, command: str | None, final: str, lines: tuple[str, ...] = ()):
        self.final = final
        self.lines = lines
        super().__init__(port, command, f"modem answered {final!r}")


class CmeError(CommandError):
    """``+CME ERROR``: an equipment error. ``code`` is the 27.007 number (from a verbose text
    when the modem printed one), or None when unknown; ``text`` is what the modem said."""

    def __init__(self, port: str, command: str | None, final: str, lines: tuple[str, ...] = ()):
        self.code, self.text = _error_code(final, CME_TEXT_CODES)
        super().__init__(port, command, final, lines)


class CmsError(CommandError):
    """``+CMS ERROR``: a message service error; ``code`` as for :class:`CmeError`. Some modems
    print ``+CMS ERROR`` with no number at all: then ``code`` is None and ``text`` is empty."""

    def __init__(self, port: str, command: str | None, final: str, lines: tuple[str, ...] = ()):
        self.code, self.text = _error_code(final, CMS_TEXT_CODES)
        super().__init__(port, command, final, lines)


def _error_code(final: str, table: dict[str, int]) -> tuple[int | None, str]:
    _, _, rest = final.partition(":")
    text = rest.strip()
    if text.isdigit():
        return int(text), text
    return table.get(text.lower()), text


# ---------------------------------------------------------------------------------------------
# What the channel hands out


@dataclass(frozen=True)
class Response:
    """The answer to one command: its information lines (echo and URCs removed) and final code."""

    command: str
    lines: tuple[str, ...]
    final: str

    def prefixed(self, prefix: str) -> list[str]:
        """The argument part of each line that starts with ``prefix:`` (e.g. ``"+CSQ"``)."""
        out = []
        for line in self.lines:
            if line.upper().startswith(prefix.upper() + ":"):
                out.append(line[len(prefix) + 1 :].strip())
        return out


@dataclass(frozen=True)
class Urc:
    """One unsolicited result code as received.

    ``name`` is the prefix (``"+CMTI"``, ``"^RSSI"``) or the whole line for bare codes
    (``"SMS READY"``, upper-cased); ``args`` is the text after the colon; ``pdu`` is the line that
    followed a ``+CMT``/``+CDS``/``+CBM`` header, when there is one.
    """

    name: str
    args: str
    line: str
    pdu: str | None = None


class SerialLike(Protocol):
    """What the channel needs of a pyserial port (a fake in tests provides the same)."""

    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes) -> int | None: ...
    def close(self) -> None: ...

    @property
    def in_waiting(self) -> int: ...


def split_args(text: str) -> list[str]:
    """Split a comma-separated AT argument list, honouring double quotes; quotes are removed.

    ``'0,"SM",3'`` -> ``['0', 'SM', '3']``; empty fields stay as ``''``.
    """
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return out


def line_prefix(line: str) -> str | None:
    """The ``+XXX`` / ``^XXX`` prefix of a line, upper-cased, or None when it has none."""
    m = _PREFIX_RE.match(line)
    return m.group(1).upper() if m else None


def is_final(line: str) -> bool:
    """True when ``line`` is a final result code (success or failure)."""
    up = line.upper()
    return (
        up == "OK"
        or up in _FAILURE_FINALS
        or _CME_RE.match(line) is not None
        or _CMS_RE.match(line) is not None
    )


def is_urc_prefix(prefix: str) -> bool:
    """True when a line with this prefix is, by default, unsolicited."""
    return prefix in URC_PREFIXES or any(p.match(prefix) for p in _URC_PREFIX_PATTERNS)


def display_command(command: str) -> str:
    """The command as it may appear in logs and errors: a PIN or password is masked."""
    m = re.match(r"^(AT\+(?:CPIN|CPWD|CLCK)=)(.*)$", command, re.IGNORECASE)
    return f"{m.group(1)}***" if m else command


def _announces_pdu(name: str, args: str) -> bool:
    """True when this URC header is followed by a second line (the PDU, or text in text mode)."""
    if name in ("+CMT", "+CBM"):
        return True
    if name == "+CDS":
        # PDU mode: "+CDS: <length>" then the PDU line. Text mode puts everything on one line.
        return args.strip().isdigit()
    return False


# ---------------------------------------------------------------------------------------------
# The channel


@dataclass
class _Job:
    """The command in flight, as the reader thread sees it."""

    command: str
    owned: frozenset[str]
    echoes: frozenset[str]
    expect_prompt: bool = False
    tag: str | None = None  # resync probe: discard until a line with this prefix
    tag_seen: bool = False
    prompt_seen: bool = False
    lines: list[str] = field(default_factory=list)
    final: str | None = None


def open_serial(
    port: str, *, baudrate: int, rtscts: bool, read_timeout: float, write_timeout: float
) -> Any:
    """Open a pyserial port (a device path or a pyserial URL) in exclusive mode."""
    import serial  # imported here so the module loads without pyserial for pure parsing use

    try:
        ser = serial.serial_for_url(
            port,
            do_not_open=True,
            baudrate=baudrate,
            rtscts=rtscts,
            dsrdtr=False,
            xonxoff=False,
            timeout=read_timeout,
            write_timeout=write_timeout,
        )
        try:
            # Exclusive: a second process on the same port would steal half the answers.
            ser.exclusive = True
        except (AttributeError, ValueError, NotImplementedError):
            log.debug("%s: exclusive open not supported by this port type", port)
        ser.open()
    except (serial.SerialException, OSError, ValueError) as exc:
        raise PortGone(port, None, f"cannot open the serial port: {exc}") from exc
    return ser


class ATChannel:
    """One AT-command serial port: a reader thread, one command at a time, URCs to a consumer.

    ``port`` is a device path (``/dev/serial/by-id/...``) or a pyserial URL. ``rtscts`` turns on
    hardware flow control (USB modems have it; a SIM800 on the Pi's UART has no RTS/CTS wires, so it
    must be off there or writes block). ``on_urc`` is called on the reader thread with each
    :class:`Urc` and, once, with the :class:`PortGone` when the port dies; it must be quick and must
    never issue commands (put the item on a queue). Without ``on_urc`` items go to :attr:`urcs`.
    ``serial_factory`` replaces :func:`open_serial` (tests pass a fake port).
    """

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 115200,
        rtscts: bool = False,
        timeout: float = 10.0,
        on_urc: Callable[[Urc | PortGone], None] | None = None,
        serial_factory: Callable[..., SerialLike] | None = None,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.rtscts = rtscts
        self.timeout = timeout
        self.urcs: queue.Queue[Urc | PortGone] = queue.Queue()
        self._on_urc = on_urc or self.urcs.put
        self._factory = serial_factory or open_serial
        self._ser: SerialLike | None = None
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._cmd_lock = threading.Lock()  # one command (or CMGS job) at a time
        self._cond = threading.Condition()  # guards the parser state below
        self._job: _Job | None = None
        self._gone: PortGone | None = None
        self._dirty = False  # a timed-out command may still answer
        self._owed: list[str] = []  # prefixes of timed-out commands that may still answer
        self._buf = ""
        self._pdu_header: Urc | None = None  # a +CMT/+CDS header waiting for its PDU line
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    # -- lifecycle ----------------------------------------------------------------------------

    def open(self) -> None:
        """Open the port and start the reader thread. Raises :class:`PortGone` on failure."""
        if self._reader is not None:
            return
        self._ser = self._factory(
            self.port,
            baudrate=self.baudrate,
            rtscts=self.rtscts,
            read_timeout=0.5,
            write_timeout=self.timeout,
        )
        self._stop.clear()
        with self._cond:
            self._gone = None
            self._dirty = False
            self._owed.clear()
            self._buf = ""
            self._pdu_header = None
            self._decoder.reset()
        self._reader = threading.Thread(
            target=self._read_loop, name=f"at-reader {self.port}", daemon=True
        )
        self._reader.start()

    def close(self) -> None:
        """Stop the reader and close the port. Later commands raise :class:`PortGone`."""
        self._stop.set()
        ser = self._ser
        if ser is not None:
            cancel = getattr(ser, "cancel_read", None)
            if cancel is not None:
                try:
                    cancel()
                except (OSError, ValueError) as exc:
                    log.debug("%s: cancel_read failed while closing: %s", self.port, exc)
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=5)
        if ser is not None:
            try:
                ser.close()
            except (OSError, ValueError) as exc:
                log.warning("%s: error closing the port: %s", self.port, exc)
        self._reader = None
        self._ser = None
        with self._cond:
            if self._gone is None:
                self._gone = PortGone(self.port, None, "the channel was closed")
            self._cond.notify_all()

    def __enter__(self) -> ATChannel:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def gone(self) -> PortGone | None:
        """The error that ended the channel, or None while it is usable."""
        return self._gone

    # -- commands -----------------------------------------------------------------------------

    def command(
        self, command: str, *, timeout: float | None = None, owns: tuple[str, ...] = ()
    ) -> Response:
        """Send one command (without the trailing CR) and wait for its final result code.

        Returns the :class:`Response` on ``OK``. Raises :class:`CmeError`, :class:`CmsError` or
        :class:`CommandError` when the modem answers with a failure, :class:`CommandTimeout`,
        or :class:`PortGone`. ``owns`` adds prefixes whose lines belong to this command's answer
        even though they are URC prefixes (the command's own prefix always does).
        """
        with self._cmd_lock:
            self._resync_if_dirty(timeout)
            job = self._new_job(command, owns)
            self._start(job, command.encode("ascii", "replace") + b"\r")
            return self._finish(job, timeout or self.timeout)

    def send_with_prompt(
        self,
        command: str,
        payload: str,
        *,
        prompt_timeout: float = 10.0,
        timeout: float = 60.0,
        before_payload: Callable[[], None] | None = None,
        while_waiting: Callable[[], None] | None = None,
    ) -> Response:
        """``AT+CMGS=n``, wait for ``> ``, type ``payload`` and Ctrl-Z, wait for the final code.

        One atomic job under the command lock: another thread's command waits until it is over.
        If the prompt does not come in ``prompt_timeout`` seconds, ESC is sent to abort the
        message and :class:`PromptTimeout` is raised. Errors as for :meth:`command`.

        ``before_payload`` runs on the calling thread once the command line is written and
        before the payload is (the caller's commit, done while the modem turns round its
        prompt instead of before the command): when it raises, ESC abandons the message (after
        the prompt came, so that the ESC is not lost on a modem still in command mode), nothing
        was sent, and its exception propagates. ``while_waiting`` runs once the payload is
        written, while the modem works on it; the answer is awaited whatever it does.
        """
        with self._cmd_lock:
            self._resync_if_dirty(None)
            job = self._new_job(command, (), expect_prompt=True, extra_echo=payload)
            self._start(job, command.encode("ascii", "replace") + b"\r")
            withheld: BaseException | None = None
            if before_payload is not None:
                try:
                    before_payload()
                except Exception as exc:  # noqa: BLE001 - re-raised below, once the modem is in step
                    withheld = exc
            # From here: a slow commit above is not the modem's delay.
            deadline = time.monotonic() + prompt_timeout
            with self._cond:
                while not job.prompt_seen and job.final is None and self._gone is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                prompt, final, gone = job.prompt_seen, job.final, self._gone
                if gone is not None:
                    self._job = None
                    raise PortGone(self.port, command, gone.why)
                if final is not None:  # no prompt: the modem refused the command
                    self._job = None
                    if withheld is not None:
                        raise withheld
                    return self._result(job)
                if not prompt or withheld is not None:
                    # Abort the half-typed message so the modem does not take our next command
                    # as message text. Whatever it answers to ESC is discarded by the resync.
                    self._job = None
                    self._mark_dirty(job.command)
            if not prompt or withheld is not None:
                if not prompt:
                    log.warning("%s: no '> ' prompt after %s; sending ESC", self.port, command)
                self._write(ESC, command)
                if withheld is not None:
                    raise withheld
                raise PromptTimeout(
                    self.port, command, f"no '> ' prompt in {prompt_timeout:g} s; sent ESC"
                )
            self._write(payload.encode("ascii", "replace") + CTRL_Z, command)
            try:
                if while_waiting is not None:
                    while_waiting()
            finally:
                # Even when the caller's work failed: the answer must be read, or the next
                # command would take it for its own.
                response = self._finish(job, timeout)
            return response

    def take_over(self) -> None:
        """Bring into step a modem that an earlier process may have left mid-conversation.

        A process killed between ``AT+CMGS`` and its message leaves the modem at the ``> ``
        prompt, where it takes every later command as message text and answers nothing; one
        killed after the message but before the answer leaves ``+CMGS: <mr>`` and ``OK`` to
        come, which would be taken as the answers to our first commands, and every answer after
        them would be one behind. So: ESC, which abandons a half-typed message (a modem in
        command mode ignores it), and the channel is marked as owed an answer, so that the
        next command first sends the resync probe and discards everything before the probe's
        own answer. Call it right after :meth:`open`. Raises :class:`PortGone`.
        """
        with self._cmd_lock:
            self._write(ESC, "<ESC>")
            with self._cond:
                self._mark_dirty("<ESC>")

    def write_raw(self, data: bytes) -> None:
        """Write bytes outside any command (for a port that needs waking). Holds the lock."""
        with self._cmd_lock:
            self._write(data, None)

    # -- command internals --------------------------------------------------------------------

    def _new_job(
        self,
        command: str,
        owns: tuple[str, ...],
        *,
        expect_prompt: bool = False,
        extra_echo: str | None = None,
        tag: str | None = None,
    ) -> _Job:
        owned = {p.upper() for p in owns}
        m = _COMMAND_PREFIX_RE.match(command)
        if m:
            owned.add(m.group(1).upper())
        echoes = {command.strip().upper()}
        if extra_echo:
            echoes.add(extra_echo.strip().upper())
        return _Job(
            command=command,
            owned=frozenset(owned),
            echoes=frozenset(echoes),
            expect_prompt=expect_prompt,
            tag=tag,
        )

    def _start(self, job: _Job, data: bytes) -> None:
        with self._cond:
            if self._gone is not None:
                raise PortGone(self.port, display_command(job.command), self._gone.why)
            self._job = job
        log.debug("%s >> %s", self.port, display_command(job.command))
        self._write(data, job.command)

    def _write(self, data: bytes, command: str | None) -> None:
        ser = self._ser
        shown = display_command(command) if command else None
        if ser is None:
            raise PortGone(self.port, shown, "the port is not open")
        try:
            ser.write(data)
        except Exception as exc:
            # pyserial raises SerialTimeoutException (a SerialException) when a write blocks:
            # with rtscts on and no CTS wire, nothing is ever sent.
            if type(exc).__name__ == "SerialTimeoutException":
                with self._cond:
                    self._job = None
                    if command:
                        self._mark_dirty(command)
                raise CommandTimeout(
                    self.port,
                    shown,
                    "write blocked: the modem is not accepting data "
                    f"(hardware flow control is {'on' if self.rtscts else 'off'}; check rtscts)",
                ) from exc
            # A port closed under us (unplug handled by the reader) leaves pyserial with no
            # file descriptor: its write then fails with TypeError, which means gone as well.
            if isinstance(exc, OSError | TypeError) or type(exc).__name__ == "SerialException":
                gone = self._set_gone(f"write failed: {exc}")
                raise PortGone(self.port, shown, gone.why) from exc
            raise

    def _finish(self, job: _Job, timeout: float) -> Response:
        deadline = time.monotonic() + timeout
        with self._cond:
            while job.final is None and self._gone is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._job = None
            if job.final is None:
                if self._gone is not None:
                    raise PortGone(self.port, display_command(job.command), self._gone.why)
                self._mark_dirty(job.command)
                raise CommandTimeout(
                    self.port,
                    display_command(job.command),
                    f"no final result code in {timeout:g} s",
                )
        return self._result(job)

    def _result(self, job: _Job) -> Response:
        final = job.final or ""
        lines = tuple(job.lines)
        shown = display_command(job.command)
        log.debug("%s << %s (%d lines)", self.port, final, len(lines))
        up = final.upper()
        if up == "OK":
            return Response(job.command, lines, final)
        if _CME_RE.match(final):
            raise CmeError(self.port, shown, final, lines)
        if _CMS_RE.match(final):
            raise CmsError(self.port, shown, final, lines)
        raise CommandError(self.port, shown, final, lines)

    def _mark_dirty(self, command: str) -> None:
        """Called under _cond after a timeout: the answer to ``command`` may still come."""
        self._dirty = True
        m = _COMMAND_PREFIX_RE.match(command)
        self._owed.append(m.group(1).upper() if m else command.upper())

    def _resync_if_dirty(self, timeout: float | None) -> None:
        """After a timeout (or :meth:`take_over`), make sure the next final code read belongs to
        the next command.

        Sends a probe whose answer carries a tag line (``+CMEE: ...``) that no owed answer can
        contain, and throws away every line and final code before that tag.
        """
        with self._cond:
            if not self._dirty:
                return
            owed = set(self._owed)
        probe = next(((c, t) for c, t in _PROBES if t not in owed), None)
        if probe is None:
            raise CommandTimeout(
                self.port,
                None,
                "the modem stopped answering (several commands timed out); it needs a reset",
            )
        command, tag = probe
        log.info(
            "%s: resynchronising with %s (an answer may still come to %s)",
            self.port,
            command,
            ", ".join(sorted(owed)),
        )
        job = self._new_job(command, (), tag=tag)
        self._start(job, command.encode("ascii") + b"\r")
        try:
            self._finish(job, timeout or self.timeout)
        except CommandError as exc:
            # The tag line came, so this failure is the probe's own: the stream is in step.
            log.info("%s: resync probe answered %s", self.port, exc.final)
        with self._cond:
            self._dirty = False
            self._owed.clear()

    # -- reader -------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        ser = self._ser
        assert ser is not None
        while not self._stop.is_set():
            try:
                waiting = ser.in_waiting
                data = ser.read(waiting if waiting > 0 else 1)
            except Exception as exc:
                if self._stop.is_set():
                    break
                if isinstance(exc, OSError) or type(exc).__name__ in (
                    "SerialException",
                    "PortNotOpenError",
                ):
                    self._set_gone(f"the port failed or was unplugged: {exc}")
                    return
                log.exception("%s: unexpected error in the reader", self.port)
                self._set_gone(f"reader crashed: {exc!r}")
                return
            if data:
                self.feed(data)

    def feed(self, data: bytes) -> None:
        """Process bytes read from the port (the reader thread calls this; tests may too)."""
        text = self._decoder.decode(data)
        if "\ufffd" in text:
            log.warning("%s: bytes that are not UTF-8 received: %r", self.port, data)
        out: list[Urc] = []
        with self._cond:
            self._buf += text
            while True:
                m = re.search(r"[\r\n]", self._buf)
                if m is None:
                    break
                raw = self._buf[: m.start()]
                self._buf = self._buf[m.end() :]
                self._handle_line(raw, out)
            self._check_prompt()
            if len(self._buf) > 8192:
                log.warning("%s: discarding 8 KiB without a line end", self.port)
                self._buf = ""
        for urc in out:
            self._deliver(urc)

    def _check_prompt(self) -> None:
        job = self._job
        if job is None or not job.expect_prompt or job.prompt_seen:
            return
        if self._buf.strip(_EDGE_JUNK) == ">":
            job.prompt_seen = True
            self._buf = ""
            self._cond.notify_all()

    def _handle_line(self, raw: str, out: list[Urc]) -> None:
        line = raw.strip(_EDGE_JUNK)
        if not line:
            return
        if line != raw.strip():
            log.debug("%s: stripped junk around line %r", self.port, raw)
        job = self._job
        # A stray prompt left before a line ("> 0791..." when the PDU is echoed after "> ").
        if line.startswith(">"):
            line = line[1:].strip(_EDGE_JUNK)
            if not line:
                return

        # 1. The line after a +CMT/+CDS/+CBM header is its PDU, whatever the timing.
        header = self._pdu_header
        if header is not None:
            self._pdu_header = None
            if not is_final(line) and not self._is_urc(line, None):
                out.append(Urc(header.name, header.args, header.line, line))
                return
            log.warning("%s: %s came without its PDU line (got %r)", self.port, header.name, line)
            out.append(header)

        # 2. Echo of our command (or of any command: echo returns after a modem reset).
        if job is not None and line.upper() in job.echoes:
            return
        if _ECHO_LIKE_RE.match(line):
            log.debug("%s: ignoring echoed command %r", self.port, line)
            return

        # 3. Final result codes.
        if is_final(line):
            if job is None or job.final is not None:
                if self._dirty:
                    # Modems answer in order: this ends the oldest answer still owed.
                    log.info("%s: late answer %r to a timed-out command dropped", self.port, line)
                    if self._owed:
                        self._owed.pop(0)
                    self._dirty = bool(self._owed)
                else:
                    log.warning("%s: final code %r with no command in flight", self.port, line)
                return
            if job.tag is not None and not job.tag_seen:
                log.info("%s: late answer %r to a timed-out command dropped", self.port, line)
                return
            job.final = line
            self._cond.notify_all()
            return

        # 4. Unsolicited result codes.
        if self._is_urc(line, job):
            urc = _make_urc(line)
            if _announces_pdu(urc.name, urc.args):
                self._pdu_header = urc
            else:
                out.append(urc)
            return

        # 5. A line of the answer.
        if job is not None and job.final is None:
            if job.tag is not None and not job.tag_seen:
                if line_prefix(line) == job.tag:
                    job.tag_seen = True
                else:
                    log.info("%s: late line %r of a timed-out command dropped", self.port, line)
                    return
            job.lines.append(line)
            return
        if self._dirty:
            log.info("%s: late line %r of a timed-out command dropped", self.port, line)
            return
        # Nothing asked for it and it is no known URC: hand it up rather than lose it.
        log.info("%s: unknown unsolicited line %r", self.port, line)
        out.append(_make_urc(line))

    def _is_urc(self, line: str, job: _Job | None) -> bool:
        prefix = line_prefix(line)
        if prefix is not None:
            if job is not None and job.final is None and prefix in job.owned:
                return False
            return is_urc_prefix(prefix)
        return line.upper() in URC_WORDS

    def _deliver(self, item: Urc | PortGone) -> None:
        try:
            self._on_urc(item)
        except Exception:
            log.exception("%s: the URC consumer failed on %r", self.port, item)

    def _set_gone(self, why: str) -> PortGone:
        with self._cond:
            if self._gone is not None:
                return self._gone
            gone = PortGone(self.port, None, why)
            self._gone = gone
            self._cond.notify_all()
        log.error("%s", gone)
        self._deliver(gone)
        return gone


def _make_urc(line: str) -> Urc:
    prefix = line_prefix(line)
    if prefix is None:
        return Urc(line.upper(), "", line)
    _, _, args = line.partition(":")
    return Urc(prefix, args.strip(), line)
