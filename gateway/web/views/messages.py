"""Messages: every message (both directions) with status, modem, parts and errors; filters,
search, CSV export, and a message's page with each part's delivery report — where a person
goes to answer "did it arrive?"."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, g, render_template, request, stream_with_context

from ...messaging.reports import report_meaning
from ...phone import PhoneNumberError, normalize
from ...store.messages import OUT_STATES
from ...store.search import MessageFilter
from ...store.states import INBOUND, MessageStatus, PartStatus
from ..context import Services, services
from ..helpers import shown_time, whole_number

bp = Blueprint("messages", __name__)
# Templates name states by their enum too (``MessageStatus.QUEUED``), not by a bare word.
bp.add_app_template_global(MessageStatus, "MessageStatus")

PAGE_SIZE = 50
EXPORT_BATCH = 500
IN_STATES: tuple[str, ...] = tuple(INBOUND)
KINDS = (
    "reply",
    "opt-out",
    "opt-out-all",
    "opt-in",
    "help",
    "oops",
    "unknown",
    # The team's keywords and their paths (messaging/optin.py).
    "keyword",
    "confirm",
    "answer",
)
DIRECTIONS = ("out", "in")
MAX_QUERY = 200
# A search made of these characters with this many digits is taken for a phone number.
_NUMBER_LIKE = re.compile(r"\+?[\d\s().-]+")
MIN_NUMBER_DIGITS = 6

EXPORT_COLUMNS = (
    "id",
    "created_at",
    "updated_at",
    "direction",
    "profile_id",
    "profile_name",
    "phone",
    "short_code",
    "modem_id",
    "status",
    "error",
    "kind",
    "parts_total",
    "encoding",
    "maybe_duplicate",
    "attempts",
    "created_by",
    "body",
)


@dataclass(frozen=True)
class Filters:
    """The list's filters as read from the query string, with the problems found in it."""

    query: str = ""
    direction: str | None = None
    status: str | None = None
    short_code: str | None = None
    modem_id: str | None = None
    kind: str | None = None
    problems: tuple[str, ...] = ()

    def store_filter(self, ctx: Services) -> MessageFilter:
        """The store's filter: a search that is a phone number (``+1 555 123 0001``, or
        national in the default region) lists that number's messages; any other search looks
        for the words of the text."""
        text, profile_id = self.query, None
        digits = sum(c.isdigit() for c in self.query)
        if self.query and _NUMBER_LIKE.fullmatch(self.query) and digits >= MIN_NUMBER_DIGITS:
            try:
                number = normalize(self.query, ctx.config.default_region)
            except PhoneNumberError:
                number = None
            if number is not None:
                profile = ctx.store.profiles.by_phone(number)
                text, profile_id = "", (profile["id"] if profile is not None else 0)
        return MessageFilter(
            text=text,
            profile_id=profile_id,
            direction=self.direction,
            status=self.status,
            short_code=self.short_code,
            modem_id=self.modem_id,
            kind=self.kind,
        )

    def url_args(self) -> dict[str, str]:
        """The filters as query-string arguments (for pagination and export links)."""
        pairs = {
            "q": self.query,
            "direction": self.direction,
            "status": self.status,
            "short_code": self.short_code,
            "modem": self.modem_id,
            "kind": self.kind,
        }
        return {k: v for k, v in pairs.items() if v}

    @property
    def active(self) -> bool:
        return bool(self.url_args())


def _modem_ids(ctx) -> list[str]:
    ids = [m.id for m in ctx.config.modems]
    ids += [r["modem_id"] for r in ctx.store.modems.all() if r["modem_id"] not in ids]
    return ids


def read_filters(args, ctx) -> Filters:
    """Filters from ``args``; a value that is not one of the known choices is dropped and
    named in ``problems`` (so a mistyped bookmark shows everything, and says why)."""
    problems: list[str] = []

    def choice(name: str, allowed: tuple[str, ...] | list[str], what: str) -> str | None:
        value = (args.get(name) or "").strip()
        if not value:
            return None
        if value not in allowed:
            problems.append(f"{what}: there is no {value!r}; the filter was left out")
            return None
        return value

    query = (args.get("q") or "").strip()
    if len(query) > MAX_QUERY:
        problems.append(f"search: at most {MAX_QUERY} characters; it was shortened")
        query = query[:MAX_QUERY]
    return Filters(
        query=query,
        direction=choice("direction", DIRECTIONS, "direction"),
        status=choice("status", OUT_STATES + IN_STATES, "status"),
        short_code=choice("short_code", [sc.code for sc in ctx.config.short_codes], "short code"),
        modem_id=choice("modem", _modem_ids(ctx), "modem"),
        kind=choice("kind", KINDS, "kind"),
        problems=tuple(problems),
    )


