"""Every error a user sees about a send, a number or the configuration is a sentence in our words:
a capital first, a full stop last, no library's wording ("((1) The string supplied did not seem
to be a phone number.)"). Issue 11: "the message is empty" and the phonenumbers library's text
reached the pages as they were."""

from __future__ import annotations

import html
import re

import pytest

from gateway.config import parse_config
from gateway.config.errors import ConfigIssue
from gateway.messaging import eligibility
from gateway.messaging.outbound import SendRefused
from gateway.messaging.requests import SendRequest
from gateway.modem.pdu import encode_deliver
from gateway.phone import PhoneNumberError, normalize
from gateway.web.views.settings import issue_view

from .conftest import AGENT, CONFIG, Web, csrf_token

LIBRARY_WORDS = ("The string supplied", "did not seem", "((", "NumberParseException")


def assert_sentence(message: str) -> None:
    assert message, "an empty message"
    assert message[0].isupper(), f"does not start with a capital: {message!r}"
    assert message.endswith((".", "?")), f"does not end a sentence: {message!r}"
    for words in LIBRARY_WORDS:
        assert words not in message, f"a library's wording: {message!r}"


@pytest.mark.parametrize(
    "reason", [eligibility.INACTIVE, eligibility.OPTED_OUT, eligibility.NOT_MOBILE]
)
def test_eligibility_reasons(reason: str) -> None:
    assert_sentence(reason)


@pytest.mark.parametrize(
    "typed", ["", "   ", "abc", "call me", "12", "1", "+999 1234567", "+1 " + "5" * 30, "++44"]
)
def test_phone_number_errors(typed: str) -> None:
    with pytest.raises(PhoneNumberError) as err:
        normalize(typed, "US")
    field, _, message = str(err.value).partition(": ")
    assert field == "phone"  # the field prefix callers strip
    assert_sentence(message)


SUBMITS = [
    {"text": "   ", "to": "+15551230001"},
    {"text": "x" * 1600, "to": "+15551230001"},
    {"text": "hi", "to": "abc"},
    {"text": "hi", "to": "12"},
    {"text": "hi", "to": ""},
    {"text": "hi", "to": "+442079460018"},  # a London landline
    {"text": "hi", "to": "+15551230001", "short_code": "nope"},
    {"text": "hi", "profile_id": 999},
    {"text": "a\x01b", "to": "+15551230001"},
    {"text": "hi", "to": "+15551230001", "idempotency_key": " k "},
    {"text": "hi", "to": "+15551230001", "idempotency_key": "k" * 300},
    {"text": "a\ud800b", "to": "+15551230001"},
]


@pytest.mark.parametrize("kwargs", SUBMITS)
def test_send_refusals(web: Web, kwargs: dict) -> None:
    kwargs = dict(kwargs)
    text = kwargs.pop("text")
    with pytest.raises(SendRefused) as err:
        web.outbox.submit(text, **kwargs)
    assert_sentence(err.value.reason)


def test_profile_refusals_and_a_reused_key(web: Web) -> None:
    inactive = web.store.profiles.add("+15551230001", "Ann", status="inactive")
    opted_out = web.store.profiles.add("+15551230002", "Bo", subscribed=False)
    for pid in (inactive, opted_out):
        with pytest.raises(SendRefused) as err:
            web.outbox.submit("hi", profile_id=pid)
        assert_sentence(err.value.reason)
    web.outbox.submit("hi", to="+15551230003", idempotency_key="k1")
    with pytest.raises(SendRefused) as err:
        web.outbox.submit("other", to="+15551230003", idempotency_key="k1")
    assert_sentence(err.value.reason)


@pytest.mark.parametrize(
    "data",
    [[], "text", {"text": "hi", "bogus": 1}, {"to": "+15551230001"}, {"text": 5, "to": "1"}],
)
def test_request_refusals(data) -> None:
    with pytest.raises(SendRefused) as err:
        SendRequest.from_mapping(data)
    assert_sentence(err.value.reason)


def field_errors(page: str) -> list[str]:
    found = re.findall(r'class="(?:field-error|form-error)"[^>]*>(.*?)</', page, re.S)
    return [html.unescape(m).strip() for m in found]


