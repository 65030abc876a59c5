"""``/api/v1/profiles``: list and search (keyset pages in id order), create, read, change and
deactivate profiles, and a profile's conversation, by the web app's rules
(:class:`gateway.messaging.profiles.ProfileService`): a number is stored in E.164, one number
is one profile, custom fields are names with text values; subscription changes are recorded
in the opt history as by hand. There is no deleting a profile in the gateway: its messages and
opt history are kept, so ``DELETE`` deactivates it (no text goes to it) as the web app's
"Deactivate" does, and ``PATCH {"status": "active"}`` brings it back.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from ...messaging.profiles import STATUSES, ProfileInvalid
from ...messaging.subscriptions import OptSource
from ...phone import PhoneNumberError, normalize
from ...store.profiles import custom_fields
from ..context import services
from .base import (
    ApiError,
    bp,
    choice_arg,
    cursor_arg,
    found,
    json_object,
    limit_arg,
    only_fields,
    query_args,
    token_user,
)
from .shapes import messages_json, profile_json, profiles_json

FIELDS = {"name", "phone", "status", "subscribed", "custom"}
MAX_QUERY = 200


def profile_or_404(profile_id: int):
    return found(services().store.profiles.get, profile_id, "profile")


def _checked_types(data: dict[str, Any]) -> None:
    """422 for a field of the wrong JSON type (the service checks the values)."""
    for name in ("name", "phone", "status"):
        if name in data and not isinstance(data[name], str):
            raise ApiError(422, f"{name} must be a string.", name)
    if "subscribed" in data and not isinstance(data["subscribed"], bool):
        raise ApiError(422, "subscribed must be true or false.", "subscribed")
    if "custom" in data:
        custom = data["custom"]
        if not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values()):
            raise ApiError(
                422,
                'custom must be an object of names and text values, e.g. {"class": "4B"}.',
                "custom",
            )


def _invalid(exc: ProfileInvalid, phone: str, profile_id: int | None = None) -> ApiError:
    """The API's error for a profile the service refused: 409 when the number already has a
    profile of its own, else 422 naming the first field at fault (the message names all)."""
    ctx = services()
    if "phone" in exc.errors:
        try:
            other = ctx.store.profiles.by_phone(normalize(phone, ctx.config.default_region))
        except PhoneNumberError:
            other = None
        if other is not None and other["id"] != profile_id:
            return ApiError(
                409,
                f"A profile with {other['phone']} already exists (id {other['id']}); change "
                "that one, or use another number.",
                "phone",
                code="duplicate",
            )
    field = next(iter(exc.errors))
    text = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
    return ApiError(422, f"The profile was not saved. {text}.", field)


@bp.get("/profiles")
def list_profiles():
    query_args({"q", "status", "cursor", "limit"})
    query = request.args.get("q", "")
    if len(query) > MAX_QUERY:
        raise ApiError(422, f"q is too long ({MAX_QUERY} characters at most).", "q")
    rows = services().store.profiles.after(
        query,
        status=choice_arg("status", STATUSES),
        after=cursor_arg() or 0,
        limit=(limit := limit_arg()) + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify(
        data=profiles_json(rows),
        next=str(rows[-1]["id"]) if more and rows else None,
    )


@bp.post("/profiles")
def create_profile():
    data = json_object()
    only_fields(data, FIELDS)
    _checked_types(data)
    if not data.get("phone"):
        raise ApiError(422, "phone is required: the profile's mobile number.", "phone")
    service = services().profiles
    try:
        fields = service.validate(
            name=data.get("name", ""),
            phone=data["phone"],
            status=data.get("status", "active"),
            subscribed=data.get("subscribed", True),
            custom=data.get("custom", {}),
        )
        pid = service.create(fields, actor=token_user().username)
    except ProfileInvalid as exc:
        raise _invalid(exc, data["phone"]) from None
    return jsonify(profile_json(profile_or_404(pid))), 201


@bp.get("/profiles/<int:profile_id>")
def get_profile(profile_id: int):
    query_args(set())
    return jsonify(profile_json(profile_or_404(profile_id)))


@bp.patch("/profiles/<int:profile_id>")
def update_profile(profile_id: int):
    old = profile_or_404(profile_id)
    data = json_object()
    only_fields(data, FIELDS)
    _checked_types(data)
    ctx = services()
    actor = token_user().username
    phone = data.get("phone", old["phone"])
    try:
        fields = ctx.profiles.validate(
            name=data.get("name", old["name"]),
            phone=phone,
            status=data.get("status", old["status"]),
            subscribed=bool(old["subscribed"]),
            custom=data.get("custom", custom_fields(old)),
            profile_id=profile_id,
        )
        ctx.profiles.update(profile_id, fields, actor=actor)
    except ProfileInvalid as exc:
        raise _invalid(exc, phone, profile_id) from None
    if "subscribed" in data and data["subscribed"] != bool(old["subscribed"]):
        by = OptSource.by_hand(actor)
        if data["subscribed"]:
            ctx.subscriptions.subscribe(profile_id, by)
        else:
            ctx.subscriptions.unsubscribe(profile_id, by)
    return jsonify(profile_json(profile_or_404(profile_id)))


@bp.delete("/profiles/<int:profile_id>")
def deactivate_profile(profile_id: int):
    profile_or_404(profile_id)
    services().profiles.deactivate(profile_id, actor=token_user().username)
    return jsonify(profile_json(profile_or_404(profile_id)))


@bp.get("/profiles/<int:profile_id>/messages")
def profile_messages(profile_id: int):
    query_args({"cursor", "limit"})
    profile_or_404(profile_id)
    limit = limit_arg()
    rows = services().store.messages.conversation_page(
        profile_id, before=cursor_arg(), limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify(
        data=messages_json(rows),
        next=str(rows[-1]["id"]) if more and rows else None,
    )
