"""``gateway sms count|encode|decode``: the codec from the command line, printing JSON.

The JSON keys are a stable interface (docs/cli.md): other tools parse them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from ..modem import pdu, text
from ..modem.errors import CodecError
from ..modem.refs import FileReferenceAllocator, ReferenceStateError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``sms`` and its subcommands."""
    sms = sub.add_parser("sms", help="count, encode and decode SMS (JSON output)")
    verbs = sms.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    count = verbs.add_parser("count", help="how many parts and characters a text takes")
    count.add_argument("text")
    count.add_argument("--encoding", choices=["auto", "gsm7", "ucs2"], default="auto")
    count.add_argument("--ref16", action="store_true", help="count for 16-bit references")
    count.add_argument("--max-parts", type=int, default=text.DEFAULT_MAX_PARTS)
    count.set_defaults(func=cmd_count)

    enc = verbs.add_parser("encode", help="SMS-SUBMIT PDUs for AT+CMGS")
    enc.add_argument("text")
    enc.add_argument("--to", required=True, metavar="NUMBER")
    enc.add_argument("--smsc", metavar="NUMBER", help="SMSC address (default: the SIM's)")
    enc.add_argument("--status-report", action="store_true", help="request a status report")
    enc.add_argument("--validity", type=int, metavar="MINUTES", help="relative validity period")
    enc.add_argument("--ref16", action="store_true", help="16-bit concatenation reference")
    enc.add_argument("--encoding", choices=["auto", "gsm7", "ucs2"], default="auto")
    enc.add_argument("--flash", action="store_true", help="message class 0 (shown, not stored)")
    enc.add_argument("--reject-duplicates", action="store_true")
    enc.add_argument("--max-parts", type=int, default=text.DEFAULT_MAX_PARTS)
    enc.add_argument(
        "--reference",
        type=int,
        help="concatenation reference (default: the next one for this number, kept in "
        "$GATEWAY_STATE_DIR or ~/.local/state/gateway)",
    )
    enc.set_defaults(func=cmd_encode)

    dec = verbs.add_parser("decode", help="decode a PDU (or '-' for one per line on stdin)")
    dec.add_argument("pdu", metavar="HEX")
    dec.add_argument("--no-smsc", action="store_true", help="the PDU has no leading SMSC field")
    dec.set_defaults(func=cmd_decode)


def _print(obj: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    out.flush()


def _error(exc: Exception) -> dict:
    err: dict[str, Any] = {"message": str(exc)}
    if isinstance(exc, CodecError):
        err.update(where=exc.where, why=exc.why)
    return {"error": err}


def cmd_count(args: argparse.Namespace) -> int:
    try:
        analysis = text.analyze(
            args.text, encoding=args.encoding, ref16=args.ref16, max_parts=args.max_parts
        )
    except CodecError as exc:
        _print(_error(exc))
        return 1
    _print(analysis.to_json())
    return 0


def _state_dir() -> Path:
    if os.environ.get("GATEWAY_STATE_DIR"):
        return Path(os.environ["GATEWAY_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "gateway"


def cmd_encode(args: argparse.Namespace) -> int:
    try:
        reference = args.reference
        analysis = text.analyze(
            args.text, encoding=args.encoding, ref16=args.ref16, max_parts=args.max_parts
        ).check()
        if reference is None and analysis.parts > 1:
            digits, _ = pdu.address_digits(args.to)
            allocator = FileReferenceAllocator(_state_dir() / "concat-refs.json")
            reference = allocator.next(digits, bits=16 if args.ref16 else 8)
        parts = pdu.encode_submit(
            args.to,
            args.text,
            smsc=args.smsc,
            status_report=args.status_report,
            validity_minutes=args.validity,
            reject_duplicates=args.reject_duplicates,
            flash=args.flash,
            encoding=args.encoding,
            ref16=args.ref16,
            reference=reference,
            max_parts=args.max_parts,
        )
    except (CodecError, ReferenceStateError) as exc:
        _print(_error(exc))
        return 1
    _print(
        {
            "encoding": analysis.encoding,
            "reference": reference if len(parts) > 1 else None,
            "parts": [p.to_json() for p in parts],
        }
    )
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    if args.pdu != "-":
        try:
            _print(pdu.decode(args.pdu, smsc=not args.no_smsc).to_json())
        except CodecError as exc:
            _print(_error(exc))
            return 1
        return 0
    failed = 0
    for lineno, line in enumerate(sys.stdin, start=1):
        line = line.strip()
        if not line:
            continue
        try:
            _print(pdu.decode(line, smsc=not args.no_smsc).to_json())
        except CodecError as exc:
            failed += 1
            err = _error(exc)
            err["error"]["line"] = lineno
            _print(err)
    return 1 if failed else 0
