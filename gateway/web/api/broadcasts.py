"""``/api/v1/broadcasts``, ``/api/v1/segments`` and ``/api/v1/lists``: create a broadcast
(one text with merge fields to a segment, a list or conditions, now or at a set time), follow
its counters, pause, resume or cancel it; list, read, create, change and delete segments with
their count and a sample; list the static lists (made in the web app) with their sizes.

Thin over :class:`gateway.messaging.broadcasts.BroadcastService` and the store's audiences,
as the web app's Broadcasts pages are: the same checks (text, merge fields, short code,
audience, time), the same skipped recipients (opted out, inactive), the same audit entries.
Both roles may do all of it, as in the web app (sending to many is an agent's daily work).

A create with an ``idempotency_key`` answers 201 with the new broadcast; 200 with the stored
one when the key was used before for the same request (a retry makes nothing new); 409 when it
was used for another.
"""

from __future__ import annotations

import json
from typing import Any

from flask import jsonify

from ...messaging.broadcasts import progress
from ...messaging.outbound import IdempotencyConflict, SendRefused
from ...messaging.requests import check_key
from ...store.audiences import AudienceError, Condition, Definition, checked, parse_condition
from ..context import services
from ..helpers import MAX_ID
from .base import (
    ApiError,
    bp,
    cursor_arg,
    found,
    json_object,
    limit_arg,
    only_fields,
    query_args,
    token_user,
)
from .openapi_broadcasts import add_broadcast_paths
from .shapes import profiles_json

CREATE_FIELDS = {
    "text",
    "short_code",
    "audience",
    "campaign",
    "name",
    "at",
    "timezone",
    "per_recipient_tz",
    "idempotency_key",
}
AUDIENCE_KINDS = ("segment", "list", "where")
SEGMENT_FIELDS = {"name", "conditions", "match"}
SAMPLE = 10  # profiles shown with a segment
MAX_NAME_CHARS = 200
MAX_CONDITIONS = 50


def _sentence(reason: str) -> str:
    reason = reason.strip()
    return reason[:1].upper() + reason[1:] + ("" if reason.endswith((".", ")", "?")) else ".")


# -- broadcasts ------------------------------------------------------------------------------


def broadcast_json(b: Any) -> dict[str, Any]:
    """A broadcast: its state and counters (as the web page and the CLI show them) and what
    was asked for."""
    try:
        audience = json.loads(b["audience"])
    except ValueError:
        audience = {}
    return {
        **progress(b),
        "text": b["body"],
        "campaign": b["campaign_name"],
        "audience": audience,
        "timezone": b["timezone"],
        "per_recipient_tz": bool(b["per_recipient_tz"]),
        "encoding": b["encoding"],
        "idempotency_key": b["request_key"],
        "created_by": b["created_by"],
        "created_at": b["created_at"],
        "updated_at": b["updated_at"],
        "started_at": b["started_at"],
        "finished_at": b["finished_at"],
    }


def broadcast_or_404(broadcast_id: int) -> Any:
    return found(services().store.broadcasts.get, broadcast_id, "broadcast")


@bp.get("/broadcasts")
def list_broadcasts():
    query_args({"cursor", "limit"})
    limit = limit_arg()
    rows = services().store.broadcasts.page(before=cursor_arg(), limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify(
        data=[broadcast_json(b) for b in rows],
        next=str(rows[-1]["id"]) if more and rows else None,
    )


def _string(data: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise ApiError(422, f"{name} is required.", name)
        return None
    if not isinstance(value, str):
        raise ApiError(422, f"{name} must be a string.", name)
    if len(value) > (10_000 if name == "text" else MAX_NAME_CHARS):
        raise ApiError(422, f"{name} is too long.", name)
    return value


def _audience(raw: Any):
    """The audience of a create request as the service compiles it; 422 naming
    ``audience.KIND`` for one it cannot use."""
    example = '{"segment": "Parents"}, {"list": "Trip"} or {"where": ["school=Lincoln"]}'
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in AUDIENCE_KINDS:
        raise ApiError(422, f"audience must be one of {example}.", "audience")
    kind, value = next(iter(raw.items()))
    field = f"audience.{kind}"
    bs = services().broadcasts
    try:
        if kind == "where":
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(w, str) for w in value)
            ):
                raise ApiError(
                    422,
                    "audience.where must be a list of one or more conditions such as "
                    '["school=Lincoln", "grade in 3,4,5"] (to text everyone, use a segment).',
                    field,
                )
            if len(value) > MAX_CONDITIONS:
                raise ApiError(422, f"At most {MAX_CONDITIONS} conditions.", field)
            return bs.audience(conditions=bs.parse_where(value))
        if isinstance(value, bool) or not isinstance(value, str | int) or value in ("", 0):
            raise ApiError(422, f"{field} must be a {kind}'s name or id.", field)
        if isinstance(value, str) and len(value) > MAX_NAME_CHARS:
            raise ApiError(422, f"{field} is too long.", field)
        if isinstance(value, int) and not 0 < value <= MAX_ID:
            raise ApiError(422, f"{field} must be a {kind}'s name or id.", field)
        if kind == "segment":
            return bs.audience(segment=value)
        return bs.audience(list_name=value)
    except SendRefused as exc:
        raise ApiError(422, _sentence(exc.reason), field) from None
    except AudienceError as exc:
        raise ApiError(422, _sentence(str(exc)), field) from None


