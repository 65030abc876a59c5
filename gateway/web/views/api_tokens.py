"""API tokens and the API reference, for every logged-in user: create a token (shown once),
see one's tokens and revoke them; an administrator does the same for any user. The reference
page renders the OpenAPI document of ``/api/v1`` on the server (no script, no outside
host)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup, escape

from ... import __version__
from ...store import TokenError
from ..api.openapi import document
from ..context import services
from ..helpers import shown_time

bp = Blueprint("api_tokens", __name__)

_TICKS = re.compile(r"`([^`]+)`")


@bp.app_template_filter("ticks")
def ticks(text: str | None) -> Markup:
    """The document's text with its `code` spans as <code> (everything else escaped)."""
    return Markup(_TICKS.sub(r"<code>\1</code>", str(escape(text or ""))))


def _is_admin() -> bool:
    return g.user["role"] == "admin"


def _page(new_token: Any = None, error: str | None = None, label: str = "", status: int = 200):
    ctx = services()
    admin = _is_admin()
    tokens = ctx.store.api_tokens.list(None if admin else g.user["username"])
    # The owner picker of the create form, shown to administrators only.
    users = [u["username"] for u in ctx.store.users.all() if not u["disabled"]] if admin else []
    return render_template(
        "api_tokens/index.html",
        tokens=tokens,
        users=users,
        new_token=new_token,
        error=error,
        label=label,
        is_admin=admin,
        shown_time=shown_time,
        rate=ctx.config.api,
    ), status


@bp.get("/api-tokens")
def index():
    return _page()


@bp.post("/api-tokens")
def create():
    ctx = services()
    label = request.form.get("label", "")
    owner = request.form.get("user") or g.user["username"]
    if owner != g.user["username"] and not _is_admin():
        abort(403, description="Only an administrator can make a token for another user.")
    try:
        token = ctx.store.api_tokens.create(owner, label, by=g.user["username"])
    except TokenError as exc:
        return _page(error=str(exc), label=label, status=400)
    ctx.store.audit.add(
        "token.create",
        actor=g.user["username"],
        ip=request.remote_addr,
        token_id=token.id,
        user=owner,
    )
    # Shown on this answer only (never put in the session or a redirect): it is not stored.
    return _page(new_token=token)


@bp.post("/api-tokens/<int:token_id>/revoke")
def revoke(token_id: int):
    ctx = services()
    row = ctx.store.api_tokens.get(token_id)
    if row is None:
        abort(404, description=f"There is no API token {token_id}.")
    if row["user_id"] != g.user["id"] and not _is_admin():
        abort(403, description="Only an administrator can revoke another user's token.")
    if ctx.store.api_tokens.revoke(token_id, by=g.user["username"]):
        ctx.store.audit.add(
            "token.revoke",
            actor=g.user["username"],
            ip=request.remote_addr,
            token_id=token_id,
            user=row["username"],
        )
        flash(f"Token {token_id} ({row['label'] or 'no label'}) revoked.", "success")
    else:
        flash(f"Token {token_id} was already revoked.", "success")
    return redirect(url_for("api_tokens.index"))


@bp.get("/api-tokens/reference")
def reference():
    doc = document(__version__)
    operations = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            operations.append({"path": path, "method": method.upper(), **op})
    return render_template(
        "api_tokens/reference.html",
        doc=doc,
        operations=operations,
        schemas=doc["components"]["schemas"],
        responses=doc["components"]["responses"],
    )
