"""Settings: admins only; users (add, password, role, disable) with the last-admin rule and the
audit log; short codes and the configuration shown read-only, without secrets."""

from __future__ import annotations

import dataclasses
import re

import pytest

from gateway.config import parse_config

from .conftest import ADMIN, AGENT, CONFIG, Web, csrf_token


def _uid(web: Web, name: str) -> int:
    return web.store.users.by_name(name)["id"]


def _post(client, url: str, **data: str):
    data.setdefault("csrf_token", csrf_token(client, "/settings"))
    return client.post(url, data=data, follow_redirects=True)


def _audit_actions(web: Web) -> list[str]:
    return [r["action"] for r in web.store.audit.recent()]


def test_routes_need_a_login(web: Web) -> None:
    anon = web.client(None)
    resp = anon.get("/settings")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    uid = _uid(web, "agent")
    for url in (
        "/settings/users",
        f"/settings/users/{uid}/password",
        f"/settings/users/{uid}/role",
        f"/settings/users/{uid}/disabled",
    ):
        resp = anon.post(
            url,
            data={
                "csrf_token": csrf_token(anon, "/login"),
                "username": "x1",
                "password": "long enough",
                "role": "admin",
                "disabled": "1",
            },
        )
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], url
    assert web.store.users.by_name("x1") is None
    assert web.store.users.by_name("agent")["role"] == "agent"


def test_agents_get_403_everywhere(web: Web) -> None:
    client = web.client(AGENT)
    assert client.get("/settings").status_code == 403
    token = csrf_token(client, "/home")
    uid = _uid(web, "admin")
    for url, data in (
        ("/settings/users", {"username": "sneaky", "password": "long enough", "role": "admin"}),
        (f"/settings/users/{_uid(web, 'agent')}/role", {"role": "admin"}),
        (f"/settings/users/{uid}/password", {"password": "taken over!"}),
        (f"/settings/users/{uid}/disabled", {"disabled": "1"}),
    ):
        resp = client.post(url, data={"csrf_token": token, **data})
        assert resp.status_code == 403, url
    assert web.store.users.by_name("sneaky") is None
    assert web.store.users.by_name("agent")["role"] == "agent"
    assert not web.store.users.by_name("admin")["disabled"]
    assert web.store.users.authenticate(*ADMIN) is not None


def test_csrf_is_enforced(web: Web) -> None:
    client = web.client()
    resp = client.post(
        "/settings/users", data={"username": "new1", "password": "long enough", "role": "agent"}
    )
    assert resp.status_code == 400
    resp = client.post(
        f"/settings/users/{_uid(web, 'agent')}/disabled",
        data={"disabled": "1", "csrf_token": "forged"},
    )
    assert resp.status_code == 400
    assert web.store.users.by_name("new1") is None
    assert not web.store.users.by_name("agent")["disabled"]


def test_page_shows_users_short_codes_config_and_audit(web: Web) -> None:
    web.store.audit.add("test.entry", actor="someone", note="<b>bold</b>")
    html = web.client().get("/settings").get_data(as_text=True)
    assert 'data-user="admin"' in html and 'data-user="agent"' in html
    assert "55123 Support" in html and "55999 Alerts" in html
    assert "STOP, UNSUBSCRIBE" in html and "STOPALL, UNSUBSCRIBEALL" in html
    assert "You are unsubscribed from Support" in html  # reply with {name} filled in
    assert "Modem A" in html and "default" in html
    assert "change them there" in html
    assert str(web.config.data_dir) in html and "US" in html
    assert "test.entry" in html and "note: &lt;b&gt;bold&lt;/b&gt;" in html


def test_secrets_are_not_shown(web: Web, tmp_path) -> None:
    config = parse_config(
        CONFIG.format(data_dir=tmp_path).replace(
            'label: "Modem A"}', 'label: "Modem A", pin: "4711"}'
        )
    )
    assert config.modems[0].pin == "4711"
    web.use(dataclasses.replace(config, source=tmp_path / "gateway.yaml"))
    html = web.client().get("/settings").get_data(as_text=True)
    # Timestamps' microseconds may hold any four digits ("14:52:17.471114" did, once in 60).
    assert "4711" not in re.sub(r'datetime="[^"]*"', "", html)
    assert web.app.config["SECRET_KEY"] not in html
    assert "secret_key" not in html
    assert str(tmp_path / "gateway.yaml") in html


def test_add_user(web: Web) -> None:
    resp = _post(
        web.client(),
        "/settings/users",
        username="carol",
        password="carol-password",
        role="agent",
    )
    assert b"User carol added as agent." in resp.data
    assert web.store.users.authenticate("carol", "carol-password")["role"] == "agent"
    entry = web.store.audit.recent(1)[0]
    assert entry["action"] == "user.add" and entry["actor"] == "admin"
    assert "carol-password" not in entry["detail"]


