"""``gateway broadcast create|status|list|pause|resume|cancel``: broadcasts for scripts, through
the running daemon's control socket, printing one JSON object (docs/cli.md). The exit code is
0 when the reply says ``"ok": true``, 1 otherwise (the reply then has ``error`` and, where one
field is to blame, ``field``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..control import ControlError, request
from .ops import _common, _data_dir  # as keyword.py: the commands' shared -c/--data-dir


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``broadcast`` and its verbs."""
    bc = sub.add_parser("broadcast", help="create and follow broadcasts (JSON output)")
    verbs = bc.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    create = verbs.add_parser("create", help="send one text to a segment, a list or conditions")
    _common(create)
    create.add_argument("--short-code", required=True, metavar="CODE")
    who = create.add_mutually_exclusive_group(required=True)
    who.add_argument("--segment", metavar="NAME", help="a saved segment")
    who.add_argument("--list", metavar="NAME", help="a static list")
    who.add_argument(
        "--where",
        action="append",
        metavar="FIELD=VALUE",
        help="a condition (repeat: all must hold), e.g. 'school=Lincoln Elementary',"
        " 'grade in 3,4,5'",
    )
    create.add_argument("--campaign", metavar="NAME", help="bulk campaign (default: the name)")
    create.add_argument("--at", metavar="ISO-8601", help="when to send (default: now)")
    create.add_argument("--timezone", metavar="TZ", help="zone of --at (default: the config's)")
    create.add_argument(
        "--per-recipient-tz",
        action="store_true",
        help="send at --at's wall-clock time in each profile's own 'timezone' field",
    )
    create.add_argument("--name", metavar="N")
    create.add_argument("text")
    create.set_defaults(func=cmd_create)

    for verb, what in (
        ("status", "a broadcast's state and counters"),
        ("pause", "stop feeding it; messages no modem has taken come back"),
        ("resume", "go on with a paused broadcast"),
        ("cancel", "stop it for good; what went stays recorded"),
    ):
        p = verbs.add_parser(verb, help=what)
        _common(p)
        p.add_argument("id", type=int)
        p.set_defaults(func=cmd_one, op=f"broadcast.{verb}")

    ls = verbs.add_parser("list", help="the newest 200 broadcasts")
    _common(ls)
    ls.set_defaults(func=cmd_list)


def _ask(args: argparse.Namespace, op: str, **fields: Any) -> dict[str, Any]:
    try:
        return request(_data_dir(args), op, **fields)
    except ControlError as exc:
        return {"ok": False, "error": str(exc)}


def _print(reply: dict[str, Any], keys: tuple[str, ...] | None = None) -> int:
    """Print the reply (only ``keys`` of a successful one) and return the exit code."""
    ok = bool(reply.get("ok"))
    shown = {k: reply.get(k) for k in keys} if ok and keys else reply
    print(json.dumps(shown, ensure_ascii=False))
    return 0 if ok else 1


CREATE_KEYS = ("ok", "id", "recipients", "skipped", "scheduled_for", "state")
STATUS_KEYS = ("id", "state", "recipients", "queued", "sent", "delivered", "failed", "skipped")


def cmd_create(args: argparse.Namespace) -> int:
    reply = _ask(
        args,
        "broadcast.create",
        text=args.text,
        short_code=args.short_code,
        segment=args.segment,
        list=args.list,
        where=args.where or [],
        campaign=args.campaign,
        at=args.at,
        timezone=args.timezone,
        per_recipient_tz=args.per_recipient_tz,
        name=args.name,
        user="cli",
    )
    return _print(reply, CREATE_KEYS)


def cmd_one(args: argparse.Namespace) -> int:
    reply = _ask(args, args.op, id=args.id, user="cli")
    return _print(reply, STATUS_KEYS)


def cmd_list(args: argparse.Namespace) -> int:
    return _print(_ask(args, "broadcast.list"))
