"""Broadcasts, segments and static lists (issue 11): the Broadcasts table, compose (with the
counter on the longest expansion, a preview and a test send), a broadcast's page with live
progress and pause, resume and cancel; segments edited with their count and sample as they
change; lists from a CSV file or a selection in the Profiles table.

Thin views over :class:`gateway.messaging.broadcasts.BroadcastService` and the store's
audiences. Every route needs a login and every POST a CSRF token; agents may do all of it
(sending to many is the team's daily work), and every change is in the audit log.
"""

from __future__ import annotations

import functools
import json
import uuid
import zoneinfo
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from ...messaging.broadcasts import (
    BUILTIN_FIELDS,
    TZ_FIELD,
    Audience,
    SendRefused,
    expand,
    merge_fields,
    progress,
)
from ...messaging.profiles import CsvFileError
from ...store.audiences import (
    CUSTOM_OPS,
    FIELDS,
    AudienceError,
    Condition,
    Definition,
    checked,
)
from ...store.broadcasts import SKIP_REASONS
from ...store.states import BroadcastState, RecipientState
from ..context import services
from ..helpers import sentence, short_codes_status, whole_number

bp = Blueprint("broadcasts", __name__)

PER_PAGE = 50
SAMPLE = 20
FIELD_LABELS = {
    "name": "Name",
    "phone": "Phone",
    "status": "Status",
    "subscribed": "Subscribed (to all)",
    "subscribed_to": "Subscribed to short code",
    "short_code": "Talked through short code",
    "list": "In list",
    "opted_in": "Opt-in date",
    "last_activity": "Last activity",
    "added": "Added",
}
STATE_LABELS = {
    BroadcastState.SCHEDULED: "Scheduled",
    BroadcastState.SENDING: "Sending",
    BroadcastState.PAUSED: "Paused",
    BroadcastState.DONE: "Sent",
    BroadcastState.CANCELLED: "Cancelled",
}


@functools.cache
def zones() -> list[str]:
    """The time zones offered (read on first use: listing them walks the zone database, which
    a gateway whose compose page is never opened need not do at start)."""
    return sorted(zoneinfo.available_timezones())


def _actor() -> str:
    return g.user["username"]


@bp.app_template_global()
def zoned_time(stamp: str | None, zone: str | None = None) -> str:
    """A store time as 'YYYY-MM-DD HH:MM' in ``zone`` (the site's by default)."""
    if not stamp:
        return ""
    try:
        tz = zoneinfo.ZoneInfo(zone or services().config.timezone)
        return datetime.fromisoformat(stamp).astimezone(tz).strftime("%Y-%m-%d %H:%M")
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return stamp


@bp.app_template_filter()
def segment_summary(definition: str) -> str:
    """A segment's conditions in words: "school = Lincoln and grade in 3,4,5"."""
    try:
        d = Definition.from_json(definition)
    except AudienceError:
        return "(conditions that cannot be read)"
    if not d.conditions:
        return "every profile"
    return f" {'and' if d.match == 'all' else 'or'} ".join(str(c) for c in d.conditions)


@bp.app_template_filter()
def audience_summary(audience: str) -> str:
    """A broadcast's audience as chosen, in words."""
    try:
        a = json.loads(audience)
    except ValueError:
        return audience
    if "segment" in a:
        return f"segment {a['segment']}"
    if "list" in a:
        return f"list {a['list']}"
    return segment_summary(json.dumps(a.get("conditions", {})))


@bp.app_template_filter()
def skip_reason(reason: str | None) -> str:
    return SKIP_REASONS.get(reason or "", reason or "")


# -- conditions from a form ------------------------------------------------------------------


def _conditions_from(form: Any) -> tuple[Definition, list[str]]:
    """The rows of a conditions editor (field[], op[], value[], match) as a definition, and
    the problems of rows that cannot be read (those rows are left out)."""
    problems: list[str] = []
    conds: list[Condition] = []
    rows = zip(form.getlist("field"), form.getlist("op"), form.getlist("value"), strict=False)
    for i, (field, op, value) in enumerate(rows, start=1):
        field, op, value = field.strip(), op.strip().lower(), value.strip()
        if not field:
            continue
        try:
            conds.append(checked(Condition(field, op, value)))
        except AudienceError as exc:
            problems.append(f"Condition {i}: {exc}")
    match = "any" if form.get("match") == "any" else "all"
    return Definition(tuple(conds), match), problems


