"""Commands for the person who runs the box: ``send``, ``modems``, ``user``, ``backup``,
``restore``. They work on the same machine as the daemon, through its control socket or the
store in its data directory."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from ..config import ConfigError, load_config
from ..control import ControlError, is_running, request
from ..messaging.requests import SendRefused, SendRequest
from ..store import Store, StoreDamaged, StoreError, UserError
from ..store import restore as restore_store
from ..store.db import Database
from .daemon import DEFAULT_CONFIG


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}")
    p.add_argument("--data-dir", help="the data directory (instead of reading it from -c)")


def register(sub: argparse._SubParsersAction) -> None:
    send = sub.add_parser("send", help="send a text through the running gateway")
    _common(send)
    send.add_argument("--to", required=True, metavar="NUMBER")
    send.add_argument("--short-code", metavar="CODE")
    send.add_argument("--idempotency-key", metavar="KEY")
    send.add_argument("text")
    send.set_defaults(func=cmd_send)

    modems = sub.add_parser("modems", help="the modems: identity, state, signal")
    _common(modems)
    modems.add_argument("--json", action="store_true", help="print JSON")
    modems.set_defaults(func=cmd_modems)

    mem = sub.add_parser("memory", help="where the running daemon's memory is (JSON)")
    _common(mem)
    mem.add_argument("--trim", action="store_true", help="give free heap memory back first")
    mem.add_argument("--top", type=int, default=25, help="lines of Python growth (traced)")
    mem.set_defaults(func=cmd_memory)

    user = sub.add_parser("user", help="add users or change their passwords")
    verbs = user.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    add = verbs.add_parser("add", help="add a user (asks for the password)")
    _common(add)
    add.add_argument("username")
    add.add_argument("--role", choices=["admin", "agent"], default="agent")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(func=cmd_user_add)
    pw = verbs.add_parser("passwd", help="change a user's password")
    _common(pw)
    pw.add_argument("username")
    pw.add_argument("--password-stdin", action="store_true")
    pw.set_defaults(func=cmd_user_passwd)
    ls = verbs.add_parser("list", help="list users")
    _common(ls)
    ls.set_defaults(func=cmd_user_list)

    backup = sub.add_parser("backup", help="a consistent copy of the store, also while running")
    _common(backup)
    backup.add_argument("file")
    backup.set_defaults(func=cmd_backup)

    restore = sub.add_parser("restore", help="put a backup back (the gateway must be stopped)")
    _common(restore)
    restore.add_argument("file")
    restore.set_defaults(func=cmd_restore)


def _data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir:
        return Path(args.data_dir)
    try:
        return load_config(args.config, log_warnings=False).data_dir
    except ConfigError as exc:
        raise SystemExit(f"{exc}\n(or give --data-dir)") from exc


def _config_arg(args: argparse.Namespace) -> str | None:
    """The -c of this command line, to repeat in advice (None with --data-dir)."""
    return None if args.data_dir else args.config


def _fail(message: str, code: int = 1) -> int:
    print(f"gateway: {message}", file=sys.stderr)
    return code


def cmd_send(args: argparse.Namespace) -> int:
    fields = {
        "to": args.to,
        "text": args.text,
        "short_code": args.short_code,
        "idempotency_key": args.idempotency_key,
    }
    try:
        # Checked here with the daemon's own rules (messaging/requests.py), so a bad argument
        # (a control character, bytes that are not UTF-8, an over-long key) is refused with the
        # same words before anything is sent, daemon or not.
        SendRequest.from_mapping(fields)
    except SendRefused as exc:
        print(
            json.dumps({"ok": False, "field": exc.field, "error": exc.reason}, ensure_ascii=False)
        )
        return 1
    try:
        reply = request(_data_dir(args), "send", **fields)
    except ControlError as exc:
        return _fail(str(exc))
    print(json.dumps(reply, ensure_ascii=False))
    return 0 if reply.get("ok") else 1


def cmd_memory(args: argparse.Namespace) -> int:
    """The daemon's ``memory`` op (gateway/diagnostics.py) as JSON: resident size by kind, the
    C heap, SQLite's heap, the store's connections, threads, and with GATEWAY_TRACEMALLOC set
    in the daemon's environment the Python allocations that grew most."""
    try:
        reply = request(_data_dir(args), "memory", trim=args.trim, top=args.top)
    except ControlError as exc:
        return _fail(str(exc))
    print(json.dumps(reply, ensure_ascii=False, indent=2))
    return 0 if reply.get("ok") else 1


