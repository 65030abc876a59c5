"""What the team does by hand with inbound messages: the agent queue (take, pick, return, mark
"no response needed"). Opting a profile out or back in is messaging/subscriptions.py's.

The queue is kept per conversation: an item is one profile with its unanswered inbound messages
(``agent_state`` open or claimed). Claiming happens inside one write transaction, so two agents
can never both hold the same conversation. Every change is published on the event bus as
``agent.changed`` {profile_id, state, by}, so the open pages update themselves.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..store import Store
from ..store.states import UNANSWERED, AgentState
from .events import EventBus

QUESTION_WORDS = ("who", "what", "when", "where", "why", "how", "can", "could", "is", "are")
QUESTION_WORDS += ("do", "does")
_QUESTION_START = re.compile(rf"^\W*(?:{'|'.join(QUESTION_WORDS)})\b", re.IGNORECASE)

SHOW = ("all", "questions", "urgent", "mine")


class AgentError(ValueError):
    """An agent action that cannot be done now; the message says why in words."""


class NotInQueue(AgentError):
    """The conversation has no unanswered message (already answered, or never queued)."""


class ClaimedByOther(AgentError):
    """Another agent is working on this conversation."""

    def __init__(self, profile_id: int, claimed_by: str) -> None:
        self.claimed_by = claimed_by
        super().__init__(f"This conversation is being answered by {claimed_by}.")


def is_question(text: str) -> bool:
    """A text that asks something: it holds "?" or starts with a question word."""
    return "?" in text or bool(_QUESTION_START.match(text))


class UrgentWords:
    """Finds the configured urgent words in a text: whole words, any case."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = tuple(w.strip().lower() for w in words if w.strip())
        alternatives = "|".join(re.escape(w) for w in sorted(self.words, key=len, reverse=True))
        # Look-arounds instead of \b so that a word ending in punctuation still matches whole.
        self._pattern = (
            re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if self.words else None
        )

    def found(self, text: str) -> list[str]:
        """The urgent words in ``text``, lower case, each once, in order of appearance."""
        if self._pattern is None:
            return []
        seen: list[str] = []
        for match in self._pattern.finditer(text):
            word = match.group(0).lower()
            if word not in seen:
                seen.append(word)
        return seen


@dataclass
class QueueItem:
    """One conversation waiting for an answer: the profile and its unanswered messages."""

    profile: sqlite3.Row
    messages: list[sqlite3.Row] = field(default_factory=list)
    question: bool = False
    urgent: list[str] = field(default_factory=list)
    # Subscribed to the short code of its latest message (the one an answer goes from), by the
    # store's one rule: a STOP to another short code does not mark it opted out here.
    subscribed: bool = True

    @property
    def profile_id(self) -> int:
        return int(self.profile["id"])

    @property
    def claimed_by(self) -> str | None:
        """Who holds the conversation (None when nobody does)."""
        for m in self.messages:
            if m["agent_state"] == AgentState.CLAIMED and m["claimed_by"]:
                return str(m["claimed_by"])
        return None

    @property
    def state(self) -> AgentState:
        return AgentState.CLAIMED if self.claimed_by else AgentState.OPEN

    @property
    def oldest(self) -> sqlite3.Row:
        return self.messages[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "profile_id": self.profile_id,
            "name": self.profile["name"],
            "phone": self.profile["phone"],
            "subscribed": self.subscribed,
            "state": self.state,
            "claimed_by": self.claimed_by,
            "oldest_id": self.oldest["id"],
            "oldest_at": self.oldest["created_at"],
            "latest_at": self.messages[-1]["created_at"],
            "question": self.question,
            "urgent": self.urgent,
            "messages": [
                {
                    "id": m["id"],
                    "body": m["body"],
                    "kind": m["kind"],
                    "status": m["status"],
                    "created_at": m["created_at"],
                    "agent_state": m["agent_state"],
                    "claimed_by": m["claimed_by"],
                }
                for m in self.messages
            ],
        }


