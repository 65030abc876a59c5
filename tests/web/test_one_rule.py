"""Each rule about a profile has one owner, and every entry point gives its answer (issue 9):

- "change the subscription": the profile page, the Inbox and a keyword text all go through
  messaging/subscriptions.py, so re-subscribing never reactivates an inactive profile, whichever
  button (or START) did it, and Reactivate never re-subscribes;
- "may this profile be texted": the form, the chat API, Outbox.submit, the text page's warning
  and the chat button all ask messaging/eligibility.py and give the same reason.
"""

from __future__ import annotations

import pytest

from gateway.messaging.eligibility import INACTIVE, NOT_MOBILE, OPTED_OUT, why_not_textable
from gateway.messaging.outbound import SendRefused
from gateway.modem.pdu import encode_deliver
from gateway.web.helpers import chat_unavailable_reason

from .conftest import AGENT, Web, csrf_token

PHONE = "+15551230001"


def _by_profile_page(web: Web, pid: int) -> None:
    client = web.client(AGENT)
    token = csrf_token(client, f"/profiles/{pid}")
    assert (
        client.post(f"/profiles/{pid}/resubscribe", data={"csrf_token": token}).status_code == 302
    )


def _by_inbox(web: Web, pid: int) -> None:
    client = web.client(AGENT)
    token = csrf_token(client, "/inbox")
    resp = client.post(f"/inbox/profiles/{pid}/resubscribe", data={"csrf_token": token})
    assert resp.status_code == 302


def _by_keyword(web: Web, pid: int) -> None:
    web.inbound.receive("a", encode_deliver(PHONE, "START")[0])


def _by_profile_page_for_one_short_code(web: Web, pid: int) -> None:
    client = web.client(AGENT)
    token = csrf_token(client, f"/profiles/{pid}")
    resp = client.post(
        f"/profiles/{pid}/resubscribe", data={"csrf_token": token, "short_code": "55123"}
    )
    assert resp.status_code == 302


@pytest.mark.parametrize(
    ("resubscribe", "scope"),
    [
        (_by_profile_page, None),
        (_by_inbox, None),
        (_by_keyword, "55123"),  # START to 55123 (modem a's) subscribes to it alone
        (_by_profile_page_for_one_short_code, "55123"),
    ],
)
def test_every_resubscribe_only_subscribes(web: Web, resubscribe, scope) -> None:
    pid = web.store.profiles.add(PHONE, "Ann", subscribed=False, status="inactive")
    sub = web.events.subscribe()
    resubscribe(web, pid)
    profile = web.store.profiles.get(pid)
    assert (profile["subscribed"], profile["status"]) == (int(scope is None), "inactive")
    assert web.store.subscriptions.subscribed(pid, "55123")
    assert web.store.subscriptions.subscribed(pid, "55999") == (scope is None)
    assert web.store.opt_events.last(pid)["action"] == "opt_in"
    changed = [e for e in iter(lambda: sub.get(timeout=0.2), None) if e.kind == "profile.changed"]
    assert [e.data for e in changed] == [{"id": pid, "subscribed": True, "short_code": scope}]


def _opt_out_on_profile_page(web: Web, pid: int) -> None:
    client = web.client(AGENT)
    token = csrf_token(client, f"/profiles/{pid}")
    assert client.post(f"/profiles/{pid}/opt-out", data={"csrf_token": token}).status_code == 302


def _opt_out_in_inbox(web: Web, pid: int) -> None:
    client = web.client(AGENT)
    token = csrf_token(client, "/inbox")
    assert (
        client.post(f"/inbox/profiles/{pid}/opt-out", data={"csrf_token": token}).status_code == 302
    )


def _opt_out_by_stop(web: Web, pid: int) -> None:
    web.inbound.receive("a", encode_deliver(PHONE, "STOP")[0])


def _opt_out_by_import(web: Web, pid: int) -> None:
    data = f"phone,subscribed\r\n{PHONE},no\r\n".encode()
    report = web.services.profiles.import_csv(data, actor="agent")
    assert report.rows[0].outcome == "updated"


def _opt_out_by_stop_all(web: Web, pid: int) -> None:
    web.inbound.receive("a", encode_deliver(PHONE, "Stop all")[0])


def _opt_out_of_one_on_profile_page(web: Web, pid: int) -> None:
    client = web.client(AGENT)
    token = csrf_token(client, f"/profiles/{pid}")
    resp = client.post(
        f"/profiles/{pid}/opt-out", data={"csrf_token": token, "short_code": "55123"}
    )
    assert resp.status_code == 302


