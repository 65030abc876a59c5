"""``/api/v1/me`` (who the token acts for) and ``/api/v1/tokens`` (list and revoke API tokens:
one's own; an administrator's token, anyone's). Tokens are created in the web app or with
``gateway token create``, where the secret is shown once."""

from __future__ import annotations

from flask import jsonify, request

from ...store.tokens import token_json
from ..context import services
from .base import ApiError, bp, found, query_args, token_user


@bp.get("/me")
def me():
    query_args(set())
    user = token_user()
    return jsonify(user=user.username, role=user.role, token_id=user.token_id)


@bp.get("/tokens")
def list_tokens():
    query_args({"user"})
    user = token_user()
    wanted = request.args.get("user") or None
    if wanted is None:
        wanted = None if user.is_admin else user.username
    elif wanted != user.username and not user.is_admin:
        raise ApiError(403, "Only an administrator's token can list another user's tokens.", "user")
    rows = services().store.api_tokens.list(wanted)
    return jsonify(data=[token_json(t) for t in rows])


@bp.delete("/tokens/<int:token_id>")
def revoke_token(token_id: int):
    user = token_user()
    store = services().store
    row = found(store.api_tokens.get, token_id, "API token")
    if row["user_id"] != user.user_id and not user.is_admin:
        raise ApiError(403, "Only an administrator's token can revoke another user's token.")
    if store.api_tokens.revoke(token_id, by=user.username):
        store.audit.add(
            "token.revoke", actor=user.username, token_id=token_id, user=row["username"]
        )
    return jsonify(token_json(store.api_tokens.get(token_id)))
