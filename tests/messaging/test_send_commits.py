"""Issue 10: one commit between the modem's answer and the next PDU. The next part is recorded
'writing' in the transaction that takes the answer to the part before it (the last part of the
previous message, or the previous part of the same one), and a message for an idle modem in the
transaction that claims it; the invariant holds all along (a part is recorded before it goes
to the modem and after the network answers), and a part recorded ahead that is not written goes
back to 'pending', not a possible duplicate."""

from __future__ import annotations

import threading
import time

import pytest

from gateway.modem import pdu

from .conftest import World, note_commits

LONG = "".join(f"part of a long alert number {i:03d}. " for i in range(12))  # 3 GSM parts


class Journal:
    """Every write transaction committed (thread name) and every PDU written and answered by
    the link, in order; the link checks the invariant from the store as each PDU goes out."""

    def __init__(self, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
        self.world = world
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.problems: list[str] = []
        self.sent: list[str] = []
        self.sub = world.events.subscribe()
        note_commits(world, monkeypatch, self.note)

    def note(self, what: str) -> None:
        with self.lock:
            self.events.append((what, threading.current_thread().name))

    def send_pdu(self, pdu_hex: str, length: int) -> int:
        """A modem that checks, as each PDU arrives, that its part is recorded 'writing' and
        every part before it 'sent'."""
        text = pdu.decode(pdu_hex).text
        rows = self.world.store.db.q(
            "SELECT p.status, p.pdu FROM message_parts p ORDER BY p.message_id, p.seq"
        )
        mine = [r["status"] for r in rows if r["pdu"] == pdu_hex]
        if mine != ["writing"]:
            self.problems.append(f"{text!r} went out as {mine}")
        self.note("write")
        self.sent.append(text)
        self.wait_for_the_next()
        self.note("answer")
        return len(self.events) % 256

    def wait_for_the_next(self) -> None:
        """Answer once the message behind this one (if any is queued) is prepared, as it is
        while a real modem takes its half second: not answering before the router has had its
        turn is what a modem's latency gives."""
        store, dispatcher = self.world.store, self.world.dispatcher
        deadline = time.monotonic() + 5
        while store.messages.queued_count() and len(dispatcher.in_hand("c")) < 2:
            left = deadline - time.monotonic()
            if left <= 0:
                self.problems.append("the next message was not prepared behind the one sent")
                return
            # Woken by the claim's 'sending', announced just before the sender has it.
            self.sub.get(timeout=min(left, 0.01))

    def sender_commits_between_answer_and_write(self) -> list[int]:
        """For each PDU after the first: the sender's commits since the previous answer."""
        counts: list[int] = []
        current: int | None = None
        for what, thread in self.events:
            if what == "answer":
                current = 0
            elif what == "write" and current is not None:
                counts.append(current)
                current = None
            elif what == "commit" and thread.startswith("send-") and current is not None:
                current += 1
        return counts


def test_one_commit_between_an_answer_and_the_next_message(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(world, monkeypatch)
    accs = [
        world.outbox.submit(f"alert {i}", to=f"+1555010300{i}", short_code="55999")
        for i in range(6)
    ]
    world.dispatcher.modem_up("c", journal)
    for acc in accs:
        assert world.wait_status(acc.message_id, {"sent"}) == "sent"
    assert journal.problems == []
    assert journal.sender_commits_between_answer_and_write() == [1] * 5
    for acc in accs:
        part = world.store.messages.parts(acc.message_id)[0]
        assert (part["status"], part["attempts"], part["maybe_duplicate"]) == ("sent", 1, 0)


def test_one_commit_between_the_parts_of_a_long_message(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(world, monkeypatch)
    acc = world.outbox.submit(LONG, to="+15550103001", short_code="55999")
    assert acc.parts == 3
    world.dispatcher.modem_up("c", journal)
    assert world.wait_status(acc.message_id, {"sent"}) == "sent"
    assert journal.problems == []
    assert journal.sender_commits_between_answer_and_write() == [1, 1]
    parts = world.store.messages.parts(acc.message_id)
    assert [(p["status"], p["attempts"]) for p in parts] == [("sent", 1)] * 3


def test_a_message_for_an_idle_modem_is_recorded_writing_when_it_is_claimed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pick-up: no commit of the sender's own between the claim and the PDU."""
    journal = Journal(world, monkeypatch)
    world.dispatcher.modem_up("c", journal)
    acc = world.outbox.submit("now", to="+15550103001", short_code="55999")
    assert world.wait_status(acc.message_id, {"sent"}) == "sent"
    assert journal.problems == []
    first_write = journal.events.index(("write", "send-c"))
    assert [e for e in journal.events[:first_write] if e[1].startswith("send-")] == []


def test_a_part_recorded_ahead_goes_back_to_pending_when_its_modem_stops_first(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The modem goes down while the transaction that takes the answer to the first message
    (and records the second one's part 'writing' ahead) is being made, before the second PDU
    goes out: the second goes back to the queue, its part pending, its attempt not counted,
    and not marked a possible duplicate (it never reached the modem)."""
    link = Journal(world, monkeypatch)
    accs = [
        world.outbox.submit(f"alert {i}", to=f"+1555010300{i}", short_code="55999")
        for i in range(2)
    ]
    finish = world.store.messages.finish_sending
    downed: list[int] = []

    def down_while_finishing(message_id: int):
        if message_id == accs[0].message_id and not downed:
            downed.append(message_id)
            world.dispatcher.modem_down("c")
        return finish(message_id)

    monkeypatch.setattr(world.store.messages, "finish_sending", down_while_finishing)
    world.dispatcher.modem_up("c", link)
    assert world.wait_status(accs[0].message_id, {"sent"}) == "sent"
    assert world.wait_status(accs[1].message_id, {"queued"}) == "queued"
    assert downed == [accs[0].message_id]
    row = world.store.messages.get(accs[1].message_id)
    part = world.store.messages.parts(accs[1].message_id)[0]
    assert (part["status"], part["attempts"], part["maybe_duplicate"]) == ("pending", 0, 0)
    assert (row["attempts"], row["maybe_duplicate"]) == (0, 0)
    assert link.sent == ["alert 0"]
    world.dispatcher.modem_up("c", link)
    assert world.wait_status(accs[1].message_id, {"sent"}) == "sent"
    part = world.store.messages.parts(accs[1].message_id)[0]
    assert (part["status"], part["attempts"], part["maybe_duplicate"]) == ("sent", 1, 0)
    assert link.problems == []
    assert link.problems == []
