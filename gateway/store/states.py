"""The stored state machines: a message's status, a part's status and an inbound message's
place in the agent queue. Each is an enum (a ``StrEnum``: a member is stored, compared and
sent to the browser as its plain string) with its allowed transitions written once, in a
:class:`Machine`. The store changes a state only through SQL guarded by :meth:`Machine.guard`,
and the schema's triggers (:func:`triggers`, migration 4) refuse any other value or move, so
a raw ``UPDATE`` cannot put a row where the code never would.

A state that stays what it is (``UPDATE ... SET status = status``) is never a transition and
always allowed; a new row may start in any valid state (history is imported as it ended).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar


class MessageStatus(enum.StrEnum):
    """Where a message is. Outbound: queued → sending → sent → delivered, or failed/expired;
    inbound: received, or incomplete while parts are missing."""

    QUEUED = "queued"  # accepted, waiting for a modem (or for its retry time)
    SENDING = "sending"  # claimed by a modem's sender
    SENT = "sent"  # every part accepted by the network
    DELIVERED = "delivered"  # every part's status report says delivered
    FAILED = "failed"  # given up, or a part's report says it could not be delivered
    EXPIRED = "expired"  # not sent before its expiry
    RECEIVED = "received"  # inbound, every part here
    INCOMPLETE = "incomplete"  # inbound, parts still missing

    @property
    def direction(self) -> str:
        """``"in"`` or ``"out"``: the direction of the messages that can be in this state."""
        return "in" if self in INBOUND else "out"


OUTBOUND: tuple[MessageStatus, ...] = (
    MessageStatus.QUEUED,
    MessageStatus.SENDING,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.FAILED,
    MessageStatus.EXPIRED,
)
INBOUND: tuple[MessageStatus, ...] = (MessageStatus.RECEIVED, MessageStatus.INCOMPLETE)
# Outbound messages still in the gateway's hands (never purged, shown as "waiting").
IN_FLIGHT: tuple[MessageStatus, ...] = (MessageStatus.QUEUED, MessageStatus.SENDING)
# Outbound messages that ended without reaching the handset.
UNSENT: tuple[MessageStatus, ...] = (MessageStatus.FAILED, MessageStatus.EXPIRED)


class PartStatus(enum.StrEnum):
    """Where one part (segment) of an outbound message is."""

    PENDING = "pending"  # to be written to a modem
    WRITING = "writing"  # handed to the modem, no answer yet (resent after a crash)
    SENT = "sent"  # accepted by the network with its TP-MR
    DELIVERED = "delivered"  # its status report says delivered
    FAILED = "failed"  # its status report says it cannot be delivered


# Parts the network has taken: a status report can be about them.
REPORTABLE: tuple[PartStatus, ...] = (PartStatus.SENT, PartStatus.DELIVERED, PartStatus.FAILED)


class AgentState(enum.StrEnum):
    """An inbound message's place in the agent queue (NULL: not for the team, e.g. STOP)."""

    OPEN = "open"  # waiting for an agent
    CLAIMED = "claimed"  # an agent is answering it
    ANSWERED = "answered"  # a reply went to the profile
    NO_RESPONSE = "no_response"  # an agent decided it needs none


# Unanswered: what the Inbox and the Agent View list.
UNANSWERED: tuple[AgentState, ...] = (AgentState.OPEN, AgentState.CLAIMED)


class InboundPduKind(enum.StrEnum):
    """What a raw PDU read from a modem is (``inbound_pdus.kind``): a kind, not a state (a
    row never changes it), so no table of moves and no trigger."""

    DELIVER = "deliver"  # an SMS to us: made into a message
    STATUS_REPORT = "status-report"  # a delivery report about a part we sent
    SUBMIT = "submit"  # an outgoing SMS stored on the SIM by a phone it was in: not ours
    UNDECODABLE = "undecodable"  # kept raw with the decoder's error


S = TypeVar("S", bound=enum.StrEnum)


class TransitionError(ValueError):
    """A move the state machine does not allow: a bug in the caller, never the data."""


