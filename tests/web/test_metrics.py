"""/metrics: who may read it (metrics_access), and the figures after known traffic, read with
prometheus_client's own parser."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import MetricsConfig
from gateway.messaging.failures import Blame
from gateway.modem.manager import ModemStatus
from gateway.modem.urc import Registration, signal_from_rssi
from gateway.store.states import AgentState, MessageStatus
from gateway.store.times import iso, now
from gateway.web.views import metrics as metrics_view

from .conftest import Web


class Manager:
    def __init__(self, statuses: list[ModemStatus]) -> None:
        self._statuses = statuses

    def statuses(self) -> list[ModemStatus]:
        return list(self._statuses)


class Link:
    def __init__(self) -> None:
        self.sent = threading.Event()

    def send_pdu(self, pdu: str, length: int) -> int:
        self.sent.set()
        return 7


def _serve(web: Web, **metrics: bool) -> None:
    config = dataclasses.replace(web.config, metrics=MetricsConfig(**metrics))
    manager = Manager(
        [
            ModemStatus(
                "a",
                state="up",
                signal=signal_from_rssi(20),
                registration=Registration("CS", 1),
            ),
            ModemStatus("b", state="down"),
        ]
    )
    web.use(config, manager=manager)


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_only_loopback_when_allowed_or_a_token(web: Web) -> None:
    _serve(web)  # defaults: enabled, loopback not allowed
    anon = web.app.test_client()
    resp = anon.get("/metrics")
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "allow_loopback" in resp.get_data(as_text=True)
    bad = anon.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "not valid" in bad.get_data(as_text=True)
    # The REST API's one token check: any user's live token may read; a revoked one may not.
    tokens = web.store.api_tokens
    ok = tokens.create(web.store.users.all()[0]["username"], "prometheus")
    auth = {"Authorization": f"Bearer {ok.secret}"}
    assert anon.get("/metrics", headers=auth).status_code == 200
    tokens.revoke(ok.id)
    assert anon.get("/metrics", headers=auth).status_code == 401

    _serve(web, allow_loopback=True)
    anon = web.app.test_client()
    assert anon.get("/metrics").status_code == 200  # the test client comes from 127.0.0.1
    far = anon.get("/metrics", environ_base={"REMOTE_ADDR": "192.168.1.20"})
    assert far.status_code == 401
    assert anon.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200

    _serve(web, enabled=False, allow_loopback=True)
    assert web.app.test_client().get("/metrics").status_code == 404


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("10.0.0.1", False), ("::ffff:10.0.0.1", False), ("", False), ("nonsense", False)],
)  # fmt: skip
def test_is_loopback(address: str, loopback: bool) -> None:
    assert metrics_view.is_loopback(address) is loopback


def test_figures_after_known_traffic(web: Web) -> None:
    _serve(web, allow_loopback=True)
    s = web.services
    hook = s.webhooks.add("55123", "http://127.0.0.1:9/h", ["status"], user="t")
    link = Link()
    s.dispatcher.start()
    try:
        sent = s.outbox.submit("One", to="+12025550101", short_code="55123")
        s.dispatcher.modem_up("a", link)
        assert link.sent.wait(5)
        sub = s.events.subscribe()
        while s.store.messages.get(sent.message_id)["status"] != MessageStatus.SENT:
            assert sub.get(timeout=5) is not None
        sub.close()
        s.dispatcher.modem_down("a")
    finally:
        s.dispatcher.stop()
    part = s.store.messages.parts(sent.message_id)[0]
    s.store.messages.part_report(part["id"], 0, "delivered")
    s.outbox.submit("Two", to="+12025550102", short_code="55999")  # b is down: it waits
    s.outbox.submit("Three", to="+12025550103", short_code="55999")
    profile, _ = s.store.profiles.get_or_create("+12025550104")
    s.store.messages.add_inbound(
        profile_id=profile["id"], phone="+12025550104", short_code="55123", modem_id="a",
        body="hi", encoding=None, parts_total=1, status=MessageStatus.RECEIVED, kind="reply",
        received_at=iso(now()), agent_state=AgentState.OPEN,
    )  # fmt: skip
    s.dispatcher.stats.failed("b", Blame.MODEM, 0.4)

    resp = web.app.test_client().get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    got = _samples(resp.get_data(as_text=True))

    def m(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted(labels.items())))]

    assert m("gateway_messages", direction="out", status="delivered", short_code="55123") == 1
    assert m("gateway_messages", direction="out", status="queued", short_code="55999") == 2
    assert m("gateway_messages", direction="in", status="received", short_code="55123") == 1
    assert m("gateway_queue_depth", short_code="55999") == 2
    assert m("gateway_queue_depth", short_code="55123") == 0
    assert 0 <= m("gateway_queue_oldest_age_seconds") < 60
    assert m("gateway_modem_up", modem="a") == 1 and m("gateway_modem_up", modem="b") == 0
    assert m("gateway_modem_state", modem="b", state="down") == 1
    assert m("gateway_modem_signal_dbm", modem="a") == -73
    assert m("gateway_modem_registered", modem="a", registration="registered, home network") == 1
    assert m("gateway_modem_parts_sent_total", modem="a") == 1
    assert m("gateway_modem_send_errors_total", modem="b", blame="modem") == 1
    assert m("gateway_modem_send_errors_total", modem="a", blame="modem") == 0
    assert m("gateway_modem_messages_sent_total", modem="a") == 1
    assert m("gateway_send_latency_seconds_count", modem="a") == 1
    assert m("gateway_send_latency_seconds_bucket", modem="a", le="+Inf") == 1
    assert m("gateway_send_latency_seconds_bucket", modem="b", le="0.25") == 0
    assert m("gateway_send_latency_seconds_bucket", modem="b", le="0.5") == 1
    assert m("gateway_inbound_reassembly_parts") == 0
    key = {"webhook": str(hook.id), "short_code": "55123"}
    assert m("gateway_webhook_pending", **key) == 2  # sent and delivered, not POSTed yet
    assert m("gateway_webhook_failed_attempts_total", **key) == 0
    assert m("gateway_webhook_oldest_pending_age_seconds", **key) >= 0
    assert ("process_resident_memory_bytes", ()) in got


def test_broadcast_progress(web: Web) -> None:
    """Issue 12: broadcasts by state, and each active broadcast's recipients by outcome."""
    _serve(web, allow_loopback=True)
    s = web.services
    for i in range(3):
        pid = s.store.profiles.add(f"+1202555030{i}", f"Pat{i}", custom={"school": "Lincoln"})
    s.store.profiles.update(pid, subscribed=False)
    bs = s.broadcasts
    audience = bs.audience(conditions=bs.parse_where(["school=Lincoln"]))
    later = bs.create("Hi", short_code="55123", audience=audience, at="2030-01-01T09:00")["id"]
    gone = bs.create("Bye", short_code="55123", audience=audience, at="2030-01-01T09:00")["id"]
    bs.cancel(gone)
    got = _samples(web.app.test_client().get("/metrics").get_data(as_text=True))

    def m(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted(labels.items())))]

    assert m("gateway_broadcasts", state="scheduled") == 1
    assert m("gateway_broadcasts", state="cancelled") == 1
    assert m("gateway_broadcasts", state="done") == 0
    key = {"broadcast": str(later), "short_code": "55123"}
    assert m("gateway_broadcast_recipients", outcome="waiting", **key) == 2
    assert m("gateway_broadcast_recipients", outcome="skipped", **key) == 1
    assert m("gateway_broadcast_recipients", outcome="sent", **key) == 0
    assert not any(k[0] == "gateway_broadcast_recipients" and ("broadcast", str(gone)) in k[1]
                   for k in got)  # fmt: skip