def _editor_context() -> dict[str, Any]:
    """What every conditions editor offers: fields with their operators, custom fields, lists
    and short codes."""
    ctx = services()
    custom = ctx.store.profiles.custom_field_names()
    return {
        "fields": [(f, FIELD_LABELS[f], list(ops)) for f, ops in FIELDS.items()],
        "custom_fields": custom,
        "custom_ops": list(CUSTOM_OPS),
        "lists": ctx.store.audiences.lists(),
        "codes": short_codes_status(ctx),
    }


def _sample_json(rows) -> list[dict[str, Any]]:
    return [
        {
            "id": r["id"],
            "name": r["name"],
            "phone": r["phone"],
            "status": r["status"],
            "subscribed": bool(r["subscribed"]),
            "url": url_for("profiles.show", profile_id=r["id"]),
        }
        for r in rows
    ]


# -- segments and lists ----------------------------------------------------------------------


@bp.get("/segments")
def segments():
    au = services().store.audiences
    return render_template("broadcasts/segments.html", segments=au.segments(), lists=au.lists())


@bp.route("/segments/new", methods=["GET", "POST"])
@bp.route("/segments/<int:segment_id>", methods=["GET", "POST"])
def segment(segment_id: int | None = None):
    au = services().store.audiences
    row = au.segment(segment_id) if segment_id is not None else None
    if segment_id is not None and row is None:
        abort(404)
    name = row["name"] if row is not None else ""
    definition = Definition.from_json(row["definition"]) if row is not None else Definition()
    errors: list[str] = []
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        definition, errors = _conditions_from(request.form)
        if not errors:
            try:
                sid = au.save_segment(name, definition, segment_id=segment_id, user=_actor())
            except AudienceError as exc:
                errors.append(str(exc))
            else:
                services().store.audit.add("segment.save", actor=_actor(), id=sid, name=name)
                flash(f"Segment {name!r} saved.", "success")
                return redirect(url_for("broadcasts.segment", segment_id=sid))
    preview = au.preview(definition, sample=SAMPLE) if not errors else None
    return render_template(
        "broadcasts/segment.html",
        segment=row,
        name=name,
        definition=definition,
        preview=preview,
        errors=errors,
        **_editor_context(),
    ), (400 if errors else 200)


@bp.post("/segments/<int:segment_id>/delete")
def delete_segment(segment_id: int):
    au = services().store.audiences
    row = au.segment(segment_id)
    if row is None:
        abort(404)
    au.delete_segment(segment_id)
    services().store.audit.add("segment.delete", actor=_actor(), id=segment_id, name=row["name"])
    flash(f"Segment {row['name']!r} deleted.", "success")
    return redirect(url_for("broadcasts.segments"))


@bp.post("/segments/preview")
def preview_segment():
    """The count and the first profiles of the conditions being edited (JSON for the page)."""
    definition, problems = _conditions_from(request.form)
    if problems:
        # 200: a condition half typed is the normal state of the editor, not a failed request.
        return jsonify(ok=False, error=" ".join(problems))
    p = services().store.audiences.preview(definition, sample=SAMPLE)
    return jsonify(ok=True, count=p.count, sample=_sample_json(p.sample))


@bp.route("/lists/new", methods=["GET", "POST"])
def new_list():
    error = None
    report = None
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        upload = request.files.get("file")
        if not name:
            error = "Give the list a name."
        elif upload is None or not upload.filename:
            error = "Choose a CSV file with a phone column."
        else:
            try:
                report = services().broadcasts.list_from_csv(name, upload.read(), user=_actor())
            except CsvFileError as exc:
                error = f"{upload.filename}: {exc}. No list was made."
            except AudienceError as exc:
                error = f"{exc}."
            else:
                services().store.audit.add(
                    "list.create", actor=_actor(), id=report.list_id, name=name
                )
                return render_template("broadcasts/list_report.html", report=report)
    return render_template("broadcasts/list_new.html", error=error), (400 if error else 200)


@bp.post("/lists/from-profiles")
def list_from_profiles():
    """Profiles ticked in the Profiles table join a list (a new one, or one of that name)."""
    name = request.form.get("list_name", "").strip()
    ids = [i for i in (whole_number(v, minimum=1) for v in request.form.getlist("profile_id")) if i]
    back = request.form.get("next") or url_for("profiles.index")
    if not back.startswith("/") or back.startswith("//"):
        back = url_for("profiles.index")
    if not name or not ids:
        flash("Tick some profiles and name the list to add them to.", "error")
        return redirect(back)
    try:
        added = services().broadcasts.list_from_profiles(name, ids, user=_actor())
    except AudienceError as exc:
        flash(f"{exc}.", "error")
        return redirect(back)
    services().store.audit.add("list.add", actor=_actor(), name=name, profiles=len(ids))
    flash(f"{added} profile(s) added to the list {name!r}.", "success")
    return redirect(back)