@dataclass(frozen=True)
class Machine(Generic[S]):
    """One state machine: its states and the moves allowed between them. ``initial`` are the
    moves from NULL (a column that may be empty, like ``agent_state``)."""

    name: str  # the column, as "table.column"
    states: type[S]
    moves: Mapping[S, frozenset[S]]
    initial: frozenset[S] = frozenset()

    def __post_init__(self) -> None:
        missing = set(self.states) - set(self.moves)
        if missing:
            raise TransitionError(f"{self.name}: no moves written for {sorted(missing)}")

    def allows(self, old: S | str | None, new: S | str) -> bool:
        """Whether a row may go from ``old`` (None: empty) to ``new``."""
        new = self.states(new)
        if old is None:
            return new in self.initial
        old = self.states(old)
        return old == new or new in self.moves[old]

    def check(self, old: S | str | None, new: S | str) -> S:
        """``new`` as a member, or :class:`TransitionError` when ``old`` may not become it."""
        if not self.allows(old, new):
            raise TransitionError(f"{self.name}: {old or 'empty'} may not become {new}")
        return self.states(new)

    def guard(self, new: S, *old: S | None, column: str | None = None) -> str:
        """The SQL condition "the row is in one of ``old``", for an ``UPDATE`` that moves it to
        ``new``; each move is checked against the table first, so a guard cannot name a move
        the table forbids. Values are the enum's own (fixed words, no input), written into
        the text so that the planner can use partial indexes on them."""
        column = column or self.name.split(".", 1)[1]
        for o in old:
            self.check(o, new)
        parts = []
        values = [o for o in old if o is not None]
        if values:
            parts.append(f"{column} IN {sql_list(values)}")
        if None in old:
            parts.append(f"{column} IS NULL")
        if not parts:
            raise TransitionError(f"{self.name}: a guard names no state")
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def sql_list(states: Iterable[enum.StrEnum]) -> str:
    """``('a', 'b')``: enum values as an SQL list (the values are fixed words, never input)."""
    values = [s.value for s in states]
    for v in values:
        if not v.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"not a plain word: {v!r}")
    return "(" + ",".join(f"'{v}'" for v in values) + ")"


_M = MessageStatus
MESSAGE = Machine(
    "messages.status",
    MessageStatus,
    {
        _M.QUEUED: frozenset({_M.SENDING, _M.FAILED, _M.EXPIRED}),
        # Back to the queue: a retry, another modem, a crash; or ends.
        _M.SENDING: frozenset({_M.QUEUED, _M.SENT, _M.FAILED, _M.EXPIRED}),
        # The rest follow the parts' status reports (the roll-up of messages.py).
        _M.SENT: frozenset({_M.DELIVERED, _M.FAILED}),
        _M.DELIVERED: frozenset({_M.SENT, _M.FAILED}),
        # A message failed while sending its later parts still rolls up the reports of the
        # parts that went out.
        _M.FAILED: frozenset({_M.SENT, _M.DELIVERED}),
        _M.EXPIRED: frozenset(),
        _M.INCOMPLETE: frozenset({_M.RECEIVED}),
        _M.RECEIVED: frozenset(),
    },
)

_P = PartStatus
PART = Machine(
    "message_parts.status",
    PartStatus,
    {
        _P.PENDING: frozenset({_P.WRITING}),
        # Accepted; or not written (tried again), or the gateway stopped while writing.
        _P.WRITING: frozenset({_P.SENT, _P.PENDING}),
        # Reports; "pending" again when every part is sent again through another modem.
        _P.SENT: frozenset({_P.DELIVERED, _P.FAILED, _P.PENDING}),
        _P.DELIVERED: frozenset({_P.SENT, _P.FAILED, _P.PENDING}),
        _P.FAILED: frozenset({_P.SENT, _P.DELIVERED, _P.PENDING}),
    },
)

_A = AgentState
AGENT = Machine(
    "messages.agent_state",
    AgentState,
    {
        _A.OPEN: frozenset({_A.CLAIMED, _A.ANSWERED, _A.NO_RESPONSE}),
        _A.CLAIMED: frozenset({_A.OPEN, _A.ANSWERED, _A.NO_RESPONSE}),
        _A.ANSWERED: frozenset(),
        _A.NO_RESPONSE: frozenset(),
    },
    # An inbound message that turned out to be for the team after all (OOPS not after STOP).
    initial=frozenset({_A.OPEN}),
)


# -- the schema's side: triggers built from the tables above ---------------------------------


def _moves_sql(machine: Machine, old: str, new: str) -> list[str]:
    """One ``SELECT RAISE`` per state: a row in it that moves elsewhere than the table says."""
    statements = []
    for state, targets in machine.moves.items():
        allowed = sorted(t.value for t in targets)
        keep = sql_list([state, *sorted(targets)])
        said = "may become " + ", ".join(allowed) if allowed else "is final"
        statements.append(
            f"SELECT RAISE(ABORT, '{machine.name}: from {state.value} it {said}')"
            f" WHERE {old} = '{state.value}' AND {new} NOT IN {keep};"
        )
    return statements


