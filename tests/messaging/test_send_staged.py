"""Issue 10, efficiency at 1–8 modems: at the modem's answer, the next ``AT+CMGS`` goes out
first, with the next part's PDU already in hand (claimed and encoded while the modem worked);
the one commit that records the answer and the next part 'writing' is made while the modem
turns round its "> " prompt, and it is durable before the PDU's bytes go out; the answer's
announcements follow once the PDU is out. Checked through a link that stages its sends as the
daemon's Modem does (``AT+CMGS`` line, the caller's commit, PDU, the caller's bookkeeping,
answer)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from gateway.modem import pdu
from gateway.store import StoreError

from .conftest import World, note_commits

LONG = "".join(f"part of a long alert number {i:03d}. " for i in range(12))  # 3 GSM parts


class StagedModem:
    """A modem link in the daemon Modem's shape: ``AT+CMGS`` written, then the caller's
    commit, then the PDU, then the caller's bookkeeping while the "network" answers. Notes
    every step, every commit and every store read of the sender thread, in order."""

    stages_sends = True

    def __init__(self, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
        self.world = world
        self.events: list[str] = []
        self.problems: list[str] = []
        self.lock = threading.Lock()
        self.sub = world.events.subscribe()
        self.mr = 0
        self.waiting = False  # in the caller's while_waiting
        note_commits(world, monkeypatch, self.note)
        for name in ("get", "parts"):
            read = getattr(world.store.messages, name)

            def noted(*args, _read=read, _name=name):
                self.note(f"read {_name}")
                return _read(*args)

            monkeypatch.setattr(world.store.messages, name, noted)

    def note(self, what: str) -> None:
        if threading.current_thread().name.startswith("send-"):
            with self.lock:
                self.events.append(what)

    def send_pdu(
        self,
        pdu_hex: str,
        length: int,
        *,
        before_payload: Callable[[], None] | None = None,
        while_waiting: Callable[[], None] | None = None,
    ) -> int:
        text = pdu.decode(pdu_hex).text
        self.note("AT+CMGS")
        if before_payload is not None:
            before_payload()
        # The invariant, as the PDU's bytes go out: this part recorded 'writing' (committed),
        # every part written before it recorded 'sent'.
        rows = self.world.store.db.q("SELECT status, pdu FROM message_parts ORDER BY id")
        mine = [r["status"] for r in rows if r["pdu"] == pdu_hex]
        if mine != ["writing"]:
            self.problems.append(f"{text!r} went out as {mine}")
        earlier = [r["status"] for r in rows if r["status"] == "writing" and r["pdu"] != pdu_hex]
        if earlier:
            self.problems.append(f"{text!r} went out with {earlier} parts before it unanswered")
        self.note("PDU")
        if while_waiting is not None:
            self.waiting = True
            try:
                while_waiting()
            finally:
                self.waiting = False
        self.wait_for_the_next()
        self.note("answer")
        self.mr = (self.mr + 1) % 256
        return self.mr

    def wait_for_the_next(self) -> None:
        """Answer once the message behind this one (if any is queued) is prepared, as it is
        while a real modem takes its half second."""
        store, dispatcher = self.world.store, self.world.dispatcher
        deadline = time.monotonic() + 5
        while store.messages.queued_count() and len(dispatcher.in_hand("c")) < 2:
            left = deadline - time.monotonic()
            if left <= 0:
                self.problems.append("the next message was not prepared behind the one sent")
                return
            self.sub.get(timeout=min(left, 0.01))

    def between(self, start: str, end: str) -> list[list[str]]:
        """What the sender did between each ``start`` and the ``end`` after it."""
        spans: list[list[str]] = []
        current: list[str] | None = None
        for what in self.events:
            if what == start:
                current = []
            elif what == end and current is not None:
                spans.append(current)
                current = None
            elif current is not None:
                current.append(what)
        return spans


def commits(spans: list[list[str]]) -> list[int]:
    return [span.count("commit") for span in spans]


def test_at_the_answer_the_next_at_cmgs_goes_out_before_any_commit_or_read(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    modem = StagedModem(world, monkeypatch)
    accs = [
        world.outbox.submit(f"alert {i}", to=f"+1555010300{i}", short_code="55999")
        for i in range(6)
    ]
    world.dispatcher.modem_up("c", modem)
    for acc in accs:
        assert world.wait_status(acc.message_id, {"sent"}) == "sent"
    assert modem.problems == []
    # Nothing between the modem's answer and the next AT+CMGS: its PDU was in hand.
    assert modem.between("answer", "AT+CMGS") == [[]] * 5
    # The one commit (the answer, the previous message sent, this part 'writing') between
    # the AT+CMGS line and the PDU, while the modem turns round its prompt.
    assert commits(modem.between("AT+CMGS", "PDU"))[1:] == [1] * 5
    for acc in accs:
        part = world.store.messages.parts(acc.message_id)[0]
        assert (part["status"], part["attempts"], part["maybe_duplicate"]) == ("sent", 1, 0)


def test_between_the_parts_of_a_long_message_too(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    modem = StagedModem(world, monkeypatch)
    acc = world.outbox.submit(LONG, to="+15550103001", short_code="55999")
    assert acc.parts == 3
    world.dispatcher.modem_up("c", modem)
    assert world.wait_status(acc.message_id, {"sent"}) == "sent"
    assert modem.problems == []
    assert modem.between("answer", "AT+CMGS") == [[]] * 2
    assert commits(modem.between("AT+CMGS", "PDU"))[1:] == [1] * 2
    parts = world.store.messages.parts(acc.message_id)
    assert [(p["status"], p["attempts"]) for p in parts] == [("sent", 1)] * 3


def test_a_failed_read_while_the_modem_works_is_not_a_failed_send(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next message's rest is read ahead while the modem works on its first part: when
    that read fails, the part is out all the same (not resent, not a possible duplicate)."""
    modem = StagedModem(world, monkeypatch)
    accs = [
        world.outbox.submit(f"alert {i}", to=f"+1555010300{i}", short_code="55999")
        for i in range(3)
    ]
    parts = world.store.messages.parts
    failed: list[int] = []

    def flaky(message_id: int):
        # The sender's read ahead only: the router preparing the next message at the same
        # moment would pause routing for 5 s on a store error, by design (another test).
        sender = threading.current_thread().name.startswith("send-")
        if modem.waiting and sender and not failed:
            failed.append(message_id)
            raise StoreError("disk I/O error (test)")
        return parts(message_id)

    monkeypatch.setattr(world.store.messages, "parts", flaky)
    world.dispatcher.modem_up("c", modem)
    for acc in accs:
        assert world.wait_status(acc.message_id, {"sent"}) == "sent"
    assert failed  # a read ahead did fail
    assert modem.problems == []
    assert len(modem.between("AT+CMGS", "PDU")) == 3  # each message written once
    for acc in accs:
        part = world.store.messages.parts(acc.message_id)[0]
        assert (part["status"], part["attempts"], part["maybe_duplicate"]) == ("sent", 1, 0)