@bp.get("/lists/<int:list_id>")
def show_list(list_id: int):
    au = services().store.audiences
    row = au.list_(list_id)
    if row is None:
        abort(404)
    return render_template(
        "broadcasts/list.html", lst=row, members=au.members(list_id, limit=PER_PAGE)
    )


@bp.post("/lists/<int:list_id>/delete")
def delete_list(list_id: int):
    au = services().store.audiences
    row = au.list_(list_id)
    if row is None:
        abort(404)
    au.delete_list(list_id)
    services().store.audit.add("list.delete", actor=_actor(), id=list_id, name=row["name"])
    flash(f"List {row['name']!r} deleted.", "success")
    return redirect(url_for("broadcasts.segments"))


# -- broadcasts ------------------------------------------------------------------------------


@bp.get("/broadcasts")
def index():
    before = whole_number(request.args.get("before"), minimum=1)
    rows = services().store.broadcasts.page(before=before, limit=PER_PAGE + 1)
    older = rows[PER_PAGE - 1]["id"] if len(rows) > PER_PAGE else None
    return render_template(
        "broadcasts/index.html", rows=rows[:PER_PAGE], older=older, labels=STATE_LABELS
    )


def _audience_from(form: Any) -> Audience:
    """The audience chosen on the compose form: a segment, a list or conditions."""
    bs = services().broadcasts
    kind = form.get("audience", "segment")
    if kind == "segment":
        if not form.get("segment_id"):
            raise SendRefused("audience", "Choose a segment (or another audience).")
        return bs.audience(segment=whole_number(form.get("segment_id"), minimum=1) or -1)
    if kind == "list":
        if not form.get("list_id"):
            raise SendRefused("audience", "Choose a list (or another audience).")
        return bs.audience(list_name=whole_number(form.get("list_id"), minimum=1) or -1)
    definition, problems = _conditions_from(form)
    if problems:
        raise SendRefused("audience", " ".join(problems))
    return bs.audience(conditions=definition)


def _compose_form() -> dict[str, Any]:
    f = request.form
    return {
        "name": f.get("name", "").strip(),
        "campaign": f.get("campaign", "").strip(),
        "short_code": f.get("short_code", "").strip(),
        "text": f.get("text", "").replace("\r\n", "\n"),
        "audience": f.get("audience", "segment"),
        "segment_id": f.get("segment_id", ""),
        "list_id": f.get("list_id", ""),
        "when": f.get("when", "now"),
        "at": f.get("at", ""),
        "timezone": f.get("timezone", "") or services().config.timezone,
        "per_recipient_tz": bool(f.get("per_recipient_tz")),
        "test_to": f.get("test_to", "").strip(),
        "match": f.get("match", "all"),
        "request_key": f.get("request_key", "").strip()[:64] or uuid.uuid4().hex,
    }


@bp.route("/broadcasts/new", methods=["GET", "POST"])
def new():
    ctx = services()
    bs = ctx.broadcasts
    codes = ctx.config.short_codes
    form = {
        "name": "",
        "campaign": "",
        "short_code": codes[0].code if codes else "",
        "text": "",
        "audience": "segment",
        "segment_id": request.args.get("segment", ""),
        "list_id": request.args.get("list", ""),
        "when": "now",
        "at": "",
        "timezone": ctx.config.timezone,
        "per_recipient_tz": False,
        "test_to": "",
        "match": "all",
        "request_key": uuid.uuid4().hex,  # the same form posted twice makes one broadcast
    }
    if form["list_id"]:
        form["audience"] = "list"
    errors: dict[str, str] = {}
    definition = Definition()
    if request.method == "POST":
        form = _compose_form()
        definition, _ = _conditions_from(request.form)
        action = request.form.get("action", "create")
        try:
            audience = _audience_from(request.form)
            if action == "test":
                if not form["test_to"]:
                    raise SendRefused("test_to", "Type the number to send the test to.")
                sent = bs.send_test(
                    form["text"],
                    to=form["test_to"],
                    short_code=form["short_code"],
                    audience=audience,
                    user=_actor(),
                )
                flash(f"Test sent to {sent['to']}: “{sent['text']}”", "success")
            else:
                at = form["at"] if form["when"] == "later" else None
                if form["when"] == "later" and not at:
                    raise SendRefused("at", "Choose the date and time to send it.")
                reply = bs.create(
                    form["text"],
                    short_code=form["short_code"],
                    audience=audience,
                    name=form["name"],
                    campaign=form["campaign"],
                    at=at,
                    timezone=form["timezone"],
                    per_recipient_tz=form["per_recipient_tz"],
                    user=_actor(),
                    request_key=form["request_key"],
                )
                if reply["created"]:
                    flash(
                        f"Broadcast created: {reply['recipients']} recipient(s),"
                        f" {reply['skipped']} skipped.",
                        "success",
                    )
                else:
                    flash(
                        "This broadcast had already been created; it was not made again.", "success"
                    )
                return redirect(url_for("broadcasts.show", broadcast_id=reply["id"]))
        except SendRefused as exc:
            errors[exc.field if exc.field in _FORM_FIELDS else "audience"] = sentence(exc.reason)
    return render_template(
        "broadcasts/new.html",
        form=form,
        errors=errors,
        definition=definition,
        segments=ctx.store.audiences.segments(),
        campaigns=ctx.store.broadcasts.bulk_campaigns(),
        zones=zones(),
        limits=ctx.config.messages,
        merge_fields=[*BUILTIN_FIELDS],
        tz_field=TZ_FIELD,
        **_editor_context(),
    ), (400 if errors else 200)


