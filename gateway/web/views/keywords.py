"""Settings › Keywords (admins only): each short code's keywords, what texting one does (reply,
subscription under a campaign, double opt-in, questions that fill profile fields), how many
people started, are on and finished its path; add and remove. Thin views over
:class:`gateway.messaging.optin.KeywordBook`, which checks and records every change (audit
log)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from ...messaging.optin import (
    DEFAULT_LIMIT_MINUTES,
    MAX_QUESTIONS,
    KeywordInvalid,
    KeywordNotFound,
    Question,
    keyword_json,
    limit_words,
)
from ..auth import admin_required
from ..context import services
from ..helpers import whole_number

bp = Blueprint("keywords", __name__)

QUESTION_ROWS = 3  # blank question rows the form offers (the CLI takes up to MAX_QUESTIONS)
BLANK_QUESTION = {"field": "", "ask": "", "choices": "", "invalid": ""}


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
        "questions": [BLANK_QUESTION] * QUESTION_ROWS,
    }


def _render(
    form: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
    *,
    editing: dict[str, Any] | None = None,
):
    ctx = services()
    rows = [
        {**keyword_json(r), "time_limit": limit_words(int(r["time_limit_minutes"]))}
        for r in ctx.keywords.live()
    ]
    return render_template(
        "settings/keywords.html",
        keywords=rows,
        short_codes=ctx.config.short_codes,
        form=form,
        errors=errors,
        editing=editing,
        max_questions=MAX_QUESTIONS,
    ), status


def _form_of(kw: dict[str, Any]) -> dict[str, Any]:
    """The form filled in with a stored keyword (Edit)."""
    questions = [
        {
            "field": q.get("field", ""),
            "ask": q.get("ask", ""),
            "choices": ", ".join(q.get("choices") or []),
            "invalid": q.get("invalid", ""),
        }
        for q in kw["questions"]
    ]
    rows = max(QUESTION_ROWS, len(questions) + 1)
    return {
        "short_code": kw["short_code"],
        "word": kw["word"],
        "reply": kw["reply"],
        "campaign": kw["campaign"] or "",
        "double_opt_in": kw["double_opt_in"],
        "confirm_prompt": kw["confirm_prompt"],
        "time_limit_minutes": str(kw["time_limit_minutes"]),
        "done_reply": kw["done_reply"],
        "exit_word": kw["exit_word"],
        "exit_reply": kw["exit_reply"],
        "questions": questions + [BLANK_QUESTION] * (rows - len(questions)),
    }


def _posted(rows: int) -> tuple[dict[str, Any], list[Question], int | None, dict[str, str]]:
    """The posted form (to show again), its questions, the time limit and what is wrong with
    the fields only this page reads."""
    f = request.form
    form = _blank_form()
    for key in (
        "short_code",
        "word",
        "reply",
        "campaign",
        "confirm_prompt",
        "done_reply",
        "exit_word",
        "exit_reply",
    ):
        form[key] = f.get(key, "")
    form["time_limit_minutes"] = f.get("time_limit_minutes", "").strip()
    form["double_opt_in"] = f.get("double_opt_in") == "yes"
    form["questions"] = [
        {k: f.get(f"q{n}_{k}", "") for k in ("field", "ask", "choices", "invalid")}
        for n in range(1, rows + 1)
    ]
    errors: dict[str, str] = {}
    limit = whole_number(form["time_limit_minutes"], minimum=1)
    if limit is None:
        errors["time_limit_minutes"] = "a whole number of minutes, such as 1440 (a day)"
    questions = [
        Question(
            field=q["field"],
            ask=q["ask"],
            choices=tuple(q["choices"].split(",")),
            invalid=q["invalid"],
        )
        for q in form["questions"]
        if q["field"].strip() or q["ask"].strip()
    ]
    return form, questions, limit, errors


def _fields(form: dict[str, Any], questions: list[Question], limit: int | None) -> dict[str, Any]:
    return {
        "reply": form["reply"],
        "actor": g.user["username"],
        "campaign": form["campaign"],
        "double_opt_in": form["double_opt_in"],
        "confirm_prompt": form["confirm_prompt"],
        "time_limit_minutes": limit or DEFAULT_LIMIT_MINUTES,
        "questions": questions,
        "done_reply": form["done_reply"],
        "exit_word": form["exit_word"],
        "exit_reply": form["exit_reply"],
    }


@bp.get("/settings/keywords")
def index():
    return _render(_blank_form(), {})


@bp.post("/settings/keywords")
def add():
    form, questions, limit, errors = _posted(QUESTION_ROWS)
    if not errors:
        try:
            row = services().keywords.add(
                short_code=form["short_code"], word=form["word"], **_fields(form, questions, limit)
            )
        except KeywordInvalid as exc:
            errors = exc.errors
        else:
            flash(f"Keyword {row['word']} added to {row['short_code']}.", "success")
            return redirect(url_for("keywords.index"))
    return _render(form, errors, 400)


def _live_or_404(keyword_id: int) -> dict[str, Any]:
    row = services().store.keywords.get(keyword_id)
    if row is None or row["removed_at"] is not None:
        abort(404, description=f"There is no keyword with id {keyword_id}; it may be removed.")
    return keyword_json(row)


@bp.get("/settings/keywords/<int:keyword_id>/edit")
def edit(keyword_id: int):
    kw = _live_or_404(keyword_id)
    return _render(_form_of(kw), {}, editing=kw)


@bp.post("/settings/keywords/<int:keyword_id>/edit")
def save(keyword_id: int):
    kw = _live_or_404(keyword_id)
    rows = whole_number(request.form.get("question_rows", ""), minimum=1) or QUESTION_ROWS
    form, questions, limit, errors = _posted(min(rows, MAX_QUESTIONS))
    form["short_code"], form["word"] = kw["short_code"], kw["word"]
    if not errors:
        try:
            row = services().keywords.update(keyword_id, **_fields(form, questions, limit))
        except KeywordInvalid as exc:
            errors = exc.errors
        except KeywordNotFound:
            abort(404, description="That keyword was removed meanwhile.")
        else:
            flash(f"Keyword {row['word']} of {row['short_code']} saved.", "success")
            return redirect(url_for("keywords.index"))
    return _render(form, errors, 400, editing=kw)


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
