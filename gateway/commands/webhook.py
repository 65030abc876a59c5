"""``gateway webhook add | list | remove``: the webhooks of the short codes, for scripts (JSON
out). They work on the store in the data directory, beside a running daemon or without one:
the daemon's triggers see a new webhook at its next event."""

from __future__ import annotations

import argparse
import json
import sys

from ..config import ConfigError, load_config
from ..messaging.webhooks import WebhookRefused, WebhookService
from ..store import Store, StoreDamaged, StoreError
from ..store.webhooks import FAMILIES
from .daemon import DEFAULT_CONFIG


def register(sub: argparse._SubParsersAction) -> None:
    hook = sub.add_parser("webhook", help="add, list or remove the webhooks of short codes")
    verbs = hook.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    add = verbs.add_parser(
        "add", help="add a webhook; prints its id, url, events and the secret that signs it"
    )
    _common(add)
    add.add_argument("--short-code", required=True, metavar="CODE")
    add.add_argument("--url", required=True, help="http:// or https:// URL the events go to")
    add.add_argument(
        "--events",
        default=",".join(FAMILIES),
        help=f"comma-separated, some of {','.join(FAMILIES)} (default: all)",
    )
    add.set_defaults(func=cmd_add)

    ls = verbs.add_parser("list", help="the webhooks, with their backlog and last error (JSON)")
    _common(ls)
    ls.add_argument("--secrets", action="store_true", help="include each webhook's secret")
    ls.set_defaults(func=cmd_list)

    rm = verbs.add_parser("remove", help="remove a webhook and its waiting deliveries")
    _common(rm)
    rm.add_argument("id", type=int)
    rm.set_defaults(func=cmd_remove)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}")


def _service(args: argparse.Namespace) -> WebhookService:
    try:
        config = load_config(args.config, log_warnings=False)
    except ConfigError as exc:
        raise SystemExit(f"gateway: {exc}") from exc
    try:
        store = Store.open(config.data_dir)
    except StoreDamaged as exc:
        raise SystemExit(f"gateway: {exc.advice(args.config)}") from exc
    except StoreError as exc:
        raise SystemExit(f"gateway: {exc}") from exc
    return WebhookService(config, store)


def _refused(exc: WebhookRefused) -> int:
    print(json.dumps({"error": {"field": exc.field, "message": exc.reason}}), file=sys.stderr)
    return 2


def cmd_add(args: argparse.Namespace) -> int:
    service = _service(args)
    try:
        events = [e.strip() for e in args.events.split(",") if e.strip()]
        hook = service.add(args.short_code, args.url, events, user="cli")
    except WebhookRefused as exc:
        return _refused(exc)
    finally:
        service.store.close()
    print(
        json.dumps(
            {"id": hook.id, "url": hook.url, "secret": hook.secret, "events": list(hook.events)}
        )
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    service = _service(args)
    try:
        hooks = [h.to_json(secret=args.secrets) for h in service.all()]
    finally:
        service.store.close()
    print(json.dumps(hooks, ensure_ascii=False, indent=2))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    service = _service(args)
    try:
        hook = service.remove(args.id, user="cli")
    except WebhookRefused as exc:
        return _refused(exc)
    finally:
        service.store.close()
    print(json.dumps({"removed": hook.id, "url": hook.url, "short_code": hook.short_code}))
    return 0
