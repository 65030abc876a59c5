"""``gateway modem --port PATH VERB``: one modem, without the daemon, printing JSON.

What ``gammu identify`` and ``gammu sendsms`` are to Gammu users, through the same driver
(:class:`gateway.modem.device.Modem`) the daemon uses, so what works here works there:

- ``info``: identity (manufacturer, model, firmware, IMEI, IMSI, ICCID, own number), signal,
  registration, operator and message storage;
- ``signal``: signal, registration and operator;
- ``send NUMBER TEXT [--status-report]``: the TP-MR of each part sent; a part the modem
  refused with ``+CMS ERROR`` gives ``cms_error`` (its code, null when it named none) and
  ``retryable`` (whether the daemon would try it again) in the error;
- ``list``: every stored message, decoded (undecodable entries as index, raw PDU and error);
  nothing is deleted;
- ``ussd CODE``: the network's answer (a balance check).

Stop the daemon first (``systemctl stop gateway``): two programs on one port mix their answers.
Errors print ``{"error": {...}}`` and exit 1. The JSON keys are a stable interface.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from ..messaging.failures import classify
from ..modem import device
from ..modem.at import ATError, CmsError, CommandError
from ..modem.errors import CodecError
from ..modem.urc import Registration, Signal


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``modem`` and its verbs."""
    p = sub.add_parser(
        "modem",
        help="talk to one modem directly, without the daemon (JSON output)",
        description="Open one modem port with the gateway's driver and run one command. "
        "Stop the daemon first: two programs cannot share a port.",
    )
    p.add_argument("--port", required=True, metavar="PATH", help="e.g. /dev/serial/by-id/usb-...")
    p.add_argument("--pin", help="SIM PIN, entered once if the SIM asks (never retried)")
    p.add_argument("--baud", type=int, default=115200, metavar="N", help="default 115200")
    p.add_argument("--rtscts", action="store_true", help="hardware flow control (RTS/CTS)")
    p.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="per command (default 10 s)"
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    verbs.add_parser("info", help="identity, signal, registration, storage").set_defaults(
        func=cmd_info
    )
    verbs.add_parser("signal", help="signal, registration and operator").set_defaults(
        func=cmd_signal
    )
    send = verbs.add_parser("send", help="send a text (split into parts as needed)")
    send.add_argument("number", metavar="NUMBER")
    send.add_argument("text", metavar="TEXT")
    send.add_argument(
        "--status-report", action="store_true", help="ask for delivery reports (may be billed)"
    )
    send.set_defaults(func=cmd_send)
    verbs.add_parser("list", help="stored messages, decoded; deletes nothing").set_defaults(
        func=cmd_list
    )
    ussd = verbs.add_parser("ussd", help="a USSD request such as *100#")
    ussd.add_argument("code", metavar="CODE")
    ussd.set_defaults(func=cmd_ussd)


# -- output ------------------------------------------------------------------------------------


def _print(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _error_json(exc: BaseException) -> dict[str, Any]:
    """The error as JSON: its kind, a message a person can act on, and what it names."""
    err: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, device.ModemError | ATError):
        err["port"] = exc.port
    if isinstance(exc, ATError) and exc.command:
        err["command"] = exc.command
    if isinstance(exc, CommandError):
        err["final"] = exc.final
    if isinstance(exc, device.PartialSendError):
        err["sent"] = [_part_json(p) for p in exc.sent]
        err["failed_part"] = exc.failed.seq
        err["total_parts"] = exc.failed.total
    cms = exc.cause if isinstance(exc, device.PartialSendError) else exc
    if isinstance(cms, CmsError):
        # The daemon's own rule (messaging.failures), so a script retries what it would.
        err["cms_error"] = cms.code
        err["retryable"] = classify(cms).temporary
    if isinstance(exc, CodecError):
        err["where"], err["why"] = exc.where, exc.why
    return {"error": err}


def _part_json(part: device.SentPart) -> dict[str, int]:
    return {"seq": part.seq, "total": part.total, "message_reference": part.message_reference}


def _signal_json(signal: Signal | None) -> dict[str, Any] | None:
    if signal is None:
        return None
    return {"rssi": signal.rssi, "ber": signal.ber, "dbm": signal.dbm, "bars": signal.bars}