@bp.post("/broadcasts")
def create_broadcast():
    data = json_object()
    only_fields(data, CREATE_FIELDS)
    text = _string(data, "text", required=True)
    short_code = _string(data, "short_code", required=True)
    if "audience" not in data:
        raise ApiError(422, "Say who gets it: audience.", "audience")
    names = {k: _string(data, k) for k in ("name", "campaign", "at", "timezone")}
    per_recipient_tz = data.get("per_recipient_tz", False)
    if not isinstance(per_recipient_tz, bool):
        raise ApiError(422, "per_recipient_tz must be true or false.", "per_recipient_tz")
    try:
        key = check_key(data.get("idempotency_key"))
    except SendRefused as exc:
        raise ApiError(422, _sentence(exc.reason), "idempotency_key") from None
    audience = _audience(data["audience"])
    ctx = services()
    try:
        reply = ctx.broadcasts.create(
            text or "",
            short_code=short_code or "",
            audience=audience,
            name=names["name"],
            campaign=names["campaign"],
            at=names["at"],
            timezone=names["timezone"],
            per_recipient_tz=per_recipient_tz,
            user=token_user().username,
            request_key=key,
        )
    except IdempotencyConflict as exc:
        raise ApiError(
            409, _sentence(exc.reason), "idempotency_key", code="idempotency_conflict"
        ) from None
    except SendRefused as exc:
        field = exc.field if exc.field in CREATE_FIELDS else None
        raise ApiError(422, _sentence(exc.reason), field) from None
    body = broadcast_json(broadcast_or_404(int(reply["id"])))
    return jsonify(body), 201 if reply["created"] else 200


@bp.get("/broadcasts/<int:broadcast_id>")
def get_broadcast(broadcast_id: int):
    query_args(set())
    return jsonify(broadcast_json(broadcast_or_404(broadcast_id)))


def _act(broadcast_id: int, action: str):
    query_args(set())
    broadcast_or_404(broadcast_id)
    bs = services().broadcasts
    fn = {"pause": bs.pause, "resume": bs.resume, "cancel": bs.cancel}[action]
    try:
        fn(broadcast_id, user=token_user().username)
    except SendRefused as exc:
        raise ApiError(409, _sentence(exc.reason), "state", code="wrong_state") from None
    return jsonify(broadcast_json(broadcast_or_404(broadcast_id)))


@bp.post("/broadcasts/<int:broadcast_id>/pause")
def pause_broadcast(broadcast_id: int):
    return _act(broadcast_id, "pause")


@bp.post("/broadcasts/<int:broadcast_id>/resume")
def resume_broadcast(broadcast_id: int):
    return _act(broadcast_id, "resume")


@bp.post("/broadcasts/<int:broadcast_id>/cancel")
def cancel_broadcast(broadcast_id: int):
    return _act(broadcast_id, "cancel")


# -- segments --------------------------------------------------------------------------------


def segment_json(row: Any, *, sample: int = 0) -> dict[str, Any]:
    """A segment with its conditions and how many profiles match now (null when its stored
    conditions cannot be read any more); with ``sample``, the first profiles that match."""
    out: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "match": "all",
        "conditions": [],
        "count": None,
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
    if sample:
        out["sample"] = []
    try:
        d = Definition.from_json(row["definition"])
    except AudienceError:
        return out
    preview = services().store.audiences.preview(d, sample=sample)
    out.update(
        match=d.match,
        conditions=[c.to_json() for c in d.conditions],
        count=preview.count,
    )
    if sample:
        out["sample"] = profiles_json(list(preview.sample))
    return out


def segment_or_404(segment_id: int) -> Any:
    return found(services().store.audiences.segment, segment_id, "segment")


@bp.get("/segments")
def list_segments():
    query_args(set())
    rows = services().store.audiences.segments()
    return jsonify(data=[segment_json(r) for r in rows])


@bp.get("/segments/<int:segment_id>")
def get_segment(segment_id: int):
    query_args(set())
    return jsonify(segment_json(segment_or_404(segment_id), sample=SAMPLE))


