"""Whose problem a failed send is (failures.py), a modem's sending health (health.py), and what
the dispatcher does with both: a modem's error moves the message to another modem of the pool
without charging it; a modem that fails every send leaves routing; a message that fails on
every modem cannot keep the pool out."""

from __future__ import annotations

import queue
import threading
from datetime import UTC, datetime, timedelta

import pytest

from gateway.messaging.failures import Blame, classify
from gateway.messaging.health import SendHealth, SendState
from gateway.modem import pdu
from gateway.modem.at import (
    CmeError,
    CmsError,
    CommandError,
    CommandTimeout,
    PortGone,
    PromptTimeout,
)

from .conftest import World, cms

PORT = "/dev/fake"
HANDSET_ALICE = "+15551230001"

# TS 27.005 3.2.5 codes that are about the modem or its SIM (and 512+ per manufacturer).
MODEM_CMS = [300, 301, 302, 303, 310, 311, 312, 313, 314, 315, 316, 317, 318, 320, 322]
MODEM_CMS += [330, 331, 332, 500, 512, 515, 50, None]
# TS 27.007 9.2 codes: SIM, PIN/PUK, memory, network service, unknown.
MODEM_CME = [0, 3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 23, 30, 31, 32, 100]


@pytest.mark.parametrize("code", MODEM_CMS)
def test_modem_and_sim_cms_errors_are_the_modems(code) -> None:
    raw = "+CMS ERROR" if code is None else f"+CMS ERROR: {code}"  # some print no number
    failure = classify(CmsError(PORT, "AT+CMGS=20", raw))
    assert failure.blame is Blame.MODEM and failure.temporary, (code, failure)


@pytest.mark.parametrize("code", MODEM_CME)
def test_every_cme_error_is_the_modems(code) -> None:
    failure = classify(CmeError(PORT, "AT+CMGS=20", f"+CME ERROR: {code}"))
    assert failure.blame is Blame.MODEM


@pytest.mark.parametrize(
    ("code", "blame"),
    [
        (1, Blame.MESSAGE),
        (28, Blame.MESSAGE),
        (304, Blame.MESSAGE),
        (200, Blame.MESSAGE),
        (42, Blame.RETRY),
        (22, Blame.RETRY),
        (41, Blame.RETRY),
    ],
)
def test_message_and_network_errors_are_not_the_modems(code, blame) -> None:
    assert classify(cms(code)).blame is blame


def test_no_prompt_no_answer_and_a_gone_port_are_the_modems() -> None:
    no_prompt = classify(PromptTimeout(PORT, "AT+CMGS=20", "no prompt"))
    assert no_prompt.blame is Blame.MODEM and not no_prompt.maybe_sent
    no_answer = classify(CommandTimeout(PORT, "AT+CMGS=20", "no answer"))
    assert no_answer.blame is Blame.MODEM and no_answer.maybe_sent
    assert classify(PortGone(PORT, None, "unplugged")).blame is Blame.MODEM
    assert classify(CommandError(PORT, "AT+CMGS=20", "ERROR")).blame is Blame.MODEM


def test_health_leaves_routing_after_n_in_a_row_and_comes_back_through_a_check() -> None:
    h = SendHealth(failing_after=3, probe_seconds=10, probe_max_seconds=25)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert not h.failed(t0, "x") and not h.failed(t0, "x")
    h.sent(t0)  # a part sent clears the count
    assert not h.failed(t0, "x") and not h.failed(t0, "x") and h.routable
    assert h.failed(t0, "SIM PIN") and h.state is SendState.FAILING and not h.routable
    assert h.probe_at == t0 + timedelta(seconds=10) and not h.probe_due(t0)
    assert h.probe_due(t0 + timedelta(seconds=10))
    # A failed check: the pause doubles, up to the maximum.
    h.checked(t0, "SIM not ready")
    assert h.state is SendState.FAILING and h.probe_at == t0 + timedelta(seconds=20)
    h.checked(t0, "SIM not ready")
    assert h.probe_at == t0 + timedelta(seconds=25)
    assert h.checked(t0, None) and h.state is SendState.PROBING and h.routable
    # The trial fails: out again at once, with a longer pause.
    assert h.failed(t0, "500") and h.state is SendState.FAILING
    assert h.checked(t0, None) and h.sent(t0) and h.state is SendState.OK
    assert h.snapshot() == {
        "state": "ok",
        "failures": 0,
        "reason": None,
        "since": None,
        "next_check": None,
    }
    assert h.failed(t0, "x") is False  # a fresh count after coming back


class PickyLink:
    """A fake modem link that fails the PDUs a predicate picks with a +CMS ERROR."""

    def __init__(self, code: int, fails=lambda text: True) -> None:
        self.code = code
        self.fails = fails
        self.sent: list[str] = []
        self.tried = 0
        self.lock = threading.Lock()

    def send_pdu(self, pdu_hex: str, length: int) -> int:
        with self.lock:
            self.tried += 1
            if self.fails(pdu.decode(pdu_hex).text):
                raise cms(self.code)
            self.sent.append(pdu_hex)
            return len(self.sent) % 256