def _registration_json(reg: Registration | None) -> dict[str, Any] | None:
    if reg is None:
        return None
    return {
        "domain": reg.domain,
        "status": reg.status,
        "text": reg.status_text,
        "registered": reg.registered,
        "lac": reg.lac,
        "cell_id": reg.cell_id,
        "act": reg.act,
    }


def _storage_json(usage: device.StorageUsage) -> dict[str, Any]:
    def mem(m: device.MemoryUsage | None) -> dict[str, Any] | None:
        return None if m is None else {"memory": m.storage, "used": m.used, "total": m.total}

    return {
        "read": mem(usage.read),
        "write": mem(usage.write),
        "receive": mem(usage.receive),
        "full": usage.full,
    }


def stored_json(msg: device.StoredMessage) -> dict[str, Any]:
    """One stored entry, decoded; an undecodable one as its index, raw PDU and the error."""
    decoded = device.decode_stored(msg)
    if isinstance(decoded, device.Undecodable):
        return {
            "index": msg.index,
            "storage": msg.storage,
            "pdu": msg.pdu,
            "error": decoded.error,
        }
    return {"index": msg.index, "storage": msg.storage, "stat": msg.status, **decoded.to_json()}


# -- running one verb ----------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> device.ModemSettings:
    return device.ModemSettings(
        baudrate=args.baud,
        rtscts=args.rtscts,
        pin=args.pin,
        command_timeout=args.timeout,
        prompt_timeout=args.timeout,
        send_timeout=max(60.0, args.timeout),
    )


def _run(args: argparse.Namespace, verb: Callable[[device.Modem], dict[str, Any]]) -> int:
    """Open the modem, run ``verb`` on it, print its JSON (or the error), close it."""
    modem = device.Modem(args.port, _settings(args))
    try:
        modem.open()
        result = verb(modem)
    except (ATError, device.ModemError, CodecError, ValueError, OSError) as exc:
        _print(_error_json(exc))
        return 1
    finally:
        modem.close()
    _print({"port": args.port, **result})
    return 0


def _optional(fn: Callable[[], Any]) -> Any:
    """A reading the modem may refuse (not registered, no such command): None then."""
    try:
        return fn()
    except (CommandError, device.UnexpectedAnswer):
        return None


def _health(modem: device.Modem) -> dict[str, Any]:
    return {
        "signal": _signal_json(_optional(modem.signal)),
        "registration": _registration_json(_optional(modem.registration)),
        "operator": _optional(modem.operator),
    }


def cmd_info(args: argparse.Namespace) -> int:
    def verb(modem: device.Modem) -> dict[str, Any]:
        ident = modem.identify()
        usage = _optional(modem.storage_usage)
        return {
            "family": ident.family,
            "manufacturer": ident.manufacturer,
            "model": ident.model,
            "firmware": ident.firmware,
            "imei": ident.imei,
            "imsi": ident.imsi,
            "iccid": ident.iccid,
            "number": ident.number,
            **_health(modem),
            "storage": _storage_json(usage) if usage else None,
            "status_reports": modem.status_report_routing,
        }

    return _run(args, verb)


def cmd_signal(args: argparse.Namespace) -> int:
    return _run(args, _health)


def cmd_send(args: argparse.Namespace) -> int:
    def verb(modem: device.Modem) -> dict[str, Any]:
        sent = modem.send_text(args.number, args.text, status_report=args.status_report)
        return {
            "to": args.number,
            "status_report": args.status_report,
            "parts": [_part_json(p) for p in sent],
        }

    return _run(args, verb)


def cmd_list(args: argparse.Namespace) -> int:
    def verb(modem: device.Modem) -> dict[str, Any]:
        stored = modem.list_messages()
        return {"storage": modem.storage, "messages": [stored_json(m) for m in stored]}

    return _run(args, verb)


def cmd_ussd(args: argparse.Namespace) -> int:
    def verb(modem: device.Modem) -> dict[str, Any]:
        reply = modem.ussd(args.code)
        return {"code": args.code, "status": reply.status, "text": reply.text, "dcs": reply.dcs}

    return _run(args, verb)
