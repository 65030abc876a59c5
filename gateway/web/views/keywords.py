"""Settings › Keywords (admins only): each short code's keywords, what texting one does (reply,
subscription under a campaign, double opt-in, questions that fill profile fields), how many
people started, are on and finished its path; add and remove. Thin views over
:class:`gateway.messaging.optin.KeywordBook`, which checks and records every change (audit
log)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from ...messaging.optin import (
    DEFAULT_LIMIT_MINUTES,
    MAX_QUESTIONS,
    KeywordInvalid,
    KeywordNotFound,
    Question,
    keyword_json,
)
from ..auth import admin_required
from ..context import services
from ..helpers import whole_number

bp = Blueprint("keywords", __name__)

QUESTION_ROWS = 3  # blank question rows the form offers (the CLI takes up to MAX_QUESTIONS)


@bp.before_request
@admin_required
def _admins_only() -> None:
    """Keywords change what the gateway answers on its own: admins only (agents get 403)."""


def _blank_form() -> dict[str, Any]:
    ctx = services()
    return {
        "short_code": ctx.config.short_codes[0].code if ctx.config.short_codes else "",
        "word": "",
        "reply": "",
        "campaign": "",
        "double_opt_in": False,
        "confirm_prompt": "",
        "time_limit_minutes": str(DEFAULT_LIMIT_MINUTES),
        "done_reply": "",
        "exit_word": "EXIT",
        "exit_reply": "",
        "questions": [{"field": "", "ask": "", "choices": "", "invalid": ""}] * QUESTION_ROWS,
    }


def _render(form: dict[str, Any], errors: dict[str, str], status: int = 200):
    ctx = services()
    rows = [keyword_json(r) for r in ctx.keywords.live()]
    return render_template(
        "settings/keywords.html",
        keywords=rows,
        short_codes=ctx.config.short_codes,
        form=form,
        errors=errors,
        max_questions=MAX_QUESTIONS,
    ), status


@bp.get("/settings/keywords")
def index():
    return _render(_blank_form(), {})


@bp.post("/settings/keywords")
def add():
    f = request.form
    form = _blank_form()
    for key in ("short_code", "word", "reply", "campaign", "confirm_prompt", "done_reply"):
        form[key] = f.get(key, "")
    form["exit_word"] = f.get("exit_word", "")
    form["exit_reply"] = f.get("exit_reply", "")
    form["time_limit_minutes"] = f.get("time_limit_minutes", "").strip()
    form["double_opt_in"] = f.get("double_opt_in") == "yes"
    form["questions"] = [
        {k: f.get(f"q{n}_{k}", "") for k in ("field", "ask", "choices", "invalid")}
        for n in range(1, QUESTION_ROWS + 1)
    ]
    errors: dict[str, str] = {}
    limit = whole_number(form["time_limit_minutes"], minimum=1)
    if limit is None:
        errors["time_limit_minutes"] = "a whole number of minutes, such as 1440 (a day)"
    questions = [
        Question(
            field=q["field"],
            ask=q["ask"],
            choices=tuple(c for c in q["choices"].split(",")),
            invalid=q["invalid"],
        )
        for q in form["questions"]
        if q["field"].strip() or q["ask"].strip()
    ]
    if not errors:
        try:
            row = services().keywords.add(
                short_code=form["short_code"],
                word=form["word"],
                reply=form["reply"],
                actor=g.user["username"],
                campaign=form["campaign"],
                double_opt_in=form["double_opt_in"],
                confirm_prompt=form["confirm_prompt"],
                time_limit_minutes=limit or DEFAULT_LIMIT_MINUTES,
                questions=questions,
                done_reply=form["done_reply"],
                exit_word=form["exit_word"],
                exit_reply=form["exit_reply"],
            )
        except KeywordInvalid as exc:
            errors = exc.errors
        else:
            flash(f"Keyword {row['word']} added to {row['short_code']}.", "success")
            return redirect(url_for("keywords.index"))
    return _render(form, errors, 400)


@bp.post("/settings/keywords/<int:keyword_id>/remove")
def remove(keyword_id: int):
    try:
        row = services().keywords.remove_id(keyword_id, actor=g.user["username"])
    except KeywordNotFound:
        flash("That keyword was already removed.", "info")
    else:
        flash(
            f"Keyword {row['word']} removed from {row['short_code']}; its open paths were"
            " cancelled.",
            "success",
        )
    return redirect(url_for("keywords.index"))
