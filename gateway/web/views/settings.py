"""Settings (admins only): users and their roles, the short codes and the configuration in
force (read-only: they change in the configuration file), and the audit log. Every change made
here is written to the audit log."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ...config.errors import ConfigIssue
from ...store import UserError
from ...store.users import ROLES
from ..auth import admin_required, log_in
from ..context import app_state, services
from ..helpers import sentence, shown_time

bp = Blueprint("settings", __name__)

MIN_PASSWORD = 8
MAX_PASSWORD = 256


class LastAdminError(UserError):
    """The change would leave the gateway without an enabled administrator."""


@bp.before_request
@admin_required
def _admins_only() -> None:
    """Every route here is for admins: agents get 403 (anonymous users were sent to log in)."""


# -- reading -----------------------------------------------------------------------------------


def _modem_states(ctx) -> dict[str, str]:
    if ctx.manager is None:
        return {}
    return {s.modem_id: s.state for s in ctx.manager.statuses()}


def short_code_views(ctx) -> list[dict[str, Any]]:
    """The configured short codes with each pool modem's state and the keyword replies."""
    states = _modem_states(ctx)
    views = []
    for sc in ctx.config.short_codes:
        pool = []
        for mid in sc.modems:
            try:
                label = ctx.config.modem(mid).label
            except KeyError:
                label = None
            pool.append({"id": mid, "label": label, "state": states.get(mid, "unknown")})
        keywords = []
        for kind, title in (
            ("opt_out", "Opt out"),
            ("opt_out_all", "Opt out of all short codes"),
            ("opt_in", "Opt in"),
            ("help", "Help"),
            ("oops", "Undo opt out"),
        ):
            keywords.append(
                {
                    "title": title,
                    "words": getattr(sc.keywords, kind),
                    "reply": sc.reply(kind),  # type: ignore[arg-type]
                }
            )
        views.append(
            {
                "code": sc.code,
                "name": sc.name,
                "default_modem": sc.default_modem,
                "pool": pool,
                "keywords": keywords,
            }
        )
    return views


def config_summary(config) -> list[tuple[str, list[tuple[str, str]]]]:
    """(section, [(setting, value)]) of the configuration in force. Secrets are left out: SIM
    PINs (only whether one is set) and the session key (not even its file)."""

    def hours(value: float | None) -> str:
        return "—" if value is None else f"{value:g}"

    web = config.web
    msgs = config.messages
    ret = config.retention
    mgr = config.modem_manager
    sections: list[tuple[str, list[tuple[str, str]]]] = [
        (
            "General",
            [
                ("Configuration file", str(config.source) if config.source else "(none)"),
                ("Data directory", str(config.data_dir)),
                ("Default region", config.default_region),
                ("Timezone", config.timezone),
            ],
        ),
        (
            "Web",
            [
                ("Listens on", f"{web.bind}:{web.port}"),
                ("HTTPS", "yes" if web.https else "no"),
                ("Session length (hours)", str(web.session_hours)),
                (
                    "Session ends when idle for (minutes)",
                    str(web.session_idle_minutes) if web.session_idle_minutes else "never",
                ),
                (
                    "API requests per token (a minute, at once)",
                    f"{config.api.rate_per_minute or 'no limit'}, {config.api.burst}",
                ),
            ],
        ),
        (
            "Messages",
            [
                ("Most parts per message", str(msgs.max_parts)),
                ("Expiry (hours)", hours(msgs.expiry_hours)),
                ("First retry after (seconds)", hours(msgs.retry_initial_seconds)),
                ("Longest retry wait (seconds)", hours(msgs.retry_max_seconds)),
                ("Reassembly timeout (minutes)", hours(msgs.reassembly_timeout_minutes)),
                ("16-bit concatenation references", "yes" if msgs.ref16 else "no"),
                (
                    "Validity period (minutes)",
                    "network default"
                    if msgs.validity_minutes is None
                    else str(msgs.validity_minutes),
                ),
                ("Sticky modem grace (minutes)", hours(config.routing.sticky_grace_minutes)),
            ],
        ),
        (
            "Retention",
            [
                (
                    "Messages kept (days)",
                    "forever" if ret.messages_days is None else str(ret.messages_days),
                ),
                ("Raw PDUs kept (days)", str(ret.raw_pdus_days)),
                ("Nightly backups kept", str(ret.nightly_backups)),
                ("Backup time", ret.backup_time.strftime("%H:%M")),
            ],
        ),
        (
            "Modem manager",
            [
                ("Ports scanned", ", ".join(mgr.scan) or "(none)"),
                ("Heartbeat (seconds)", hours(mgr.heartbeat_seconds)),
                ("Storage sweep (seconds)", hours(mgr.sweep_seconds)),
                ("Longest reconnect wait (seconds)", hours(mgr.reconnect_max_seconds)),
            ],
        ),
        (
            "Agent View",
            [
                ("Urgent words", ", ".join(config.agent.urgent_words) or "(none)"),
                ("Canned responses", str(len(config.agent.canned_responses))),
            ],
        ),
        (
            "Webhooks and metrics",
            [
                (
                    "Webhook timeouts (seconds)",
                    f"connect {hours(config.webhook_delivery.connect_timeout_seconds)},"
                    f" read {hours(config.webhook_delivery.read_timeout_seconds)}",
                ),
                (
                    "Webhook retries",
                    f"{hours(config.webhook_delivery.retry_initial_seconds)} s doubling to"
                    f" {hours(config.webhook_delivery.retry_max_seconds)} s; dead letter after"
                    f" {config.webhook_delivery.max_attempts} attempts or"
                    f" {hours(config.webhook_delivery.max_age_hours)} hours",
                ),
                ("Webhook backlog cap", str(config.webhook_delivery.max_pending)),
                (
                    "/metrics",
                    ("API token" + (" or loopback" if config.metrics.allow_loopback else ""))
                    if config.metrics.enabled
                    else "off",
                ),
            ],
        ),
        (
            "Simulator",
            [
                (
                    "Running",
                    f"yes, {len(config.simulator.modems)} modem(s) and "
                    f"{len(config.simulator.handsets)} handset(s)"
                    if config.simulator
                    else "no",
                )
            ],
        ),
    ]
    return sections


