"""Profiles: list, search, add, edit, import/export; a profile's page; Text This Profile.

Thin views over :class:`gateway.messaging.profiles.ProfileService` (checks, recorded changes,
CSV) and :meth:`gateway.messaging.outbound.Outbox.submit` (sending). Every route needs a login
(the app refuses anonymous requests) and every POST a CSRF token (CSRFProtect); agents may do
all of it, since it is their daily work.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from ...messaging.eligibility import why_not_textable
from ...messaging.outbound import SendRefused
from ...messaging.profiles import (
    STATUSES,
    CsvFileError,
    ProfileInvalid,
    ProfileNotFound,
    ProfileService,
)
from ...messaging.subscriptions import OptSource
from ...store.profiles import custom_fields
from ...store.states import OPEN_PATHS, MessageStatus
from ..context import services
from ..helpers import (
    chat_available,
    chat_unavailable_reason,
    form_short_code,
    short_codes_status,
    shown_time,
    whole_number,
)

bp = Blueprint("profiles", __name__)

PER_PAGE = 50
HISTORY_PAGE = 100
SORT_LABELS = (
    ("name", "name"),
    ("phone", "phone number"),
    ("status", "status"),
    ("subscribed", "subscription"),
    ("last_message", "last message"),
)
SORT_COLUMNS = tuple(column for column, _ in SORT_LABELS)
MAX_TEXT_CHARS = 10_000  # far above 10 SMS; only stops absurd posts before the codec sees them
# The one table of marks on the server (chat.js, messages.js and profiles.js hold the browser's).
STATUS_MARKS = {
    MessageStatus.QUEUED: "⏳",
    MessageStatus.SENDING: "⏳",
    MessageStatus.SENT: "✓",
    MessageStatus.DELIVERED: "✓✓",
    MessageStatus.FAILED: "✗",
    MessageStatus.EXPIRED: "✗",
}


def _service() -> ProfileService:
    return services().profiles


def _profile_or_404(profile_id: int):
    try:
        return _service().get(profile_id)
    except ProfileNotFound:
        abort(404, description=f"There is no profile with id {profile_id}.")


def _actor() -> str:
    return g.user["username"]


@bp.app_template_global()
def status_mark(status: str | None) -> str:
    """The mark shown beside an outbound message's status (⏳ ✓ ✓✓ ✗)."""
    return STATUS_MARKS.get(status or "", "")


# -- the list ----------------------------------------------------------------------------


@bp.route("/profiles")
def index():
    ctx = services()
    query = request.args.get("q", "").strip()[:200]
    sort = request.args.get("sort", "name")
    if sort not in SORT_COLUMNS:
        sort = "name"
    descending = request.args.get("dir") == "desc"
    status = request.args.get("status", "")
    if status not in STATUSES:
        status = ""
    # Keyset pages: next and previous pass the id of the last or first row shown (so the
    # five-hundredth page costs what the first does); ``last`` reads the end of the list.
    after = _cursor_arg("after")
    before = _cursor_arg("before")
    result = ctx.store.profiles.page(
        query,
        sort=sort,
        descending=descending,
        status=status or None,
        after=after,
        before=None if after is not None else before,
        last=request.args.get("last") == "1",
        limit=PER_PAGE,
    )
    rows = result.rows
    if not rows and (after is not None or before is not None):  # a stale link
        return redirect(_list_url(q=query, sort=sort, dir=_dir(descending), status=status))
    # Short codes where a profile's subscription is not its default (a STOP to one of them).
    differing = ctx.store.subscriptions.differing([r["id"] for r in rows])
    profiles = [
        {
            "row": r,
            "chat": chat_available(ctx, r),
            "last": shown_time(r["last_message_at"]),
            "except": differing.get(r["id"], {}),
        }
        for r in rows
    ]

    def sort_link(column: str) -> str:
        flip = column == sort and not descending
        return _list_url(q=query, sort=column, dir="desc" if flip else "asc", status=status)

    def page_link(**cursor: Any) -> str:
        return _list_url(q=query, sort=sort, dir=_dir(descending), status=status, **cursor)

    links = {
        "first": page_link() if result.has_previous else None,
        "prev": page_link(before=rows[0]["id"]) if result.has_previous else None,
        "next": page_link(after=rows[-1]["id"]) if result.has_next else None,
        "last": page_link(last=1) if result.has_next else None,
    }
    return render_template(
        "profiles/index.html",
        profiles=profiles,
        total=result.total,
        first_shown=result.position + 1,
        last_shown=result.position + len(rows),
        page=max(1, math.ceil((result.position + len(rows)) / PER_PAGE)),
        pages=max(1, math.ceil(result.total / PER_PAGE)),
        query=query,
        sort=sort,
        descending=descending,
        status=status,
        links=links,
        sort_link=sort_link,
        sort_labels=SORT_LABELS,
    )