def triggers() -> list[str]:
    """The ``CREATE TRIGGER`` statements that make the schema hold the tables above: known
    values only (a message's status by its direction), and only the moves allowed."""
    out, inbound = sql_list(OUTBOUND), sql_list(INBOUND)
    parts, agent = sql_list(PartStatus), sql_list(AgentState)
    bad_out = (
        "SELECT RAISE(ABORT, 'messages.status: an outbound message''s status must be one of"
        f" {', '.join(OUTBOUND)}') WHERE NEW.direction = 'out' AND NEW.status NOT IN {out};"
    )
    bad_in = (
        "SELECT RAISE(ABORT, 'messages.status: an inbound message''s status must be one of"
        f" {', '.join(INBOUND)}') WHERE NEW.direction = 'in' AND NEW.status NOT IN {inbound};"
    )
    bad_agent = (
        "SELECT RAISE(ABORT, 'messages.agent_state must be empty or one of"
        f" {', '.join(AgentState)}')"
        f" WHERE NEW.agent_state IS NOT NULL AND NEW.agent_state NOT IN {agent};"
    )
    bad_part = (
        "SELECT RAISE(ABORT, 'message_parts.status must be one of"
        f" {', '.join(PartStatus)}') WHERE NEW.status NOT IN {parts};"
    )
    agent_from_empty = (
        "SELECT RAISE(ABORT, 'messages.agent_state: an empty one may become"
        f" {', '.join(sorted(AGENT.initial))}') WHERE OLD.agent_state IS NULL"
        f" AND NEW.agent_state IS NOT NULL AND NEW.agent_state NOT IN {sql_list(AGENT.initial)};"
    )
    agent_to_empty = (
        "SELECT RAISE(ABORT, 'messages.agent_state: a queue state may not become empty')"
        " WHERE OLD.agent_state IS NOT NULL AND NEW.agent_state IS NULL;"
    )

    def trigger(name: str, when: str, table: str, body: list[str]) -> str:
        return f"CREATE TRIGGER {name} {when} ON {table} BEGIN " + " ".join(body) + " END"

    return [
        trigger("messages_status_insert", "BEFORE INSERT", "messages", [bad_out, bad_in]),
        trigger(
            "messages_status_update",
            "BEFORE UPDATE OF status, direction",
            "messages",
            [bad_out, bad_in, *_moves_sql(MESSAGE, "OLD.status", "NEW.status")],
        ),
        trigger("messages_agent_state_insert", "BEFORE INSERT", "messages", [bad_agent]),
        trigger(
            "messages_agent_state_update",
            "BEFORE UPDATE OF agent_state",
            "messages",
            [
                bad_agent,
                agent_from_empty,
                agent_to_empty,
                *_moves_sql(AGENT, "OLD.agent_state", "NEW.agent_state"),
            ],
        ),
        trigger("message_parts_status_insert", "BEFORE INSERT", "message_parts", [bad_part]),
        trigger(
            "message_parts_status_update",
            "BEFORE UPDATE OF status",
            "message_parts",
            [bad_part, *_moves_sql(PART, "OLD.status", "NEW.status")],
        ),
    ]


# -- keyword opt-in paths (issue 11) ----------------------------------------------------------


class PathState(enum.StrEnum):
    """Where a person is on a keyword's opt-in path (``keyword_paths.state``): waiting for the
    ``Y`` of a double opt-in, answering its questions, or ended one of three ways."""

    CONFIRMING = "confirming"  # the keyword asked for Y; nothing subscribed yet
    ASKING = "asking"  # subscribed (when the keyword subscribes); a question is waiting
    DONE = "done"  # confirmed and every question answered
    EXPIRED = "expired"  # no Y (or no answer) within the keyword's time limit
    CANCELLED = "cancelled"  # the person took the way out (or STOP), or the keyword was removed


# Paths still waiting for the person: at most one per profile and short code.
OPEN_PATHS: tuple[PathState, ...] = (PathState.CONFIRMING, PathState.ASKING)

_K = PathState
PATH = Machine(
    "keyword_paths.state",
    PathState,
    {
        _K.CONFIRMING: frozenset({_K.ASKING, _K.DONE, _K.EXPIRED, _K.CANCELLED}),
        _K.ASKING: frozenset({_K.DONE, _K.EXPIRED, _K.CANCELLED}),
        _K.DONE: frozenset(),
        _K.EXPIRED: frozenset(),
        _K.CANCELLED: frozenset(),
    },
)


# -- broadcasts (issue 11): a broadcast's life and each recipient's --------------------------


class BroadcastState(enum.StrEnum):
    """Where a broadcast is. scheduled → sending → done, with paused between and cancelled at
    any point before the end."""

    SCHEDULED = "scheduled"  # waiting for its time (or for the feeder to start it)
    SENDING = "sending"  # its recipients are being fed to the queue
    PAUSED = "paused"  # nothing more goes to the queue until it is resumed
    DONE = "done"  # every recipient was sent to, failed or skipped
    CANCELLED = "cancelled"  # stopped by a user: what had not gone to a modem never will


