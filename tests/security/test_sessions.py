"""Sessions end for good (finding 6): a cookie copied before logging out, a password change or
disabling the user is worth nothing after it; a login idles out; the whole URL map needs a live
session and every state-changing request a CSRF token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from .conftest import ADMIN, AGENT, Web, csrf_token

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
PUBLIC = {"static", "auth.login"}


def copy_of(web: Web, client: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of ``client``'s session cookie."""
    thief = web.app.test_client()
    thief.set_cookie("gateway_session", client.get_cookie("gateway_session").value)
    return thief


def routes(web: Web) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every route of the app, with a sample value for each of
    its arguments."""
    found = []
    for rule in web.app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        values = dict.fromkeys(rule.arguments, 1)  # fits ids and names alike
        url = rule.build(values, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    assert len(found) > 40, "the URL map looks too small to be the whole app"
    # Reading first: a state-changing request let through (logout, say) could end the very
    # session a later check replays.
    return sorted(found, key=lambda r: r[1] in STATE_CHANGING)


def refused_for_want_of_a_session(resp) -> bool:
    if resp.status_code == 401:
        return True
    return resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_every_route_needs_a_live_session_and_logout_ends_copies(web: Web) -> None:
    web.app.config["GATEWAY_SSE_SECONDS"] = 0.1  # a stream that is let through ends at once
    client = web.client(ADMIN)
    token = csrf_token(client)
    copied = copy_of(web, client)
    assert copied.get("/home").status_code == 200  # the copy works while the session lives
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    anonymous = web.app.test_client()
    let_through = []
    for endpoint, method, url in routes(web):
        for who, browser in (("anonymous", anonymous), ("copy from before logout", copied)):
            headers = {"X-CSRFToken": token} if method in STATE_CHANGING else {}
            resp = browser.open(url, method=method, headers=headers)
            resp.close()
            if not refused_for_want_of_a_session(resp) and resp.status_code != 400:
                let_through.append(f"{method} {url} ({endpoint}) as {who}: {resp.status_code}")
    assert not let_through, "\n".join(let_through)


def test_every_state_changing_route_needs_a_csrf_token(web: Web) -> None:
    client = web.client(ADMIN)
    missing = []
    for endpoint, method, url in routes(web):
        if method not in STATE_CHANGING:
            continue
        resp = client.open(url, method=method, headers={"Accept": "application/json"})
        if resp.status_code != 400 or "did not come from this site" not in resp.get_data(True):
            missing.append(f"{method} {url} ({endpoint}): {resp.status_code}")
    assert not missing, "\n".join(missing)
    assert client.get("/home").status_code == 200  # and nothing of it logged us out


def test_password_change_and_disabling_end_copies_of_the_session(web: Web) -> None:
    admin = web.client(ADMIN)
    agent = web.client(AGENT)
    copied = copy_of(web, agent)
    uid = web.store.users.by_name("agent")["id"]
    resp = admin.post(
        f"/settings/users/{uid}/password",
        data={"password": "a-new-password", "csrf_token": csrf_token(admin, "/settings")},
    )
    assert resp.status_code == 302
    assert refused_for_want_of_a_session(agent.get("/home"))
    assert refused_for_want_of_a_session(copied.get("/home"))
    # Logging out ends only that browser's session; another login of the same user goes on.
    second = web.client(("agent", "a-new-password"))
    third = web.client(("agent", "a-new-password"))
    third.post("/logout", data={"csrf_token": csrf_token(third)})
    assert second.get("/home").status_code == 200
    web.store.users.set_disabled("agent", True)
    assert refused_for_want_of_a_session(second.get("/home"))


class Clock:
    """The store's notion of now, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("gateway.store.users.now", clock)
    return clock


def test_a_session_idles_out_but_use_keeps_it(web: Web, clock: Clock) -> None:
    assert web.config.web.session_idle_minutes == 60  # the documented default
    client = web.client(AGENT)
    for _ in range(4):  # used every 40 minutes: still logged in after two hours
        clock.advance(minutes=40)
        assert client.get("/home").status_code == 200
    # An open page's live-update stream reconnecting by itself is not use.
    web.app.config["GATEWAY_SSE_SECONDS"] = 0.05
    for _ in range(3):
        clock.advance(minutes=25)
        client.get("/api/events").close()
    assert refused_for_want_of_a_session(client.get("/home"))


def test_session_limits_in_the_store(web: Web) -> None:
    from gateway.store.users import SessionPolicy

    users = web.store.users
    uid = users.by_name("agent")["id"]
    policy = SessionPolicy(absolute=timedelta(hours=12), idle=timedelta(minutes=60))
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    token = users.start_session(uid, policy, at=t0)
    assert users.resume_session(token, policy, at=t0 + timedelta(minutes=59))["username"] == "agent"
    for step in range(2, 15):  # kept in use every 50 minutes, to 11 h 40 ...
        assert users.resume_session(token, policy, at=t0 + timedelta(minutes=50 * step))
    # ... it still ends 12 hours after the login.
    assert users.resume_session(token, policy, at=t0 + timedelta(hours=12)) is None
    idle = users.start_session(uid, policy, at=t0)
    assert users.resume_session(idle, policy, at=t0 + timedelta(minutes=61)) is None
    ended = users.start_session(uid, policy, at=t0)
    users.end_session(ended)
    assert users.resume_session(ended, policy, at=t0) is None
    assert users.resume_session("not-a-token", policy) is None
    # The store keeps only a hash of the token.
    stored = [r["id_hash"] for r in web.store.db.q("SELECT id_hash FROM sessions")]
    assert token not in stored and all(len(h) == 64 for h in stored)


def test_an_existing_store_gets_the_sessions_table_after_a_backup(tmp_path, monkeypatch) -> None:
    from gateway.store import Store, migrations

    # A store as an installed gateway has it: the schema before sessions were kept.
    with monkeypatch.context() as patched:
        patched.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
        store = Store.open(tmp_path)
        store.users.add("alice", "alice-password", role="admin")
        assert not list(tmp_path.glob("backups/before-migration-*"))  # a new store: no copy
        assert store.db.value("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sessions'") == 0
        store.close()
    store = Store.open(tmp_path)
    try:
        # By number: "11" sorts before "2" as text.
        copies = sorted(
            int(p.name.split("-")[2]) for p in tmp_path.glob("backups/before-migration-*")
        )
        assert copies[0] == 2  # a copy before the sessions table, then before each later step
        uid = store.users.by_name("alice")["id"]
        from gateway.store.users import SessionPolicy

        token = store.users.start_session(uid, SessionPolicy(absolute=timedelta(hours=1)))
        assert store.users.resume_session(token, SessionPolicy(absolute=timedelta(hours=1)))
    finally:
        store.close()