@bp.route("/messages")
def index():
    ctx = services()
    filters = read_filters(request.args, ctx)
    # Keyset pages: "older" passes the id of the last row shown, "newer" that of the first; no
    # page numbers, since counting a million matches costs more than the page itself.
    before = whole_number(request.args.get("before", ""), minimum=1)
    after = whole_number(request.args.get("after", ""), minimum=0)
    page = ctx.store.messages.page(
        filters.store_filter(ctx),
        before=None if after is not None else before,
        after=after,
        limit=PAGE_SIZE,
    )
    return render_template(
        "messages/index.html",
        rows=page.rows,
        newer_than=page.newer_than,
        older_than=page.older_than,
        filters=filters,
        choices={
            "direction": DIRECTIONS,
            "status": OUT_STATES + IN_STATES,
            "kind": KINDS,
            "short_code": [(sc.code, sc.name) for sc in ctx.config.short_codes],
            "modem": [(mid, _modem_label(ctx, mid)) for mid in _modem_ids(ctx)],
        },
        shown_time=shown_time,
    )


def _modem_label(ctx, modem_id: str | None) -> str:
    if not modem_id:
        return ""
    try:
        label = ctx.config.modem(modem_id).label
    except KeyError:
        label = None
    return f"{modem_id} ({label})" if label else modem_id


# -- export ----------------------------------------------------------------------------------

_PLAIN_NUMBER = re.compile(r"[+-]?\d[\d ]*")


def safe_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula: text starting with = + - @ or a
    tab/CR gets a leading apostrophe. Plain numbers (an E.164 phone number) are left as they
    are, since a spreadsheet reads them as numbers, not formulas."""
    if value is None:
        return ""
    text = str(value)
    if text and text[0] in "=+-@\t\r" and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def export_rows(ctx: Services, filters: Filters) -> Iterator[str]:
    """The CSV text of every message matching ``filters``, newest first, a batch at a time."""
    store = ctx.store
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(EXPORT_COLUMNS)
    yield flush()
    # Read by id, a batch at a time: each batch costs what the first did, and the export holds
    # one batch in memory however many messages match.
    for count, row in enumerate(
        store.messages.matching(filters.store_filter(ctx), batch=EXPORT_BATCH), start=1
    ):
        writer.writerow([safe_cell(row[col]) for col in EXPORT_COLUMNS])
        if count % EXPORT_BATCH == 0:
            yield flush()
    yield flush()


@bp.route("/messages/export.csv")
def export():
    ctx = services()
    filters = read_filters(request.args, ctx)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    ctx.store.audit.add("messages.export", actor=g.user["username"], **filters.url_args())
    return Response(
        stream_with_context(export_rows(ctx, filters)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="messages-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


# -- one message -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartView:
    """One part of an outbound message as the detail page shows it."""

    row: sqlite3.Row
    report_code: str | None
    report_category: str | None
    report_meaning: str | None


def part_views(parts: list[sqlite3.Row]) -> list[PartView]:
    views = []
    for p in parts:
        code = p["report_status"]
        if code is None:
            views.append(PartView(p, None, None, None))
        else:
            category, meaning = report_meaning(int(code))
            views.append(PartView(p, f"{int(code)} (0x{int(code):02X})", category, meaning))
    return views


def verdict(message: sqlite3.Row, parts: list[sqlite3.Row]) -> str:
    """One sentence answering "did it arrive?" for an outbound message."""
    status = MessageStatus(message["status"])
    total = message["parts_total"]
    delivered = sum(1 for p in parts if p["status"] == PartStatus.DELIVERED)
    sent = sum(1 for p in parts if p["status"] in (PartStatus.SENT, PartStatus.DELIVERED))
    if status is MessageStatus.DELIVERED:
        return f"Delivered: the network confirmed that all {total} part(s) reached the phone."
    if status is MessageStatus.SENT:
        if delivered:
            return (
                f"Sent: {delivered} of {total} part(s) confirmed delivered; waiting for the "
                "network's report on the rest."
            )
        return (
            "Sent: the network accepted it; no delivery report yet (some networks never send one)."
        )
    if status is MessageStatus.FAILED:
        return f"Failed: {message['error'] or 'no reason was recorded'}."
    if status is MessageStatus.EXPIRED:
        return f"Expired before it could be sent: {message['error'] or 'it waited too long'}."
    if status is MessageStatus.SENDING:
        return f"Being sent now: {sent} of {total} part(s) accepted by the network so far."
    if message["error"]:
        return f"Waiting to be sent; the last attempt failed: {message['error']}."
    return "Waiting to be sent."


@bp.route("/messages/<int:message_id>")
def show(message_id: int):
    ctx = services()
    message = ctx.store.messages.get(message_id)
    if message is None:
        abort(404, description=f"There is no message {message_id}.")
    profile = ctx.store.profiles.get(message["profile_id"])
    parts = ctx.store.messages.parts(message_id) if message["direction"] == "out" else []
    return render_template(
        "messages/show.html",
        m=message,
        profile=profile,
        parts=part_views(parts),
        verdict=verdict(message, parts) if message["direction"] == "out" else None,
        modem_label=_modem_label(ctx, message["modem_id"]),
        shown_time=shown_time,
    )