class AgentDesk:
    """The agent queue, for the web app."""

    def __init__(self, config: Config, store: Store, events: EventBus) -> None:
        self.config = config
        self.store = store
        self.events = events
        self.urgent_words = UrgentWords(config.agent.urgent_words)

    # -- reading -------------------------------------------------------------------------

    def queue(self, *, user: str | None = None, show: str = "all") -> list[QueueItem]:
        """Conversations waiting for an answer, the longest-waiting first, filtered by ``show``:
        all, questions, urgent (configured words) or mine (claimed by ``user``)."""
        if show not in SHOW:
            raise AgentError(f"Show must be one of {', '.join(SHOW)}, not {show!r}.")
        items = self._items(self.store.messages.agent_queue(limit=1000))
        return [item for item in items if self._shown(item, show, user)]

    def counts(self, user: str | None) -> dict[str, int]:
        """How many conversations each filter shows."""
        items = self._items(self.store.messages.agent_queue(limit=1000))
        return {show: sum(self._shown(i, show, user) for i in items) for show in SHOW}

    def item(self, profile_id: int) -> QueueItem | None:
        """The profile's waiting conversation, or None when nothing of it waits."""
        items = self._items(self.store.messages.waiting_for_agent(profile_id))
        return items[0] if items else None

    @staticmethod
    def _shown(item: QueueItem, show: str, user: str | None) -> bool:
        if show == "questions":
            return item.question
        if show == "urgent":
            return bool(item.urgent)
        if show == "mine":
            return user is not None and item.claimed_by == user
        return True

    def _items(self, rows: list[sqlite3.Row]) -> list[QueueItem]:
        grouped: dict[int, list[sqlite3.Row]] = {}
        for row in rows:
            grouped.setdefault(int(row["profile_id"]), []).append(row)
        if not grouped:
            return []
        profiles = self.store.profiles.by_ids(grouped)
        own = self.store.subscriptions.differing(list(grouped))  # one query for the page
        items = []
        for pid, messages in grouped.items():
            code = messages[-1]["short_code"]
            subscribed = own.get(pid, {}).get(code, bool(profiles[pid]["subscribed"]))
            item = QueueItem(profiles[pid], messages, subscribed=subscribed)
            for m in messages:
                body = m["body"] or ""
                item.question = item.question or is_question(body)
                item.urgent += [w for w in self.urgent_words.found(body) if w not in item.urgent]
            items.append(item)
        items.sort(key=lambda i: i.oldest["id"])
        return items

    # -- the queue -----------------------------------------------------------------------

    def take_next(self, user: str) -> QueueItem | None:
        """Claim for ``user`` the conversation that has waited longest and that no other agent
        holds; None when there is none."""
        with self.store.db.tx():
            profile_id = self.store.messages.next_unclaimed_conversation(user)
            if profile_id is None:
                return None
            return self.claim(int(profile_id), user)

    def claim(self, profile_id: int, user: str) -> QueueItem:
        """Claim a conversation for ``user`` (also the messages that arrived since they took
        it). Raises NotInQueue or ClaimedByOther."""
        with self.store.db.tx():
            item = self.item(profile_id)
            if item is None:
                raise NotInQueue(f"Profile {profile_id} has no unanswered message.")
            holder = item.claimed_by
            if holder is not None and holder != user:
                raise ClaimedByOther(profile_id, holder)
            for m in item.messages:
                if m["agent_state"] == AgentState.OPEN:
                    # expect=open: a message changed under us would be left alone, not stolen.
                    self.store.messages.set_agent_state(
                        m["id"], AgentState.CLAIMED, user=user, expect=(AgentState.OPEN,)
                    )
            claimed = self.item(profile_id)
        assert claimed is not None
        self._changed(profile_id, AgentState.CLAIMED, user)
        return claimed

    def release(self, profile_id: int, user: str, *, force: bool = False) -> int:
        """Return a claimed conversation to the queue (only its holder, or anyone with
        ``force``); the number of messages returned."""
        with self.store.db.tx():
            item = self._held(profile_id, user, force)
            count = 0
            for m in item.messages:
                if m["agent_state"] == AgentState.CLAIMED:
                    count += self.store.messages.set_agent_state(
                        m["id"], AgentState.OPEN, expect=(AgentState.CLAIMED,)
                    )
            if count == 0:
                raise NotInQueue(
                    "Nobody is answering this conversation; there is nothing to return."
                )
        self._changed(profile_id, AgentState.OPEN, user)
        return count

    def no_response(self, profile_id: int, user: str, *, force: bool = False) -> int:
        """Mark the conversation's waiting messages "no response needed"; how many."""
        with self.store.db.tx():
            item = self._held(profile_id, user, force)
            count = 0
            for m in item.messages:
                count += self.store.messages.set_agent_state(
                    m["id"], AgentState.NO_RESPONSE, expect=UNANSWERED
                )
            self.store.audit.add("agent.no_response", actor=user, profile_id=profile_id, n=count)
        self._changed(profile_id, AgentState.NO_RESPONSE, user)
        return count

    def check_may_answer(self, profile_id: int, user: str, *, force: bool = False) -> None:
        """Raise ClaimedByOther when another user is answering this conversation (an answer
        would mark their work answered under them); ``force`` is an admin's explicit override.
        Call it in the transaction that records the answer, so no claim slips in between."""
        item = self.item(profile_id)
        holder = item.claimed_by if item is not None else None
        if holder is not None and holder != user and not force:
            raise ClaimedByOther(profile_id, holder)

    def _held(self, profile_id: int, user: str, force: bool) -> QueueItem:
        item = self.item(profile_id)
        if item is None:
            raise NotInQueue(f"Profile {profile_id} has no unanswered message.")
        holder = item.claimed_by
        if holder is not None and holder != user and not force:
            raise ClaimedByOther(profile_id, holder)
        return item

    def _changed(self, profile_id: int, state: AgentState, user: str) -> None:
        self.events.publish("agent.changed", profile_id=profile_id, state=state, by=user)