def _condition(raw: Any, at: str) -> Condition:
    """One condition of a segment: ``"school = Lincoln"`` or ``{"field", "op", "value"}``."""
    if isinstance(raw, str):
        return parse_condition(raw)
    if isinstance(raw, dict) and set(raw) <= {"field", "op", "value"}:
        parts = [raw.get(k, "") for k in ("field", "op", "value")]
        if all(isinstance(p, str) for p in parts):
            return checked(Condition(parts[0].strip(), parts[1].strip().lower(), parts[2].strip()))
    raise AudienceError(
        "conditions",
        f'{at} must be a text such as "school = Lincoln" or an object '
        '{"field": "school", "op": "=", "value": "Lincoln"}',
    )


def _segment_body(data: dict[str, Any], old: Any = None) -> tuple[str, Definition]:
    """The name and definition of a create (every field) or a change (``old``: the fields
    not given stay as they are); 422 naming the field or the condition at fault."""
    only_fields(data, SEGMENT_FIELDS)
    before = Definition.from_json(old["definition"]) if old is not None else Definition()
    name = _string(data, "name", required=old is None)
    name = (old["name"] if name is None and old is not None else name or "").strip()
    if not name:
        raise ApiError(422, "name is required: what to call the segment.", "name")
    match = data.get("match", before.match)
    if match not in ("all", "any"):
        raise ApiError(422, "match must be all (every condition) or any (one of them).", "match")
    if "conditions" not in data and old is not None:
        return name, Definition(before.conditions, match)
    raw = data.get("conditions")
    if not isinstance(raw, list):
        raise ApiError(
            422,
            'conditions must be a list such as ["school = Lincoln", "grade in 3,4,5"] '
            "(an empty list matches every profile).",
            "conditions",
        )
    if len(raw) > MAX_CONDITIONS:
        raise ApiError(422, f"At most {MAX_CONDITIONS} conditions.", "conditions")
    conds = []
    for i, item in enumerate(raw):
        at = f"conditions[{i}]"
        try:
            conds.append(_condition(item, at))
        except AudienceError as exc:
            raise ApiError(422, f"{at}: {_sentence(str(exc))}", at) from None
    return name, Definition(tuple(conds), match)


def _save_segment(name: str, d: Definition, segment_id: int | None = None) -> int:
    """Save it; 409 when another segment has the name (compared without case)."""
    store = services().store
    user = token_user().username
    existing = store.audiences.segment_named(name)
    if existing is not None and existing["id"] != segment_id:
        raise ApiError(
            409,
            f"A segment named {existing['name']!r} already exists (id {existing['id']}); "
            "choose another name.",
            "name",
            code="duplicate",
        )
    try:
        sid = store.audiences.save_segment(name, d, segment_id=segment_id, user=user)
    except AudienceError as exc:  # the name was taken in between
        status = 409 if store.audiences.segment_named(name) is not None else 422
        raise ApiError(status, _sentence(str(exc)), exc.field) from None
    store.audit.add("segment.save", actor=user, id=sid, name=name)
    return sid


@bp.post("/segments")
def create_segment():
    name, definition = _segment_body(json_object())
    sid = _save_segment(name, definition)
    return jsonify(segment_json(segment_or_404(sid), sample=SAMPLE)), 201


@bp.patch("/segments/<int:segment_id>")
def update_segment(segment_id: int):
    old = segment_or_404(segment_id)
    try:
        name, definition = _segment_body(json_object(), old)
    except AudienceError:  # its stored conditions cannot be read: send new ones
        raise ApiError(
            422,
            "This segment's saved conditions cannot be read; send new conditions.",
            "conditions",
        ) from None
    _save_segment(name, definition, segment_id)
    return jsonify(segment_json(segment_or_404(segment_id), sample=SAMPLE))


@bp.delete("/segments/<int:segment_id>")
def delete_segment(segment_id: int):
    query_args(set())
    row = segment_or_404(segment_id)
    body = segment_json(row)
    store = services().store
    store.audiences.delete_segment(segment_id)
    store.audit.add("segment.delete", actor=token_user().username, id=segment_id, name=row["name"])
    return jsonify(body)


# -- lists (read only: they are made in the web app, from a CSV file or the Profiles table) --


@bp.get("/lists")
def list_lists():
    query_args(set())
    return jsonify(
        data=[
            {
                "id": r["id"],
                "name": r["name"],
                "source": r["source"],
                "members": int(r["members"]),
                "created_by": r["created_by"],
                "created_at": r["created_at"],
            }
            for r in services().store.audiences.lists()
        ]
    )


add_broadcast_paths()