def _cursor_arg(name: str) -> int | None:
    """A profile id from the query string (a page's first or last row), or None."""
    return whole_number(request.args.get(name, ""), minimum=1)


def _dir(descending: bool) -> str:
    return "desc" if descending else "asc"


def _list_url(**args: Any) -> str:
    kept = {k: v for k, v in args.items() if v not in ("", None)}
    if kept.get("sort") == "name":
        kept.pop("sort")
    if kept.get("dir") == "asc":
        kept.pop("dir")
    return url_for("profiles.index", **kept)


# -- add and edit ------------------------------------------------------------------------


def _custom_from_form() -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The custom fields typed in the form, as a dict (for checking) and as the rows to show
    again (blank rows dropped). A value without a name is kept under '' so it is reported."""
    names = request.form.getlist("custom_name")
    values = request.form.getlist("custom_value")
    pairs = [(n.strip(), v.strip()) for n, v in zip(names, values, strict=False)]
    rows = [(n, v) for n, v in pairs if n or v]
    return dict(rows), rows


@bp.route("/profiles/new", methods=["GET", "POST"])
def new():
    form: dict[str, Any] = {"name": "", "phone": "", "status": "active", "subscribed": "yes"}
    errors: dict[str, str] = {}
    custom_rows: list[tuple[str, str]] = []
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in form}
        custom, custom_rows = _custom_from_form()
        service = _service()
        try:
            fields = service.validate(
                name=form["name"],
                phone=form["phone"],
                status=form["status"],
                subscribed=form["subscribed"] != "no",
                custom=custom,
            )
            pid = service.create(fields, actor=_actor())
        except ProfileInvalid as exc:
            errors = exc.errors
        else:
            flash(f"Profile {fields.name or fields.phone} added.", "success")
            return redirect(url_for("profiles.show", profile_id=pid))
    return render_template(
        "profiles/form.html",
        profile=None,
        form=form,
        custom_rows=custom_rows,
        errors=errors,
    ), (400 if errors else 200)


@bp.route("/profiles/<int:profile_id>/edit", methods=["GET", "POST"])
def edit(profile_id: int):
    profile = _profile_or_404(profile_id)
    form = {"name": profile["name"], "phone": profile["phone"], "status": profile["status"]}
    custom_rows = list(custom_fields(profile).items())
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in form}
        custom, custom_rows = _custom_from_form()
        service = _service()
        try:
            fields = service.validate(
                name=form["name"],
                phone=form["phone"],
                status=form["status"],
                subscribed=bool(profile["subscribed"]),
                custom=custom,
                profile_id=profile_id,
            )
            service.update(profile_id, fields, actor=_actor())
        except ProfileInvalid as exc:
            errors = exc.errors
        else:
            flash("Profile saved.", "success")
            return redirect(url_for("profiles.show", profile_id=profile_id))
    return render_template(
        "profiles/form.html",
        profile=profile,
        form=form,
        custom_rows=custom_rows,
        errors=errors,
    ), (400 if errors else 200)


# Status and subscription are two switches, each changed by one function (the Inbox's buttons
# call the same ones): "Reactivate" (activate) never re-subscribes, "Re-subscribe" never
# reactivates.


@bp.route("/profiles/<int:profile_id>/deactivate", methods=["POST"])
def deactivate(profile_id: int):
    _profile_or_404(profile_id)
    changed = _service().deactivate(profile_id, actor=_actor())
    return _status_changed(profile_id, changed, "deactivated")


@bp.route("/profiles/<int:profile_id>/activate", methods=["POST"])
def activate(profile_id: int):
    _profile_or_404(profile_id)
    changed = _service().activate(profile_id, actor=_actor())
    return _status_changed(profile_id, changed, "reactivated")


def _status_changed(profile_id: int, changed: bool, word: str):
    flash(f"Profile {word}." if changed else f"The profile was already {word}.", "success")
    return redirect(url_for("profiles.show", profile_id=profile_id))


@bp.route("/profiles/<int:profile_id>/opt-out", methods=["POST"])
def opt_out(profile_id: int):
    return _set_subscribed(profile_id, False)


@bp.route("/profiles/<int:profile_id>/resubscribe", methods=["POST"])
def resubscribe(profile_id: int):
    return _set_subscribed(profile_id, True)


def _set_subscribed(profile_id: int, subscribed: bool):
    """Change the subscription to the form's ``short_code``, or to all of them when it names
    none."""
    ctx = services()
    _profile_or_404(profile_id)
    code = form_short_code(ctx)
    subscriptions = ctx.subscriptions
    by = OptSource.by_hand(_actor())
    if subscribed:
        changed = subscriptions.subscribe(profile_id, by, short_code=code)
    else:
        changed = subscriptions.unsubscribe(profile_id, by, short_code=code)
    scope = f"to {code}" if code else "to every short code"
    if subscribed:
        message = f"Re-subscribed {scope} by hand; recorded in the opt history."
    elif code:
        message = f"Opted out of {code} by hand; recorded in the opt history."
    else:
        message = (
            "Opted out of every short code by hand; recorded in the opt history."
            " No more texts will go out."
        )
    flash(message if changed else "Nothing changed.", "success")
    return redirect(url_for("profiles.show", profile_id=profile_id))


# -- a profile's page --------------------------------------------------------------------


@bp.route("/profiles/<int:profile_id>")
def show(profile_id: int):
    ctx = services()
    profile = _profile_or_404(profile_id)
    before = whole_number(request.args.get("before", ""), minimum=1)
    messages, parts, more = _service().history(profile_id, before=before, limit=HISTORY_PAGE)
    modems = {m.id: m.label or m.id for m in ctx.config.modems}
    return render_template(
        "profiles/show.html",
        profile=profile,
        subscriptions=_subscription_rows(ctx, profile),
        paths=[
            {**dict(p), "open": p["state"] in OPEN_PATHS}
            for p in ctx.store.keyword_paths.of_profile(profile_id, limit=10)
        ],
        custom=custom_fields(profile),
        opt_history=ctx.store.opt_events.history(profile_id),
        messages=messages,
        parts=parts,
        more=more,
        before=before,
        modems=modems,
        chat=chat_available(ctx, profile),
        chat_reason=chat_unavailable_reason(ctx, profile),
        shown_time=shown_time,
    )


def _subscription_rows(ctx, profile) -> list[dict[str, Any]]:
    """Each configured short code with whether the profile is subscribed to it and whether
    that is its own choice or the profile's default."""
    own = ctx.store.subscriptions.of_profile(profile["id"])
    return [
        {
            "code": sc.code,
            "name": sc.name,
            "subscribed": own.get(sc.code, bool(profile["subscribed"])),
            "own": sc.code in own,
        }
        for sc in ctx.config.short_codes
    ]


