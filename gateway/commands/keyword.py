"""``gateway keyword add|list|remove``: the team's keywords per short code, for scripts.

Through the running daemon's control socket (the ``keyword`` op), so that a keyword added here
answers the very next text; JSON on stdout (a stable interface, docs/cli.md), exit status 0 when
``ok``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..control import ControlError, request
from .ops import _common, _data_dir, _fail


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``keyword`` and its subcommands."""
    keyword = sub.add_parser("keyword", help="keywords per short code (JSON output)")
    verbs = keyword.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    add = verbs.add_parser("add", help="add a keyword to a short code")
    _common(add)
    add.add_argument("word", metavar="WORD", help="one word, matched on a text's first word")
    add.add_argument("--short-code", required=True, metavar="CODE")
    add.add_argument("--reply", required=True, metavar="TEXT", help="the automatic reply")
    add.add_argument("--campaign", metavar="NAME", help="subscribe texters, under this campaign")
    add.add_argument(
        "--double-opt-in", action="store_true", help="subscribe only after they reply Y"
    )
    add.add_argument(
        "--time-limit",
        type=int,
        default=24 * 60,
        metavar="MINUTES",
        help="time to reply Y, and to answer each question (default 1440: a day)",
    )
    add.add_argument("--confirm-prompt", default="", metavar="TEXT", help="the 'reply Y' text")
    add.add_argument(
        "--ask",
        action="append",
        default=[],
        metavar="FIELD=QUESTION",
        help="a question whose answer fills a custom field (repeat for a path of questions)",
    )
    add.add_argument(
        "--choices",
        action="append",
        default=[],
        metavar="FIELD=A,B,C",
        help="the answers a question accepts (others get --invalid's reply)",
    )
    add.add_argument(
        "--invalid",
        action="append",
        default=[],
        metavar="FIELD=TEXT",
        help="the reply to an answer that is not one of the choices",
    )
    add.add_argument("--done-reply", default="", metavar="TEXT", help="sent after the last answer")
    add.add_argument("--exit-word", default="EXIT", metavar="WORD", help="the way out of a path")
    add.add_argument("--exit-reply", default="", metavar="TEXT", help="sent on the way out")
    add.set_defaults(func=cmd_add)

    ls = verbs.add_parser("list", help="the keywords (of one short code)")
    _common(ls)
    ls.add_argument("--short-code", metavar="CODE")
    ls.set_defaults(func=cmd_list)

    rm = verbs.add_parser("remove", help="remove a keyword (its open paths are cancelled)")
    _common(rm)
    rm.add_argument("word", metavar="WORD")
    rm.add_argument("--short-code", required=True, metavar="CODE")
    rm.set_defaults(func=cmd_remove)


class _Usage(ValueError):
    """An argument that cannot be made into a request; printed as JSON like the daemon's."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _pairs(values: list[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        field, sep, text = value.partition("=")
        if not sep or not field.strip():
            raise _Usage(option, f"{option} {value!r}: write FIELD=TEXT")
        out[field.strip()] = text
    return out


def questions_from(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The path's questions from --ask, --choices and --invalid, in --ask's order."""
    asks = _pairs(args.ask, "--ask")
    choices = _pairs(args.choices, "--choices")
    invalid = _pairs(args.invalid, "--invalid")
    for option, given in (("--choices", choices), ("--invalid", invalid)):
        stray = sorted(set(given) - set(asks))
        if stray:
            raise _Usage(option, f"{option} names {stray[0]!r}, which no --ask asks")
    return [
        {
            "field": field,
            "ask": ask,
            "choices": [c.strip() for c in choices.get(field, "").split(",") if c.strip()],
            "invalid": invalid.get(field, ""),
        }
        for field, ask in asks.items()
    ]


def _run(args: argparse.Namespace, **fields: Any) -> int:
    try:
        reply = request(_data_dir(args), "keyword", **fields)
    except ControlError as exc:
        return _fail(str(exc))
    print(json.dumps(reply, ensure_ascii=False))
    return 0 if reply.get("ok") else 1


def cmd_add(args: argparse.Namespace) -> int:
    try:
        questions = questions_from(args)
    except _Usage as exc:
        print(json.dumps({"ok": False, "error": str(exc), "errors": {exc.field: str(exc)}}))
        return 1
    return _run(
        args,
        action="add",
        short_code=args.short_code,
        word=args.word,
        reply=args.reply,
        campaign=args.campaign,
        double_opt_in=args.double_opt_in,
        time_limit_minutes=args.time_limit,
        confirm_prompt=args.confirm_prompt,
        questions=questions,
        done_reply=args.done_reply,
        exit_word=args.exit_word,
        exit_reply=args.exit_reply,
    )


def cmd_list(args: argparse.Namespace) -> int:
    return _run(args, action="list", short_code=args.short_code)


def cmd_remove(args: argparse.Namespace) -> int:
    return _run(args, action="remove", short_code=args.short_code, word=args.word)