@pytest.mark.parametrize(
    ("opt_out", "scope"),
    [
        (_opt_out_on_profile_page, None),
        (_opt_out_in_inbox, None),
        (_opt_out_by_stop, "55123"),  # STOP to 55123 opts out of it alone
        (_opt_out_by_stop_all, None),
        (_opt_out_by_import, None),  # the import's column is about every short code
        (_opt_out_of_one_on_profile_page, "55123"),
    ],
)
def test_every_opt_out_only_unsubscribes(web: Web, opt_out, scope) -> None:
    pid = web.store.profiles.add(PHONE, "Ann", status="inactive")
    sub = web.events.subscribe()
    opt_out(web, pid)
    profile = web.store.profiles.get(pid)
    assert (profile["subscribed"], profile["status"]) == (int(scope is not None), "inactive")
    assert not web.store.subscriptions.subscribed(pid, "55123")
    assert web.store.subscriptions.subscribed(pid, "55999") == (scope is not None)
    last = web.store.opt_events.last(pid)
    assert (last["action"], bool(last["all_codes"])) == ("opt_out", scope is None)
    changed = [e for e in iter(lambda: sub.get(timeout=0.2), None) if e.kind == "profile.changed"]
    assert [e.data for e in changed] == [{"id": pid, "subscribed": False, "short_code": scope}]


def _activate_on_profile_page(web: Web, pid: int) -> None:
    client = web.client(AGENT)
    token = csrf_token(client, f"/profiles/{pid}")
    assert client.post(f"/profiles/{pid}/activate", data={"csrf_token": token}).status_code == 302


def _activate_in_inbox(web: Web, pid: int) -> None:
    client = web.client(AGENT)
    token = csrf_token(client, "/inbox")
    assert (
        client.post(f"/inbox/profiles/{pid}/activate", data={"csrf_token": token}).status_code
        == 302
    )


@pytest.mark.parametrize("activate", [_activate_on_profile_page, _activate_in_inbox])
def test_every_reactivate_only_activates(web: Web, activate) -> None:
    pid = web.store.profiles.add(PHONE, "Ann", subscribed=False, status="inactive")
    activate(web, pid)
    profile = web.store.profiles.get(pid)
    assert (profile["subscribed"], profile["status"]) == (0, "active")
    assert web.store.opt_events.last(pid) is None
    assert web.store.audit.recent(1)[0]["action"] == "profile.reactivate"


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ({"status": "inactive"}, INACTIVE),
        ({"subscribed": False}, OPTED_OUT),
        ({"phone": "+442079460018"}, NOT_MOBILE),  # a fixed line in London
    ],
)
def test_every_sender_gives_the_same_answer_and_reason(web: Web, setup, reason) -> None:
    web.dispatcher.modem_up("a", object())
    phone = setup.pop("phone", PHONE)
    pid = web.store.profiles.add(phone, "Ann", **setup)
    profile = web.store.profiles.get(pid)
    assert why_not_textable(web.store, profile, "55123") == reason
    assert chat_unavailable_reason(web.services, profile) == reason
    with pytest.raises(SendRefused) as refused:
        web.outbox.submit("hi", profile_id=pid)
    assert refused.value.reason == reason
    client = web.client(AGENT)
    page = client.get(f"/profiles/{pid}/text").get_data(as_text=True)
    assert reason.split(";")[0][1:] in page  # the warning above the form
    form = client.post(
        f"/profiles/{pid}/text",
        data={
            "csrf_token": csrf_token(client, f"/profiles/{pid}"),
            "text": "hi",
            "short_code": "55123",
        },
    )
    assert form.status_code == 400
    token = csrf_token(client, f"/profiles/{pid}")
    api = client.post(
        f"/api/profiles/{pid}/messages", json={"text": "hi"}, headers={"X-CSRFToken": token}
    )
    assert api.status_code == 400 and api.json["error"] == reason
    assert web.store.messages.page().rows == []


def test_a_number_that_cannot_receive_sms_gets_no_profile_from_a_send(web: Web) -> None:
    # It was accepted before and failed at the modem; the chat already said "cannot receive".
    with pytest.raises(SendRefused) as refused:
        web.outbox.submit("hi", to="+442079460018")
    assert refused.value.field == "to" and NOT_MOBILE in refused.value.reason
    assert web.store.profiles.by_phone("+442079460018") is None


def test_the_stop_confirmation_still_goes_to_someone_who_just_opted_out(web: Web) -> None:
    pid = web.store.profiles.add(PHONE, "Ann", subscribed=False)
    profile = web.store.profiles.get(pid)
    assert why_not_textable(web.store, profile, "55123", allow_opted_out=True) is None
    assert web.outbox.submit("bye", profile_id=pid, allow_unsubscribed=True).created


def test_a_number_the_plan_does_not_know_is_tried_not_refused() -> None:
    """The plan data ages: a range it does not know yet may well be a new mobile range, so only
    numbers it calls fixed line (or toll free, premium...) are refused."""
    import phonenumbers

    from gateway.messaging.eligibility import number_refusal

    unknown = "+447000000000"  # a UK personal number: neither mobile nor fixed
    assert phonenumbers.number_type(phonenumbers.parse(unknown)) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE,
    )
    assert number_refusal(unknown) is None
    assert number_refusal("+442079460000") is not None  # a London landline
    assert number_refusal("+447911123456") is None  # a UK mobile
    assert number_refusal("+447700900123") is None  # a range the plan data does not know
    assert number_refusal("BANK") is not None