@pytest.mark.parametrize(
    "fields",
    [
        {"text": "   "},
        {"text": "x" * 1600},
        {"text": "y" * 20_000},
        {"short_code": "99999"},
        {"short_code": ""},
        {"text": "a\x01b"},
    ],
)
def test_text_this_profile_errors_on_the_page(web: Web, fields: dict) -> None:
    pid = web.store.profiles.add("+15551230001", "Ann")
    client = web.client(AGENT)
    data = {"text": "Hello", "short_code": "55123", "idempotency_key": "k1", **fields}
    data["csrf_token"] = csrf_token(client, f"/profiles/{pid}/text")
    resp = client.post(f"/profiles/{pid}/text", data=data)
    assert resp.status_code == 400
    shown = field_errors(resp.get_data(as_text=True))
    assert len(shown) == 1, shown  # one message for one problem
    assert_sentence(shown[0])


def test_a_profile_that_cannot_be_texted_is_said_once(web: Web) -> None:
    pid = web.store.profiles.add("+15551230001", "Ann", subscribed=False)
    client = web.client(AGENT)
    page = client.get(f"/profiles/{pid}/text").get_data(as_text=True)
    assert field_errors(page) == [eligibility.OPTED_OUT]
    assert re.search(r"<button [^>]*data-blocked disabled", page)
    data = {"text": "Hello", "short_code": "55123", "idempotency_key": "k1"}
    data["csrf_token"] = csrf_token(client, f"/profiles/{pid}/text")
    resp = client.post(f"/profiles/{pid}/text", data=data)
    assert resp.status_code == 400
    assert field_errors(resp.get_data(as_text=True)) == [eligibility.OPTED_OUT]


def test_api_send_errors(web: Web) -> None:
    pid = web.store.profiles.add("+15551230001", "Ann")
    client = web.client(AGENT)
    token = {"X-CSRFToken": csrf_token(client)}
    for body in ({"text": "  "}, {"text": "x" * 1600}, {"text": 3}, {"text": "hi", "x": 1}):
        resp = client.post(f"/api/profiles/{pid}/messages", json=body, headers=token)
        assert resp.status_code == 400
        assert_sentence(resp.json["error"])


def test_configuration_warnings_on_the_settings_page(web: Web, tmp_path) -> None:
    config = parse_config(CONFIG.format(data_dir=tmp_path) + "web: {bind: 0.0.0.0}\n")
    assert config.warnings, "the test needs a configuration with a warning"
    web.use(config)
    page = web.client().get("/settings").get_data(as_text=True)
    shown = [html.unescape(m) for m in re.findall(r'class="config-warning">(.*?)</span>', page)]
    assert len(shown) == len(config.warnings)
    for message in shown:
        assert_sentence(message)
    view = issue_view(ConfigIssue("gateway.yaml", 3, "modems[0].port", "matched by port only"))
    assert view == {"where": "gateway.yaml line 3, modems[0].port", "text": "Matched by port only."}


@pytest.mark.parametrize(
    "fields",
    [
        {"phone": "12"},
        {"phone": "call me"},
        {"phone": "555 123 0009"},
        {"phone": ""},
        {"status": "deleted"},
        {"name": "a\nb"},
        {"name": "n" * 300},
        {"custom_name": ["phone"], "custom_value": ["1"]},
    ],
)
def test_profile_form_errors(web: Web, fields: dict) -> None:
    web.store.profiles.add("+15551230009", "Existing")
    client = web.client(AGENT)
    data = {"name": "New", "phone": "5551230001", "status": "active", **fields}
    data["csrf_token"] = csrf_token(client, "/profiles/new")
    resp = client.post("/profiles/new", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    under_fields = re.findall(r'class="field-error"[^>]*>(.*?)</', page, re.S)
    assert len(under_fields) == 1, under_fields  # the summary above points at it
    for message in field_errors(page):
        assert_sentence(message)


def test_agent_view_errors(web: Web) -> None:
    got = web.inbound.receive("a", encode_deliver("+15551230001", "hello")[0])
    pid = int(web.store.messages.get(got.message_id)["profile_id"])
    web.store.users.add("agent2", "agent2-password", role="agent")
    first, second = web.client(AGENT), web.client(("agent2", "agent2-password"))
    url = f"/api/agent/profiles/{pid}"
    messages = []
    first.post(f"{url}/claim", json={}, headers={"X-CSRFToken": csrf_token(first)})
    token = {"X-CSRFToken": csrf_token(second)}
    messages.append(second.post(f"{url}/claim", json={}, headers=token).json["error"])
    messages.append(second.post(f"{url}/release", json={}, headers=token).json["error"])
    messages.append(second.get("/api/agent/queue?show=bogus").json["error"])
    other = web.store.profiles.add("+15551230002", "Bo")
    messages.append(
        second.post(f"/api/agent/profiles/{other}/claim", json={}, headers=token).json["error"]
    )
    for message in messages:
        assert_sentence(message)