def issue_view(issue: ConfigIssue) -> dict[str, str]:
    """A configuration warning as the page shows it: where (file, line, key) and the problem as
    a sentence (the checks word problems to follow "key: ", in lower case and without a stop)."""
    where = issue.file if issue.line is None else f"{issue.file} line {issue.line}"
    where = f"{where}, {issue.key}" if issue.key else where
    return {"where": where, "text": sentence(issue.problem)}


def modem_settings(config) -> list[dict[str, str]]:
    """Each configured modem's settings, without its SIM PIN."""
    rows = []
    for m in config.modems:
        limit = []
        if m.rate_limit.per_minute is not None:
            limit.append(f"{m.rate_limit.per_minute}/minute")
        if m.rate_limit.per_day is not None:
            limit.append(f"{m.rate_limit.per_day}/day")
        quiet = (
            f"{m.quiet_hours.start.strftime('%H:%M')}–{m.quiet_hours.end.strftime('%H:%M')}"
            if m.quiet_hours
            else "none"
        )
        rows.append(
            {
                "id": m.id,
                "label": m.label or "",
                "match": (
                    f"IMEI {m.imei}"
                    if m.imei
                    else f"ICCID {m.iccid}"
                    if m.iccid
                    else f"port {m.port}"
                ),
                "port": m.port or "found by scanning",
                "serial": f"{m.baudrate} baud{', RTS/CTS' if m.rtscts else ''}",
                "rate_limit": ", ".join(limit) or "none",
                "quiet_hours": quiet,
                "status_reports": "yes" if m.status_reports else "no",
                "pin": "set" if m.pin else "none",
            }
        )
    return rows


def audit_rows(store, limit: int = 200) -> list[dict[str, Any]]:
    """The latest audit entries with their detail as "key: value" text."""
    rows = []
    for r in store.audit.recent(limit):
        try:
            detail = json.loads(r["detail"] or "{}")
        except json.JSONDecodeError:
            detail = {"detail": r["detail"]}
        text = (
            ", ".join(f"{k}: {v}" for k, v in detail.items())
            if isinstance(detail, dict)
            else str(detail)
        )
        rows.append({"at": r["at"], "actor": r["actor"], "action": r["action"], "detail": text})
    return rows