_FORM_FIELDS = {"text", "short_code", "audience", "at", "timezone", "test_to", "name", "to"}


@bp.post("/broadcasts/longest")
def longest():
    """For the compose page: the audience's count, each merge field's longest values (the
    counter combines them as the server does), the longest expansion's parts and a preview
    for the audience's first profile."""
    ctx = services()
    text = request.form.get("text", "").replace("\r\n", "\n")
    try:
        audience = _audience_from(request.form)
        body = ctx.broadcasts.check_body(text) if text.strip() else ""
    except SendRefused as exc:  # 200: a text or condition being typed, shown by the page
        return jsonify(ok=False, field=exc.field, error=sentence(exc.reason))
    except AudienceError as exc:
        return jsonify(ok=False, field="audience", error=sentence(str(exc)))
    au = ctx.store.audiences
    count = au.count(audience.where, audience.params)
    sample = au.first(audience.where, audience.params)
    out: dict[str, Any] = {"ok": True, "count": count, "fields": {}, "preview": None}
    if body:
        lg = ctx.broadcasts.longest(body, audience)
        out.update(
            fields=lg.values,
            parts=lg.analysis.parts,
            encoding=lg.analysis.encoding,
            longest=lg.text,
            merge=merge_fields(body),
        )
        if sample is not None:
            out["preview"] = {
                "name": sample["name"] or sample["phone"],
                "text": expand(body, sample),
            }
    return jsonify(out)


def _broadcast_or_404(broadcast_id: int):
    b = services().store.broadcasts.get(broadcast_id)
    if b is None:
        abort(404)
    return b


@bp.get("/broadcasts/<int:broadcast_id>")
def show(broadcast_id: int):
    ctx = services()
    b = _broadcast_or_404(broadcast_id)
    after = whole_number(request.args.get("after"), minimum=0) or 0
    recipients = ctx.store.broadcasts.recipients_page(broadcast_id, after=after, limit=PER_PAGE + 1)
    more = recipients[PER_PAGE - 1]["profile_id"] if len(recipients) > PER_PAGE else None
    return render_template(
        "broadcasts/show.html",
        b=b,
        p=progress(b),
        labels=STATE_LABELS,
        reasons={
            SKIP_REASONS.get(k, k): v
            for k, v in ctx.store.broadcasts.skipped_reasons(broadcast_id).items()
        },
        recipients=recipients[:PER_PAGE],
        more=more,
        states=BroadcastState,
        recipient_states=RecipientState,
    )


@bp.get("/broadcasts/<int:broadcast_id>/progress")
def progress_json(broadcast_id: int):
    """The counters as JSON (the page reads them when its live stream reconnects)."""
    return jsonify(progress(_broadcast_or_404(broadcast_id)))


def _act(broadcast_id: int, action: str):
    _broadcast_or_404(broadcast_id)
    bs = services().broadcasts
    fn = {"pause": bs.pause, "resume": bs.resume, "cancel": bs.cancel}[action]
    try:
        st = fn(broadcast_id, user=_actor())
    except SendRefused as exc:
        flash(sentence(exc.reason), "error")
    else:
        flash(f"Broadcast {STATE_LABELS.get(st['state'], st['state']).lower()}.", "success")
    return redirect(url_for("broadcasts.show", broadcast_id=broadcast_id))


@bp.post("/broadcasts/<int:broadcast_id>/pause")
def pause(broadcast_id: int):
    return _act(broadcast_id, "pause")


@bp.post("/broadcasts/<int:broadcast_id>/resume")
def resume(broadcast_id: int):
    return _act(broadcast_id, "resume")


@bp.post("/broadcasts/<int:broadcast_id>/cancel")
def cancel(broadcast_id: int):
    return _act(broadcast_id, "cancel")