@pytest.mark.parametrize(
    ("username", "password", "role", "message"),
    [
        ("bad name", "long enough", "agent", "Username: 1-64 printable characters"),
        ("", "long enough", "agent", "Username: 1-64 printable characters"),
        ("x" * 65, "long enough", "agent", "Username: 1-64 printable characters"),
        ("dave", "short", "agent", "Password: at least 8 characters"),
        ("dave", "long enough", "root", "Role: must be one of admin, agent"),
        ("agent", "long enough", "agent", "Username: &#39;agent&#39; already exists"),
    ],
)
def test_add_user_bad_input_changes_nothing(
    web: Web, username: str, password: str, role: str, message: str
) -> None:
    client = web.client()
    before = [(u["username"], u["role"], u["password_hash"]) for u in web.store.users.all()]
    audit_before = _audit_actions(web)
    resp = _post(client, "/settings/users", username=username, password=password, role=role)
    assert resp.status_code == 200
    assert message in resp.get_data(as_text=True)
    after = [(u["username"], u["role"], u["password_hash"]) for u in web.store.users.all()]
    assert after == before
    assert _audit_actions(web) == audit_before


def test_change_password_of_another_user(web: Web) -> None:
    agent = web.client(AGENT)
    assert agent.get("/home").status_code == 200
    resp = _post(
        web.client(), f"/settings/users/{_uid(web, 'agent')}/password", password="n3w-pass"
    )
    assert b"Password of agent changed" in resp.data
    assert web.store.users.authenticate("agent", "n3w-pass") is not None
    assert agent.get("/home").status_code == 302  # their session ended
    assert web.store.audit.recent(1)[0]["action"] == "user.password"


def test_change_own_password_keeps_this_session(web: Web) -> None:
    client = web.client()
    resp = _post(client, f"/settings/users/{_uid(web, 'admin')}/password", password="fresh-pass")
    assert b"Password of admin changed" in resp.data
    assert client.get("/settings").status_code == 200
    assert web.store.users.authenticate("admin", "fresh-pass") is not None


def test_short_password_is_refused(web: Web) -> None:
    resp = _post(web.client(), f"/settings/users/{_uid(web, 'agent')}/password", password="abc")
    assert b"Password: at least 8 characters" in resp.data
    assert web.store.users.authenticate(*AGENT) is not None


def test_unknown_user_is_404(web: Web) -> None:
    client = web.client()
    token = csrf_token(client, "/settings")
    for action, data in (("password", {"password": "long enough"}), ("role", {"role": "admin"})):
        resp = client.post(f"/settings/users/999/{action}", data={"csrf_token": token, **data})
        assert resp.status_code == 404 and b"There is no user 999" in resp.data


def test_change_role_and_disable_enable(web: Web) -> None:
    client = web.client()
    uid = _uid(web, "agent")
    assert b"agent is now admin." in _post(client, f"/settings/users/{uid}/role", role="admin").data
    assert web.store.users.by_name("agent")["role"] == "admin"
    resp = _post(client, f"/settings/users/{uid}/disabled", disabled="1")
    assert b"agent is disabled." in resp.data
    assert web.store.users.authenticate(*AGENT) is None
    resp = _post(client, f"/settings/users/{uid}/disabled", disabled="0")
    assert b"agent is enabled." in resp.data
    assert web.store.users.authenticate(*AGENT) is not None
    assert _audit_actions(web)[:3] == ["user.enable", "user.disable", "user.role"]


def test_bad_role_and_bad_disabled_value(web: Web) -> None:
    client = web.client()
    uid = _uid(web, "agent")
    resp = _post(client, f"/settings/users/{uid}/role", role="owner")
    assert b"Role: must be one of admin, agent" in resp.data
    resp = _post(client, f"/settings/users/{uid}/disabled", disabled="yes")
    assert b"The disabled field must be 0 (enable) or 1 (disable)." in resp.data
    row = web.store.users.by_name("agent")
    assert row["role"] == "agent" and not row["disabled"]


def test_the_last_admin_cannot_step_down(web: Web) -> None:
    client = web.client()
    uid = _uid(web, "admin")
    resp = _post(client, f"/settings/users/{uid}/role", role="agent")
    assert b"The user admin is the only enabled administrator" in resp.data
    resp = _post(client, f"/settings/users/{uid}/disabled", disabled="1")
    assert b"The user admin is the only enabled administrator" in resp.data
    row = web.store.users.by_name("admin")
    assert row["role"] == "admin" and not row["disabled"]
    assert "user.role" not in _audit_actions(web)


def test_an_admin_may_step_down_when_another_remains(web: Web) -> None:
    web.store.users.add("second", "second-admin", role="admin")
    client = web.client()
    resp = _post(client, f"/settings/users/{_uid(web, 'admin')}/role", role="agent")
    assert b"admin is now agent." in resp.data
    assert client.get("/settings").status_code == 403  # no longer an admin


def test_a_disabled_admin_does_not_count(web: Web) -> None:
    web.store.users.add("second", "second-admin", role="admin")
    web.store.users.set_disabled("second", True)
    resp = _post(web.client(), f"/settings/users/{_uid(web, 'admin')}/disabled", disabled="1")
    assert b"only enabled administrator" in resp.data
    assert not web.store.users.by_name("admin")["disabled"]
