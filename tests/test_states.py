"""The stored state machines (gateway/store/states.py): one table of moves each, held by the
schema's triggers (migration 4) as well as by the store's guarded updates."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from gateway.store import Store, migrations
from gateway.store.states import (
    AGENT,
    INBOUND,
    MESSAGE,
    OUTBOUND,
    PART,
    AgentState,
    MessageStatus,
    PartStatus,
    TransitionError,
)


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(tmp_path)
    try:
        yield s
    finally:
        s.close()


def _message(store: Store, direction: str, status: str, agent_state: str | None = None) -> int:
    pid = store.db.value("SELECT id FROM profiles LIMIT 1") or store.profiles.add(
        "+15551230001", "Ann"
    )
    with store.db.tx() as conn:
        return conn.execute(
            "INSERT INTO messages (direction, profile_id, phone, short_code, body, status,"
            " agent_state, created_at, updated_at)"
            " VALUES (?, ?, '+15551230001', '55123', 'x', ?, ?, '2026', '2026')",
            (direction, pid, status, agent_state),
        ).lastrowid


def _part(store: Store, status: str) -> int:
    mid = _message(store, "out", "sent")
    with store.db.tx() as conn:
        return conn.execute(
            "INSERT INTO message_parts (message_id, seq, status) VALUES (?, 1, ?)", (mid, status)
        ).lastrowid


def _update(store: Store, table: str, column: str, row: int, value: str | None) -> None:
    with store.db.tx() as conn:
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (value, row))


# -- values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "direction, status, said",
    [
        ("out", "received", "an outbound message's status must be one of queued"),
        ("out", "Queued", "an outbound message's status must be one of queued"),
        ("in", "delivered", "an inbound message's status must be one of received, incomplete"),
        ("in", "", "an inbound message's status must be one of received, incomplete"),
    ],
)
def test_an_unknown_message_status_is_refused_by_the_schema(
    store: Store, direction: str, status: str, said: str
) -> None:
    with pytest.raises(sqlite3.IntegrityError, match=f"messages.status: {said}"):
        _message(store, direction, status)
    mid = _message(store, direction, "queued" if direction == "out" else "received")
    with pytest.raises(sqlite3.IntegrityError, match=f"messages.status: {said}"):
        _update(store, "messages", "status", mid, status)


def test_an_unknown_agent_state_or_part_status_is_refused_by_the_schema(store: Store) -> None:
    said = "messages.agent_state must be empty or one of open, claimed, answered, no_response"
    with pytest.raises(sqlite3.IntegrityError, match=said):
        _message(store, "in", "received", "closed")
    mid = _message(store, "in", "received", "open")
    with pytest.raises(sqlite3.IntegrityError, match=said):
        _update(store, "messages", "agent_state", mid, "closed")
    said = "message_parts.status must be one of pending, writing, sent, delivered, failed"
    with pytest.raises(sqlite3.IntegrityError, match=said):
        _part(store, "queued")
    part = _part(store, "pending")
    with pytest.raises(sqlite3.IntegrityError, match=said):
        _update(store, "message_parts", "status", part, "done")
    assert store.db.value("SELECT status FROM message_parts WHERE id = ?", (part,)) == "pending"


# -- moves: the schema agrees with the tables, pair by pair --------------------------------


@pytest.mark.parametrize("old, new", list(itertools.product(MessageStatus, MessageStatus)))
def test_the_schema_allows_exactly_the_message_moves_of_the_table(
    store: Store, old: MessageStatus, new: MessageStatus
) -> None:
    if old.direction != new.direction:
        return  # refused as an unknown value for the direction (above)
    mid = _message(store, old.direction, old)
    if MESSAGE.allows(old, new):
        _update(store, "messages", "status", mid, new)
        assert store.db.value("SELECT status FROM messages WHERE id = ?", (mid,)) == new
    else:
        with pytest.raises(sqlite3.IntegrityError, match=f"messages.status: from {old} it "):
            _update(store, "messages", "status", mid, new)


@pytest.mark.parametrize("old, new", list(itertools.product(PartStatus, PartStatus)))
def test_the_schema_allows_exactly_the_part_moves_of_the_table(
    store: Store, old: PartStatus, new: PartStatus
) -> None:
    part = _part(store, old)
    if PART.allows(old, new):
        _update(store, "message_parts", "status", part, new)
    else:
        with pytest.raises(sqlite3.IntegrityError, match=f"message_parts.status: from {old} it "):
            _update(store, "message_parts", "status", part, new)


@pytest.mark.parametrize(
    "old, new", list(itertools.product([None, *AgentState], [None, *AgentState]))
)
def test_the_schema_allows_exactly_the_agent_moves_of_the_table(
    store: Store, old: AgentState | None, new: AgentState | None
) -> None:
    mid = _message(store, "in", "received", old)
    allowed = old is None if new is None else AGENT.allows(old, new)
    if allowed:
        _update(store, "messages", "agent_state", mid, new)
    else:
        with pytest.raises(sqlite3.IntegrityError, match=r"messages\.agent_state: "):
            _update(store, "messages", "agent_state", mid, new)


def test_a_forbidden_move_says_where_the_row_may_go(store: Store) -> None:
    mid = _message(store, "out", "expired")
    with pytest.raises(sqlite3.IntegrityError, match=r"messages\.status: from expired it is final"):
        _update(store, "messages", "status", mid, "queued")
    mid = _message(store, "out", "queued")
    with pytest.raises(
        sqlite3.IntegrityError,
        match=r"messages\.status: from queued it may become expired, failed, sending",
    ):
        _update(store, "messages", "status", mid, "delivered")


# -- the Python side -----------------------------------------------------------------------


def test_every_state_has_its_moves_and_values_are_the_stored_strings() -> None:
    assert set(OUTBOUND) | set(INBOUND) == set(MessageStatus)
    assert MessageStatus.QUEUED == "queued" and f"{AgentState.NO_RESPONSE}" == "no_response"
    for machine in (MESSAGE, PART, AGENT):
        assert set(machine.moves) == set(machine.states)
    for old, targets in MESSAGE.moves.items():
        assert all(t.direction == old.direction for t in targets)


def test_a_guard_cannot_name_a_forbidden_move() -> None:
    assert MESSAGE.guard(MessageStatus.SENDING, MessageStatus.QUEUED) == "status IN ('queued')"
    with pytest.raises(TransitionError, match=r"messages\.status: expired may not become queued"):
        MESSAGE.guard(MessageStatus.QUEUED, MessageStatus.EXPIRED)
    assert AGENT.guard(AgentState.OPEN, None) == "agent_state IS NULL"


def test_the_store_refuses_a_move_its_table_forbids(store: Store) -> None:
    mid = _message(store, "in", "received", "answered")
    with pytest.raises(TransitionError, match="answered may not become claimed"):
        store.messages.set_agent_state(mid, AgentState.CLAIMED, expect=[AgentState.ANSWERED])
    with pytest.raises(ValueError, match="not 'sent'"):
        store.messages.fail(mid, "no", MessageStatus.SENT)


# -- the migration on a store from before it -----------------------------------------------


def test_the_migration_applies_to_a_filled_store_and_holds_it_afterwards(tmp_path: Path) -> None:
    before = migrations.MIGRATIONS[:3]
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(migrations, "MIGRATIONS", before)
        s = Store.open(tmp_path)
        ids = {status: _message(s, status.direction, status) for status in MessageStatus}
        _part(s, "writing")
        s.close()
    s = Store.open(tmp_path)
    try:
        assert (
            migrations.current_version(s.db) == migrations.MIGRATIONS[-1][0]
        )  # the latest, whatever comes after 4
        assert list((tmp_path / "backups").glob("before-migration-4-*.sqlite3"))
        for status, mid in ids.items():
            assert s.db.value("SELECT status FROM messages WHERE id = ?", (mid,)) == status
        names = {r[0] for r in s.db.q("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert {"messages_status_update", "message_parts_status_update"} <= names
        with pytest.raises(sqlite3.IntegrityError, match="from delivered it may become"):
            _update(s, "messages", "status", ids[MessageStatus.DELIVERED], "queued")
        assert s.messages.recover_after_crash() == [ids[MessageStatus.SENDING]]
    finally:
        s.close()