class RecipientState(enum.StrEnum):
    """One recipient of a broadcast (``broadcast_recipients.state``)."""

    PENDING = "pending"  # not yet made into a message (its time, the window, a pause)
    QUEUED = "queued"  # made into a message (messages.broadcast_id): its fate is the message's
    SKIPPED = "skipped"  # not texted: opted out, inactive or a number that cannot get SMS
    CANCELLED = "cancelled"  # the broadcast was cancelled before it was made into a message


# Broadcasts still to act on (the feeder's and the page's "active").
BROADCAST_ACTIVE: tuple[BroadcastState, ...] = (
    BroadcastState.SCHEDULED,
    BroadcastState.SENDING,
    BroadcastState.PAUSED,
)

_B = BroadcastState
BROADCAST = Machine(
    "broadcasts.state",
    BroadcastState,
    {
        _B.SCHEDULED: frozenset({_B.SENDING, _B.PAUSED, _B.CANCELLED}),
        _B.SENDING: frozenset({_B.PAUSED, _B.DONE, _B.CANCELLED}),
        # Resumed: sending, or back to waiting when its time has not come yet.
        _B.PAUSED: frozenset({_B.SENDING, _B.SCHEDULED, _B.CANCELLED}),
        _B.DONE: frozenset(),
        _B.CANCELLED: frozenset(),
    },
)

_R = RecipientState
RECIPIENT = Machine(
    "broadcast_recipients.state",
    RecipientState,
    {
        _R.PENDING: frozenset({_R.QUEUED, _R.SKIPPED, _R.CANCELLED}),
        # A pause or a cancel takes back a message no modem has taken yet.
        _R.QUEUED: frozenset({_R.PENDING, _R.CANCELLED}),
        _R.SKIPPED: frozenset(),
        _R.CANCELLED: frozenset(),
    },
)


def path_triggers() -> list[str]:
    """The triggers that make ``keyword_paths.state`` hold :data:`PATH` (migration 7)."""
    bad = (
        "SELECT RAISE(ABORT, 'keyword_paths.state must be one of"
        f" {', '.join(PathState)}') WHERE NEW.state NOT IN {sql_list(PathState)};"
    )
    moves = " ".join(_moves_sql(PATH, "OLD.state", "NEW.state"))
    return [
        f"CREATE TRIGGER keyword_paths_state_insert BEFORE INSERT ON keyword_paths BEGIN {bad} END",
        "CREATE TRIGGER keyword_paths_state_update BEFORE UPDATE OF state ON keyword_paths"
        f" BEGIN {bad} {moves} END",
    ]


def broadcast_triggers() -> list[str]:
    """The triggers that make the schema hold :data:`BROADCAST` and :data:`RECIPIENT`
    (migration 8): known values only, and only the moves allowed."""
    out = []
    for machine, table in ((BROADCAST, "broadcasts"), (RECIPIENT, "broadcast_recipients")):
        column = machine.name.split(".", 1)[1]
        values = sql_list(machine.states)
        bad = (
            f"SELECT RAISE(ABORT, '{machine.name} must be one of"
            f" {', '.join(machine.states)}') WHERE NEW.{column} NOT IN {values};"
        )
        if machine is BROADCAST:
            # Recipients are inserted 100,000 at a time: their table's CHECK holds the values
            # on insert at a fraction of a trigger's cost.
            out.append(
                f"CREATE TRIGGER {table}_{column}_insert BEFORE INSERT ON {table} BEGIN {bad} END"
            )
        moves = " ".join(_moves_sql(machine, f"OLD.{column}", f"NEW.{column}"))
        out.append(
            f"CREATE TRIGGER {table}_{column}_update BEFORE UPDATE OF {column} ON {table}"
            f" BEGIN {bad} {moves} END"
        )
    return out


# -- webhooks (issue 12): a delivery waiting in the outbox, or in the dead-letter list -------


class DeliveryState(enum.StrEnum):
    """Where one webhook delivery is (``webhook_deliveries.state``). A delivered one is
    deleted, so the outbox only ever holds work and the dead-letter list."""

    PENDING = "pending"  # to be POSTed (again, after its webhook's backoff)
    DEAD = "dead"  # given up (attempts, age or the backlog cap); "resend" makes it pending


DELIVERY = Machine(
    "webhook_deliveries.state",
    DeliveryState,
    {
        DeliveryState.PENDING: frozenset({DeliveryState.DEAD}),
        DeliveryState.DEAD: frozenset({DeliveryState.PENDING}),
    },
)

# Outbound statuses a webhook hears about (the event type is "message." + the status): the
# network took every part, every part arrived, or the message ended without reaching the
# handset.
WEBHOOK_STATUSES: tuple[MessageStatus, ...] = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.FAILED,
    MessageStatus.EXPIRED,
)
