"""The outbox's rules with a fake receiver and clock: events recorded only for the webhooks
that want them, backoff, the dead-letter list (attempts, age, backlog cap) and resend, the
configuration file's webhooks, restarts, redirects."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest

from gateway.config.values import WEBHOOK_EVENTS
from gateway.messaging.subscriptions import OptSource
from gateway.messaging.webhooks import Answer, DeliveryFailed, WebhookRefused, sign
from gateway.store.states import AgentState, MessageStatus
from gateway.store.times import iso, now
from gateway.store.webhooks import FAMILIES

from .conftest import Attempts, Receiver, World


class Clock:
    def __init__(self) -> None:
        self.at = now()

    def __call__(self):
        return self.at

    def move(self, **delta: float) -> None:
        self.at += timedelta(**delta)


class Fake:
    """A receiver that answers from a script: an int status, or an exception to raise."""

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, bytes, dict]] = []

    def __call__(self, url: str, body: bytes, headers: dict, **timeouts: float) -> Answer:
        self.calls.append((url, body, headers))
        outcome = self.script.pop(0) if self.script else 200
        if isinstance(outcome, Exception):
            raise outcome
        return Answer(int(outcome))


def _inbound(w: World, code: str = "55123", body: str = "hello") -> int:
    profile, _ = w.store.profiles.get_or_create("+12025550111")
    return w.store.messages.add_inbound(
        profile_id=profile["id"],
        phone="+12025550111",
        short_code=code,
        modem_id="a",
        body=body,
        encoding=None,
        parts_total=1,
        status=MessageStatus.RECEIVED,
        kind="reply",
        received_at=iso(now()),
        agent_state=AgentState.OPEN,
    )


@pytest.fixture
def world(tmp_path):
    clock = Clock()
    w = World(
        tmp_path,
        "webhook_delivery: {retry_initial_seconds: 10, retry_max_seconds: 80,"
        " max_attempts: 3, max_age_hours: 1, max_pending: 5, max_dead: 4}\n",
        clock=clock,
    )
    w.clock = clock
    w.services.webhooks.rng = random.Random(1)
    yield w
    w.close()


def test_the_event_families_of_the_configuration_are_the_stores() -> None:
    assert FAMILIES == WEBHOOK_EVENTS


def test_only_wanted_events_of_the_short_code_are_recorded(world: World) -> None:
    hooks = world.services.webhooks
    inbound_only = hooks.add("55123", "http://127.0.0.1:9/in", ["inbound"], user="t")
    opt_other = hooks.add("55999", "http://127.0.0.1:9/opt", ["opt"], user="t")
    _inbound(world, "55123")
    _inbound(world, "55999")  # nobody wants 55999's inbound
    profile, _ = world.store.profiles.get_or_create("+12025550111")
    # An opt-out by hand has no short code: every webhook that wants opt events hears it.
    world.services.subscriptions.unsubscribe(profile["id"], OptSource.by_hand("admin"))
    # One by keyword at 55123 is 55123's only.
    world.services.subscriptions.subscribe(profile["id"], OptSource.by_keyword("55123", 1))
    got = {
        h.id: [d.type for d in world.store.webhooks.next_pending(h.id)]
        for h in (inbound_only, opt_other)
    }
    assert got == {inbound_only.id: ["message.received"], opt_other.id: ["profile.opted_out"]}


def test_without_webhooks_no_row_is_written(world: World) -> None:
    _inbound(world)
    assert world.store.webhooks.has_pending() is False
    assert world.store.db.value("SELECT COUNT(*) FROM webhook_deliveries") == 0


def test_a_failing_receiver_backs_off_then_dead_letters_then_resend(world: World) -> None:
    hooks = world.services.webhooks
    hook = hooks.add("55123", "http://127.0.0.1:9/x", ["inbound"], user="t")
    hooks.poster = fake = Fake(DeliveryFailed("cannot connect"), 503, 500, 200)
    _inbound(world)
    wait = hooks.run_once()
    assert 5 <= wait <= 10  # the first backoff: 10 s with jitter (x0.5-1)
    assert hooks.run_once() == pytest.approx(wait, abs=0.01)  # not due: no new attempt
    assert len(fake.calls) == 1
    world.clock.move(seconds=wait)
    second = hooks.run_once()
    assert 10 <= second <= 20  # doubled
    world.clock.move(seconds=second)
    assert hooks.run_once() is None  # the third failure: max_attempts, dead, nothing waits
    [dead] = hooks.dead_letters(hook.id)
    assert dead.attempts == 3 and "500" in dead.last_error
    shown = hooks.get(hook.id)
    assert (shown.pending, shown.dead, shown.failed_attempts) == (0, 1, 3)
    # Every attempt carried the same event id and body, freshly signed.
    ids = {h["X-Gateway-Event"] for _, _, h in fake.calls}
    assert ids == {dead.event_id} and len({b for _, b, _ in fake.calls}) == 1
    for _, body, h in fake.calls:
        assert h["X-Gateway-Signature"] == sign(hook.secret, h["X-Gateway-Timestamp"], body)
    assert hooks.resend([dead.id], user="admin") == 1
    assert hooks.run_once() is None
    assert fake.calls[-1][2]["X-Gateway-Event"] == dead.event_id
    assert hooks.dead_letters(hook.id) == [] and hooks.get(hook.id).delivered_count == 1


def test_old_and_excess_deliveries_go_to_dead_letters_and_the_list_is_capped(
    world: World,
) -> None:
    hooks = world.services.webhooks
    hook = hooks.add("55123", "http://127.0.0.1:9/x", ["inbound"], user="t")
    hooks.poster = Fake(*[DeliveryFailed("down")] * 100)
    for i in range(8):
        _inbound(world, body=f"m{i}")
    hooks.run_once()  # max_pending 5: the 3 oldest are dropped to the dead-letter list
    shown = hooks.get(hook.id)
    assert (shown.pending, shown.dead) == (5, 3)
    assert "max_pending" in hooks.dead_letters(hook.id)[0].last_error
    # An hour later (max_age_hours: 1) the rest are too old; the dead list keeps 4 (max_dead).
    # (The age check runs once a minute of the service's clock.)
    world.clock.move(hours=1, seconds=1)
    hooks.run_once()
    shown = hooks.get(hook.id)
    assert (shown.pending, shown.dead, shown.discarded_count) == (0, 4, 4)
    assert [json.loads(d.payload)["text"] for d in hooks.dead_letters(hook.id)] == [
        "m7",
        "m6",
        "m5",
        "m4",
    ]


def test_config_file_webhooks_are_kept_in_step_and_cannot_be_removed_by_hand(tmp_path) -> None:
    hook = (
        '    webhooks: [{url: "https://example.org/h", secret: "0123456789abcdef", '
        "events: [status]}]\n"
    )
    from gateway.config import parse_config
    from gateway.services import build_services

    text = (
        f"data_dir: {tmp_path}\ndefault_region: US\n"
        'modems: [{id: a, imei: "490154203237518"}]\n'
        "short_codes:\n"
        '  - code: "55123"\n    name: Support\n    modems: [a]\n' + hook
    )
    services = build_services(parse_config(text), modems=False)
    try:
        [found] = services.webhooks.all()
        assert (found.source, found.events, found.url) == (
            "config",
            ("status",),
            "https://example.org/h",
        )
        with pytest.raises(WebhookRefused, match="configuration file"):
            services.webhooks.remove(found.id, user="admin")
    finally:
        services.store.close()
    # The file no longer names it: gone at the next start.
    services = build_services(parse_config(text.replace(hook, "")), modems=False)
    try:
        assert services.webhooks.all() == []
    finally:
        services.store.close()


def test_add_refuses_what_is_wrong_with_the_field_named(world: World) -> None:
    hooks = world.services.webhooks
    for args, field in [
        (("99999", "https://a.example/h"), "short_code"),
        (("55123", "ftp://a.example/h"), "url"),
        (("55123", "https://user:pw@a.example/h"), "url"),
        (("55123", "https://a.example/h", ["inbound", "smoke"]), "events"),
    ]:
        with pytest.raises(WebhookRefused) as info:
            hooks.add(*args, user="t")
        assert info.value.field == field
    hooks.add("55123", "https://a.example/h", user="t")
    with pytest.raises(WebhookRefused, match="already has webhook"):
        hooks.add("55123", "https://a.example/h", user="t")


def test_nothing_is_lost_when_the_gateway_stops_and_starts_again(tmp_path) -> None:
    receiver = Receiver()
    try:
        quick = "webhook_delivery: {retry_initial_seconds: 0.05, retry_max_seconds: 0.1}\n"
        w = World(tmp_path, quick)
        hook = w.services.webhooks.add("55123", receiver.url, user="t")
        _inbound(w, body="before the restart")
        w.services.webhooks.start()
        attempts = Attempts()
        w.services.webhooks.poster = attempts
        w.services.webhooks.wake()
        attempts.wait(lambda o: len(o) >= 1)  # refused: the receiver is down
        w.close()
        receiver.set("up")
        again = World(tmp_path, quick)
        try:
            again.services.webhooks.poster = attempts
            again.services.webhooks.start()
            receiver.wait_for(lambda got: len(got) >= 1)
        finally:
            again.close()
        [(headers, body)] = receiver.got
        assert json.loads(body)["data"]["text"] == "before the restart"
        assert headers["X-Gateway-Signature"] == sign(
            hook.secret, headers["X-Gateway-Timestamp"], body
        )
    finally:
        receiver.close()


def test_a_redirect_is_not_followed(world: World, receiver: Receiver) -> None:
    hooks = world.services.webhooks
    hook = hooks.add("55123", receiver.url, ["inbound"], user="t")
    receiver.set("redirect")
    _inbound(world)
    hooks.run_once()
    assert len(receiver.got) == 1  # one POST, to the configured URL only
    shown = hooks.get(hook.id)
    assert shown.pending == 1 and "redirect to http://elsewhere.example/hook" in shown.last_error


def test_a_bus_listener_hears_every_event_and_its_failure_stops_nothing(caplog) -> None:
    from gateway.messaging.events import EventBus

    bus = EventBus()
    heard: list[str] = []

    def broken(event) -> None:
        raise RuntimeError("listener bug")

    stop = bus.listen(lambda e: heard.append(e.kind))
    bus.listen(broken)
    with bus.subscribe() as sub:
        bus.publish("message.new", id=1)
        assert sub.get(timeout=1).kind == "message.new"
    assert heard == ["message.new"] and "listener bug" in caplog.text
    stop()
    bus.publish("message.new", id=2)
    assert heard == ["message.new"]


def test_resending_one_dead_letter_ends_only_its_webhooks_backoff(world: World) -> None:
    hooks = world.services.webhooks
    a = hooks.add("55123", "http://127.0.0.1:9/a", ["inbound"], user="t")
    b = hooks.add("55123", "http://127.0.0.1:9/b", ["inbound"], user="t")
    hooks.poster = Fake(*[DeliveryFailed("down")] * 10)
    _inbound(world)
    hooks.run_once()  # both fail once and back off
    [da] = world.store.webhooks.next_pending(a.id)
    world.store.webhooks.attempt_failed(da, "x", iso(now()), iso(now()), give_up=True)
    assert hooks.resend([da.id], user="admin") == 1
    assert hooks.get(a.id).retry_at is None and hooks.get(a.id).failing == 0
    assert hooks.get(b.id).retry_at is not None  # the other receiver keeps its backoff


def test_a_broadcast_completion_is_recorded_for_the_webhooks_that_want_it(world: World) -> None:
    from gateway.store.webhooks import BROADCAST_COMPLETED

    hooks = world.services.webhooks
    wants = hooks.add("55123", "http://127.0.0.1:9/a", ["broadcast"], user="t")
    hooks.add("55123", "http://127.0.0.1:9/b", ["status"], user="t")
    data = {"broadcast_id": 4, "sent": 120, "failed": 3}
    assert world.store.webhooks.record("55123", "broadcast", BROADCAST_COMPLETED, data) == 1
    [d] = world.store.webhooks.next_pending(wants.id)
    assert d.type == "broadcast.completed" and json.loads(d.payload) == data


def test_a_url_that_cannot_be_sent_is_a_failed_attempt_not_a_stuck_thread(
    world: World, receiver: Receiver
) -> None:
    from gateway.messaging.webhooks import post

    receiver.set("up")
    with pytest.raises(DeliveryFailed, match="cannot be sent"):
        post(receiver.url + "/caf\u00e9", b"{}", {}, connect_timeout=0.5, read_timeout=0.5)
    with pytest.raises(WebhookRefused, match="plain ASCII"):
        world.services.webhooks.add("55123", "https://example.org/caf\u00e9", user="t")


def test_an_unexpected_error_while_posting_counts_as_an_attempt(world: World) -> None:
    hooks = world.services.webhooks
    hook = hooks.add("55123", "http://127.0.0.1:9/x", ["inbound"], user="t")
    hooks.poster = Fake(RuntimeError("surprise"))
    _inbound(world)
    assert hooks.run_once() > 0  # backed off, not raised
    shown = hooks.get(hook.id)
    assert shown.failed_attempts == 1 and "RuntimeError: surprise" in shown.last_error