def _texts(link: PickyLink) -> list[str]:
    return [pdu.decode(h).text for h in link.sent]


def test_a_message_that_fails_on_every_modem_does_not_keep_the_pool_out(tmp_path) -> None:
    w = World(
        tmp_path,
        "  failing_after: 2\n  probe_seconds: 0.05\n  probe_max_seconds: 0.1\n",
    )
    try:
        poison = lambda text: text == "poison"  # noqa: E731
        w.links["a"] = PickyLink(500, poison)
        w.links["b"] = PickyLink(500, poison)
        changes: queue.Queue[tuple[str, str]] = queue.Queue()
        w.dispatcher.on_health = lambda mid, snap: changes.put((mid, snap["state"]))
        w.dispatcher.start()
        bad = w.outbox.submit("poison", to="+15550101234")
        w.up("a", "b")
        # Alone in the queue, it takes both modems out (2 in a row each) ...
        out: set[str] = set()
        while out != {"a", "b"}:
            mid, state = changes.get(timeout=5)
            if state == "failing":
                out.add(mid)
        # ... but new messages still go, each on trial on a modem whose check passed.
        good = [w.outbox.submit(f"good {i}", to=f"+155501020{i:02d}") for i in range(5)]
        for acc in good:
            assert w.wait_status(acc.message_id, {"sent"}) == "sent"
        assert sorted(_texts(w.links["a"]) + _texts(w.links["b"])) == [
            f"good {i}" for i in range(5)
        ]
        assert w.store.messages.get(bad.message_id)["status"] == "queued"  # waits, never sent
    finally:
        w.close()


def test_the_rest_of_a_partly_sent_message_stays_with_its_modem_until_the_grace(
    tmp_path,
) -> None:
    w = World(tmp_path, "  failing_after: 2\n  probe_seconds: 30\n")
    try:
        w.links["a"].fail_on[2] = cms(311)  # part 2 of 3: the SIM asks for its PIN
        w.dispatcher.start()
        acc = w.outbox.submit("y" * 400, to="+15550101234")  # 3 parts
        w.up("a", "b")
        assert w.wait_status(acc.message_id, {"sent"}) == "sent"
        parts = w.store.messages.parts(acc.message_id)
        # Part 1 is out from a's number: the rest follows from it (the handset joins them).
        assert {p["modem_id"] for p in parts} == {"a"} and w.links["b"].sent == []
    finally:
        w.close()


def test_after_an_outage_of_the_whole_pool_the_queue_goes_out_by_itself(tmp_path) -> None:
    w = World(tmp_path, "  failing_after: 2\n  probe_seconds: 0.05\n  probe_max_seconds: 0.1\n")
    try:
        outage = threading.Event()
        outage.set()
        w.links["a"] = PickyLink(331, lambda text: outage.is_set())  # no network service
        w.links["b"] = PickyLink(331, lambda text: outage.is_set())
        changes: queue.Queue[tuple[str, str]] = queue.Queue()
        w.dispatcher.on_health = lambda mid, snap: changes.put((mid, snap["state"]))
        w.dispatcher.start()
        # Two messages, two failures each make both modems fail: each message failed on both.
        queued = [w.outbox.submit(f"during {i}", to=f"+155501030{i:02d}") for i in range(2)]
        w.up("a", "b")
        out: set[str] = set()
        while out != {"a", "b"}:
            mid, state = changes.get(timeout=5)
            if state == "failing":
                out.add(mid)
        for acc in queued:
            row = w.store.messages.get(acc.message_id)
            assert row["status"] in ("queued", "sending") and "331" in row["error"]
        # The network is back. Every queued message failed on both modems, and no new one
        # comes: the modems on trial still take them.
        outage.clear()
        for acc in queued:
            assert w.wait_status(acc.message_id, {"sent"}) == "sent"
        assert w.dispatcher.routable("a") and w.dispatcher.routable("b")
    finally:
        w.close()


def test_the_profiles_of_a_failing_modem_move_to_the_pool_at_once(tmp_path) -> None:
    w = World(tmp_path, "  failing_after: 2\n  probe_seconds: 600\n")  # grace: 30 minutes
    try:
        broken = threading.Event()
        w.links["a"] = PickyLink(500, lambda text: broken.is_set())
        w.dispatcher.start()
        w.up("a", "b")
        first = w.outbox.submit("hello from a", to=HANDSET_ALICE)
        assert w.wait_status(first.message_id, {"sent"}) == "sent"
        assert w.store.profiles.by_phone(HANDSET_ALICE)["sticky_modem"] == "a"
        broken.set()
        for i in range(2):  # two sends a fails: it leaves routing
            acc = w.outbox.submit(f"other {i}", to=f"+155501040{i:02d}")
            assert w.wait_status(acc.message_id, {"sent"}) == "sent"
        assert not w.dispatcher.routable("a")
        # Alice's next message does not wait 30 minutes for her modem: b sends it now.
        reply = w.outbox.submit("hello again", to=HANDSET_ALICE)
        assert w.wait_status(reply.message_id, {"sent"}) == "sent"
        assert w.store.messages.get(reply.message_id)["modem_id"] == "b"
    finally:
        w.close()
