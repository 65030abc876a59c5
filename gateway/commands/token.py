"""``gateway token create|list|revoke``: API tokens for the REST API (docs/api.md), from a
script on the gateway itself. Like ``gateway user``, they work on the store in the data
directory (the daemon may be running: the store takes one writer at a time) and print JSON.
The token is printed once, by ``create``; the store keeps only its hash."""

from __future__ import annotations

import argparse
import json

from ..store import TokenError
from ..store.tokens import token_json
from .ops import _common, _fail, _store  # the same options and store as ``gateway user``


def register(sub: argparse._SubParsersAction) -> None:
    token = sub.add_parser("token", help="API tokens for the REST API (printed as JSON)")
    verbs = token.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    create = verbs.add_parser("create", help="a new token for a user (shown once)")
    _common(create)
    create.add_argument("--user", required=True, metavar="NAME", help="the user it acts for")
    create.add_argument("--label", default="", metavar="TEXT", help="what uses it")
    create.set_defaults(func=cmd_create)
    ls = verbs.add_parser("list", help="every token (never the secrets)")
    _common(ls)
    ls.add_argument("--user", metavar="NAME", help="only this user's tokens")
    ls.set_defaults(func=cmd_list)
    revoke = verbs.add_parser("revoke", help="revoke a token for good")
    _common(revoke)
    revoke.add_argument("id", type=int, metavar="ID")
    revoke.set_defaults(func=cmd_revoke)


def _print(value: object) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def cmd_create(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        token = store.api_tokens.create(args.user, args.label, by="cli")
        store.audit.add("token.create", actor="cli", token_id=token.id, user=token.user)
    except TokenError as exc:
        return _fail(str(exc))
    finally:
        store.close()
    _print(token.to_json())
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        rows = store.api_tokens.list(args.user)
    finally:
        store.close()
    _print([token_json(r) for r in rows])
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        changed = store.api_tokens.revoke(args.id, by="cli")
        if changed:
            store.audit.add("token.revoke", actor="cli", token_id=args.id)
        row = store.api_tokens.get(args.id)
    except TokenError as exc:
        return _fail(str(exc))
    finally:
        store.close()
    _print({**token_json(row), "changed": changed})
    return 0