# -- Text This Profile -------------------------------------------------------------------


@bp.route("/profiles/<int:profile_id>/text", methods=["GET", "POST"])
def text(profile_id: int):
    ctx = services()
    profile = _profile_or_404(profile_id)
    codes = short_codes_status(ctx)
    for sc in codes:
        # The drop-down offers only the short codes the profile may be texted from; the
        # others are shown disabled with the reason (messaging/eligibility.py).
        sc["refusal"] = why_not_textable(ctx.store, profile, sc["code"])
    try:
        default_code = ctx.outbox.short_code_for(None, profile_id, profile=profile).code
    except SendRefused:
        default_code = ""
    form = {"text": "", "short_code": default_code, "idempotency_key": uuid.uuid4().hex}
    errors: dict[str, str] = {}
    if request.method == "POST":
        # A form sends a textarea's line breaks as CR LF; the counter the user saw (and the
        # chat's JSON) has LF alone, and CR LF would cost one more septet per line break.
        form["text"] = request.form.get("text", "").replace("\r\n", "\n")
        form["short_code"] = request.form.get("short_code", "").strip()
        # Checked whole by Outbox.submit (messaging/requests.py), never cut to fit.
        form["idempotency_key"] = request.form.get("idempotency_key", "")
        if len(form["text"]) > MAX_TEXT_CHARS:
            errors["text"] = f"The text is far too long ({len(form['text']):,} characters)."
        elif not form["short_code"]:
            errors["short_code"] = "Choose a short code to send from."
        else:
            try:
                accepted = ctx.outbox.submit(
                    form["text"],
                    profile_id=profile_id,
                    short_code=form["short_code"],
                    user=_actor(),
                    # A key already used for another profile or text is a conflict (refused).
                    idempotency_key=form["idempotency_key"] or None,
                )
            except SendRefused as exc:
                errors[exc.field if exc.field in ("text", "short_code") else "profile"] = exc.reason
                if exc.field == "idempotency_key":
                    form["idempotency_key"] = uuid.uuid4().hex  # sending again is a new message
            else:
                if accepted.created:
                    sms = f"{accepted.parts} SMS" if accepted.parts > 1 else "1 SMS"
                    flash(f"Message queued ({sms}) from {accepted.short_code}.", "success")
                else:
                    flash("This message had already been sent; it was not sent again.", "success")
                return redirect(url_for("profiles.show", profile_id=profile_id))
    return render_template(
        "profiles/text.html",
        profile=profile,
        codes=codes,
        form=form,
        errors=errors,
        blocked=_send_blocked(codes, default_code),
        limits=ctx.config.messages,
    ), (400 if errors else 200)