@bp.route("/settings")
def index():
    ctx = services()
    return render_template(
        "settings/index.html",
        users=ctx.store.users.all(),
        roles=ROLES,
        short_codes=short_code_views(ctx),
        summary=config_summary(ctx.config),
        modems=modem_settings(ctx.config),
        warnings=[issue_view(w) for w in ctx.config.warnings],
        audit=audit_rows(ctx.store),
        config_file=str(ctx.config.source) if ctx.config.source else None,
        min_password=MIN_PASSWORD,
        shown_time=shown_time,
    )


# -- changing users ---------------------------------------------------------------------------


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"password: at most {MAX_PASSWORD} characters")


def _enabled_admins(store) -> list[str]:
    return [u["username"] for u in store.users.all() if u["role"] == "admin" and not u["disabled"]]


def _keep_an_admin(store, username: str) -> None:
    """Refuse a change that takes ``username`` out of the enabled admins when no other is left
    (called inside the change's transaction, so two admins cannot both step down at once)."""
    if _enabled_admins(store) == [username]:
        raise LastAdminError(
            f"The user {username} is the only enabled administrator; make another user an"
            " administrator first."
        )


def _target(user_id: int):
    user = services().store.users.get(user_id)
    if user is None:
        abort(404, description=f"There is no user {user_id}.")
    return user


def _apply(change: Callable[[], str], action: str, **detail: Any):
    """Run ``change`` (which returns the message to show); on UserError show it and change
    nothing; on success write the audit entry. Redirects back to the users section."""
    ctx = services()
    try:
        with ctx.store.db.tx():
            message = change()
            ctx.store.audit.add(action, actor=g.user["username"], ip=request.remote_addr, **detail)
    except UserError as exc:
        flash(sentence(str(exc)), "error")
        return redirect(url_for("settings.index", _anchor="users"))
    flash(message, "success")
    return redirect(url_for("settings.index", _anchor="users"))


@bp.route("/settings/users", methods=["POST"])
def add_user():
    store = services().store
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    role = request.form.get("role") or ""

    def change() -> str:
        _check_password(password)
        store.users.add(username, password, role)
        return f"User {username} added as {role}."

    return _apply(change, "user.add", user=username, role=role)


@bp.route("/settings/users/<int:user_id>/password", methods=["POST"])
def set_password(user_id: int):
    store = services().store
    user = _target(user_id)
    password = request.form.get("password") or ""
    confirm = request.form.get("confirm")

    def change() -> str:
        _check_password(password)
        if confirm is not None and confirm != password:
            raise UserError("password: the two entries differ")
        store.users.set_password(user["username"], password)
        return f"Password of {user['username']} changed; their other sessions have ended."

    response = _apply(change, "user.password", user=user["username"])
    if (
        user_id == g.user["id"]
        and services().store.users.resume_session(session.get("sid"), app_state().policy) is None
    ):
        # Changing your own password ends every session, but this browser stays logged in
        # with a new one.
        fresh = store.users.get(user_id)
        if fresh is not None and not fresh["disabled"]:
            log_in(fresh)
    return response


@bp.route("/settings/users/<int:user_id>/role", methods=["POST"])
def set_role(user_id: int):
    store = services().store
    user = _target(user_id)
    role = request.form.get("role") or ""

    def change() -> str:
        if role != "admin" and user["role"] == "admin":
            _keep_an_admin(store, user["username"])
        store.users.set_role(user["username"], role)
        return f"{user['username']} is now {role}."

    return _apply(change, "user.role", user=user["username"], role=role, was=user["role"])


@bp.route("/settings/users/<int:user_id>/disabled", methods=["POST"])
def set_disabled(user_id: int):
    store = services().store
    user = _target(user_id)
    value = request.form.get("disabled")
    if value not in ("0", "1"):
        flash("The disabled field must be 0 (enable) or 1 (disable).", "error")
        return redirect(url_for("settings.index", _anchor="users"))
    disabled = value == "1"

    def change() -> str:
        if disabled:
            _keep_an_admin(store, user["username"])
        store.users.set_disabled(user["username"], disabled)
        return f"{user['username']} is {'disabled' if disabled else 'enabled'}."

    return _apply(change, "user.disable" if disabled else "user.enable", user=user["username"])
