"""Small helpers shared by the views: whether chat is available for a profile, short code
health, and display formats."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, tzinfo

from flask import abort, has_app_context, request

from ..messaging.eligibility import why_not_textable
from .context import Services, services


def short_codes_status(ctx: Services) -> list[dict]:
    """Each configured short code with whether any modem of its pool can send now."""
    return [
        {
            "code": sc.code,
            "name": sc.name,
            "up": bool(ctx.dispatcher and ctx.dispatcher.short_code_up(sc.code)),
            "modems": list(sc.modems),
        }
        for sc in ctx.config.short_codes
    ]


def chat_unavailable_reason(ctx: Services, profile: sqlite3.Row) -> str | None:
    """Why this profile cannot be chatted with now, or None when it can: it must be one that
    may be texted from the short code a chat reply would go from (messaging/eligibility.py,
    the rule every send obeys; the one it last talked with, else the first it may be texted
    from), and some short code must have a healthy modem."""
    code = None
    if ctx.config.short_codes:
        code = ctx.outbox.short_code_for(None, profile["id"], profile=profile).code
    refusal = why_not_textable(ctx.store, profile, code)
    if refusal is not None:
        return refusal
    if not any(s["up"] for s in short_codes_status(ctx)):
        return "No short code has a modem up."
    return None


def form_short_code(ctx: Services) -> str | None:
    """The form's ``short_code`` (None when it names none: every short code); 400 when it is
    not a configured one."""
    code = request.form.get("short_code", "").strip() or None
    if code is not None and code not in {sc.code for sc in ctx.config.short_codes}:
        abort(400, description=f"{code!r} is not a configured short code.")
    return code


def chat_available(ctx: Services, profile: sqlite3.Row) -> bool:
    return chat_unavailable_reason(ctx, profile) is None


def sentence(message: str) -> str:
    """A message as a sentence for a page: a capital first, a full stop last (the store's and
    the configuration's errors are worded "field: problem" to follow a file or row)."""
    message = message.strip()
    if not message:
        return message
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


def site_zone() -> tzinfo:
    """The site's time zone (the configuration's ``timezone``), in which every page shows
    times; UTC outside a request (a helper called from a test or a script)."""
    if not has_app_context():
        return UTC
    return services().config.tz


def shown_time(stamp: str | None) -> str:
    """A store timestamp (ISO 8601, UTC) as 'YYYY-MM-DD HH:MM', 24-hour, in the site's time
    zone: the one format of every page (app.js's GatewayTime.shown renders the same in the
    browser, for rows that arrive live)."""
    if not stamp:
        return ""
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # the store writes UTC
    return when.astimezone(site_zone()).strftime("%Y-%m-%d %H:%M")


# SQLite integers are 64-bit: a larger page number or id from a URL must not reach a query.
MAX_ID = 2**62


def whole_number(raw: object, *, minimum: int = 0) -> int | None:
    """A non-negative whole number written in ASCII digits (``"²"`` is not one), within what
    the database can hold, or None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.isascii() and raw.strip().isdigit():
        value = int(raw.strip())
    else:
        return None
    return value if minimum <= value <= MAX_ID else None