def _send_blocked(codes: list[dict], default_code: str) -> str | None:
    """Why no text can go to this profile from any short code (shown above the form), or
    None when one can: the reason of the short code it would go from."""
    if not codes or any(sc["refusal"] is None for sc in codes):
        return None
    refusal = next((sc["refusal"] for sc in codes if sc["code"] == default_code), None)
    return refusal or codes[0]["refusal"]  # already a sentence


# -- CSV ---------------------------------------------------------------------------------


@bp.route("/profiles/import", methods=["GET", "POST"])
def import_csv():
    error = None
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            error = "Choose a CSV file to import."
        else:
            try:
                report = _service().import_csv(upload.read(), actor=_actor())
            except CsvFileError as exc:
                error = f"{upload.filename}: {exc}. Nothing was imported."
            else:
                return render_template(
                    "profiles/import_report.html", report=report, filename=upload.filename
                )
    return render_template("profiles/import.html", error=error), (400 if error else 200)


@bp.route("/profiles/export.csv")
def export_csv():
    services().store.audit.add("profile.export", actor=_actor())
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    # Streamed a batch at a time: a hundred thousand profiles never sit in memory at once.
    chunks = (chunk.encode("utf-8") for chunk in _service().export_chunks())
    return Response(
        stream_with_context(chunks),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="profiles-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )
