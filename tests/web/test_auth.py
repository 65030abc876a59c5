"""Login, logout, sessions, CSRF and roles on the app's own routes."""

from __future__ import annotations

from .conftest import ADMIN, AGENT, Web, csrf_token


def test_pages_need_a_login(web: Web) -> None:
    anon = web.client(None)
    resp = anon.get("/home")
    assert resp.status_code == 302 and "/login?next=/home" in resp.headers["Location"]
    assert anon.get("/api/anything", headers={"Accept": "application/json"}).status_code in (
        401,
        404,
    )


def test_login_sets_a_hardened_cookie_and_logout_ends_it(web: Web) -> None:
    client = web.app.test_client()
    token = csrf_token(client, "/login")
    resp = client.post(
        "/login", data={"username": "admin", "password": ADMIN[1], "csrf_token": token}
    )
    assert resp.status_code == 302
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/home").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert client.get("/home").status_code == 302


def test_login_without_csrf_token_is_refused(web: Web) -> None:
    client = web.app.test_client()
    resp = client.post("/login", data={"username": "admin", "password": ADMIN[1]})
    assert resp.status_code == 400 and b"reload the page" in resp.data


def test_wrong_password_then_throttled(web: Web) -> None:
    client = web.app.test_client()
    token = csrf_token(client, "/login")
    codes = [
        client.post(
            "/login", data={"username": "admin", "password": "nope", "csrf_token": token}
        ).status_code
        for _ in range(6)
    ]
    assert codes[:4] == [401] * 4 and 429 in codes[4:]
    resp = client.post(
        "/login", data={"username": "admin", "password": ADMIN[1], "csrf_token": token}
    )
    assert resp.status_code == 429 and b"Try again in" in resp.data


def test_open_redirect_after_login_is_refused(web: Web) -> None:
    client = web.app.test_client()
    token = csrf_token(client, "/login")
    resp = client.post(
        "/login?next=//evil.example/x",
        data={"username": "admin", "password": ADMIN[1], "csrf_token": token},
    )
    assert resp.headers["Location"].endswith("/home")


def test_password_change_ends_other_sessions(web: Web) -> None:
    client = web.client(AGENT)
    assert client.get("/home").status_code == 200
    web.store.users.set_password("agent", "a-new-password")
    assert client.get("/home").status_code == 302


def test_agent_does_not_see_settings_in_the_pane(web: Web) -> None:
    html = web.client(AGENT).get("/home").get_data(as_text=True)
    assert "Settings" not in html
    assert "Settings" in web.client(ADMIN).get("/home").get_data(as_text=True)


def test_security_headers(web: Web) -> None:
    resp = web.client().get("/home")
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"