def cmd_modems(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    try:
        reply = request(data_dir, "modems")
    except ControlError as exc:
        return _fail(
            f"{exc}\n(to look at a modem without the daemon: gateway modem --port PATH info)"
        )
    modems = reply.get("modems", [])
    if args.json:
        print(json.dumps(modems, ensure_ascii=False, indent=2))
        return 0
    if not modems:
        print("No modem is configured or found.")
    for m in modems:
        sig = m.get("signal") or {}
        print(
            f"{m['id']:<18} {m['state']:<12} {m.get('imei') or '-':<16} "
            f"{(m.get('manufacturer') or '') + ' ' + (m.get('model') or ''):<24} "
            f"signal {sig.get('dbm', '-')} dBm ({sig.get('bars', 0)}/4)  "
            f"{m.get('operator') or ''}  {m.get('port') or ''}"
        )
        if m.get("last_error"):
            print(f"{'':<18} {m['last_error']}")
        sending = m.get("sending") or {}
        if m["state"] in ("failing", "probing") and sending:
            when = sending.get("next_check")
            print(
                f"{'':<18} out of routing: {sending.get('failures', 0)} send(s) failed in a row"
                f" ({sending.get('reason') or 'no reason given'}); "
                + (
                    f"checked again at {when[:19].replace('T', ' ')} UTC"
                    if when and m["state"] == "failing"
                    else "its check passed; the next message it sends brings it back"
                )
            )
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("gateway: the two passwords differ; nothing changed")
    return first


def _store(args: argparse.Namespace) -> Store:
    try:
        return Store.open(_data_dir(args))
    except StoreDamaged as exc:
        raise SystemExit(f"gateway: {exc.advice(_config_arg(args))}") from exc
    except StoreError as exc:
        raise SystemExit(f"gateway: {exc}") from exc


def cmd_user_add(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        store.users.add(args.username, _password(args), role=args.role)
        store.audit.add("user.add", actor="cli", username=args.username, role=args.role)
    except UserError as exc:
        return _fail(str(exc))
    finally:
        store.close()
    print(f"user {args.username} ({args.role}) added")
    return 0


def cmd_user_passwd(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        store.users.set_password(args.username, _password(args))
        store.audit.add("user.passwd", actor="cli", username=args.username)
    except UserError as exc:
        return _fail(str(exc))
    finally:
        store.close()
    print(f"password of {args.username} changed")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        for row in store.users.all():
            state = " (disabled)" if row["disabled"] else ""
            print(f"{row['username']:<24} {row['role']}{state}")
    finally:
        store.close()
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from ..store import DB_NAME

    path = _data_dir(args) / DB_NAME
    if not path.exists():
        return _fail(f"there is no store at {path}")
    db = Database(path)
    try:
        target = db.backup_to(args.file)  # refused when the store fails its check
    except StoreDamaged as exc:
        return _fail(f"no backup written: {exc.advice(_config_arg(args))}")
    except StoreError as exc:
        return _fail(str(exc))
    finally:
        db.close()
    print(f"backup written to {target}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    if is_running(data_dir):
        return _fail("the gateway is running; stop it first (systemctl stop gateway)")
    try:
        target = restore_store(args.file, data_dir)
    except StoreError as exc:
        return _fail(str(exc))
    print(
        f"restored {target} from {args.file}; the previous store is kept as "
        f"{target.name}.before-restore"
    )
    return 0
