"""The dispatcher: routes queued messages to modems and sends them, one sender thread per modem.

One routing thread decides which message goes to which modem (so routing has no races); each
modem has its own sender thread that does the slow serial work, so a hung modem holds up only
its own queue. The routing thread blocks on an event: it wakes when a message is accepted, a
send finishes, a modem comes or goes, or a timer it computed itself runs out (a retry, a rate
window, the end of quiet hours, an expiry). An idle gateway does nothing at all.

Routing rules:
- a message goes to a healthy modem of its short code's pool;
- a profile sticks to the modem that last talked with it, so replies come from the same number;
  it moves to another modem of the pool only when that one has been down longer than
  ``routing.sticky_grace_minutes``;
- per-modem rate limits (per minute and per day, counted in SMS parts) and quiet hours (bulk
  only: a person waiting in a chat is answered at any hour);
- chat replies and one-off texts (priority 0) go before bulk sends (priority 10);
- a failed send is the message's problem, a passing one, or the modem's (:mod:`.failures`): a
  message the modem failed goes back to the queue at once for another modem of the pool, without
  counting against it; a modem that fails ``routing.failing_after`` sends in a row leaves routing
  until a check and a trial message show it sends again (:mod:`.health`). Its profiles move to
  the rest of the pool at once; a message it sent some parts of waits the sticky grace, as for
  a modem that is down. With every modem of a pool out, messages wait (until they expire).
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from ..config import Config, ModemConfig
from ..modem import pdu as smspdu
from ..store import Store, StoreError
from ..store.states import MessageStatus, PartStatus
from ..store.times import iso, now, parse
from .eligibility import refusal
from .events import EventBus
from .failures import Blame, Failure, classify
from .health import SendHealth, SendState
from .outbound import PRIORITY_BULK
from .sendstats import SendStats

log = logging.getLogger(__name__)

# While a modem sends, the sweep for expired messages (it reads every queued row) runs at most
# this often; a row about to be claimed is checked on its own anyway.
EXPIRY_SWEEP_SECONDS = 1.0
STRANDED_RETRY_SECONDS = 2.0  # how often a message the store could not requeue is tried again
# Messages a modem holds at once: the one it sends and the next, claimed and encoded while the
# modem works, so that the sender writes it as soon as the modem answers (issue 10: the gap
# between two sends was the routing pass, a claim and the encoding).
PREPARED_DEPTH = 2
FIRST_PAGE = 8  # queued rows read first by a routing pass


class ModemLink(Protocol):
    """What the dispatcher needs of a modem that is up: send one PDU, get its TP-MR."""

    def send_pdu(self, pdu: str, length: int) -> int: ...


@runtime_checkable
class StagedLink(Protocol):
    """A link that writes ``AT+CMGS`` first and runs ``before_payload`` (the commit that
    records the part 'writing') before the PDU itself, and ``while_waiting`` once the PDU is
    out (the daemon's :class:`gateway.modem.device.Modem`): the commit is made while the modem
    turns round its prompt, the bookkeeping of the previous send while it works. With a plain
    :class:`ModemLink` the same steps run before ``send_pdu``, in the same order."""

    stages_sends: bool

    def send_pdu(
        self,
        pdu: str,
        length: int,
        *,
        before_payload: Callable[[], None] | None = None,
        while_waiting: Callable[[], None] | None = None,
    ) -> int: ...


class _Withheld(Exception):
    """A part's PDU must not go out after all: the commit before it did not record it
    'writing' (it failed, or the message is no longer this modem's). Nothing was written."""


# A job on a sender's queue that is not a message id: check a failing modem.
_PROBE = "probe"


@dataclass
class _Slot:
    modem_id: str
    config: ModemConfig | None
    health: SendHealth
    link: ModemLink | None = None
    down_since: datetime | None = None
    # Jobs handed to the sender and not finished: the message being sent and the one prepared
    # behind it (so that its PDU is ready when the modem answers), or a check.
    held: int = 0
    # Messages claimed for this modem and not finished: id -> parts not sent yet (counted
    # against its rate limits before they go, so that a prepared message cannot overrun them).
    claimed: dict = field(default_factory=dict)
    recent: collections.deque = field(default_factory=collections.deque)  # send times, 1 min
    day: str = ""
    day_count: int = 0
    jobs: queue.Queue = field(default_factory=queue.Queue)
    thread: threading.Thread | None = None
    last_used: datetime | None = None
    shown: dict | None = None  # the health last announced
    # Parts recorded 'writing' ahead, in the transaction that took the answer to the part
    # before them (so that one commit, not two, stands between the modem's answer and the next
    # PDU): message id -> part id. Taken by the sender when it writes that part; a message
    # that leaves the modem unwritten gets its part back to 'pending' (_unmark).
    marked: dict = field(default_factory=dict)
    # Parts of the messages prepared behind another (message id -> parts as claimed, with
    # their PDUs), so that at the modem's answer the next AT+CMGS goes out with nothing read.
    plans: dict = field(default_factory=dict)

    @property
    def routable(self) -> bool:
        """Up, and not out of routing for failing sends."""
        return self.link is not None and self.health.routable

    @property
    def busy(self) -> bool:
        return self.held > 0

    @property
    def depth(self) -> int:
        """How many messages it may hold: one being sent and one prepared behind it, or only
        one while it is on trial (a message that fails there must not take a second along)."""
        return PREPARED_DEPTH if self.health.state is SendState.OK else 1

    @property
    def has_room(self) -> bool:
        return self.routable and self.held < self.depth

    @property
    def parts_ahead(self) -> int:
        """Parts claimed for it and not sent yet."""
        return sum(self.claimed.values())


class _Carry:
    """The answer to a message's last part, taken and not committed yet.

    Its transaction (the part sent, the message sent, the profile's sticky modem, the modem's
    count, and the first part of the message prepared behind it recorded 'writing') is made by
    the next message's sender step between that part's ``AT+CMGS`` line and its PDU, while the
    modem turns round its prompt; its announcements once that PDU is out. So that nothing but
    a thread wake-up stands between the modem's answer and the next ``AT+CMGS``, and the
    commit overlaps the prompt. :meth:`run` does whatever is left of both, once.
    """

    def __init__(
        self, dispatcher: Dispatcher, slot: _Slot, row, part_id: int, tp_mr: int, following: int
    ) -> None:
        self.dispatcher, self.slot, self.row = dispatcher, slot, row
        self.part_id, self.tp_mr, self.following = part_id, tp_mr, following
        self.tried = False
        self.committed = False
        self.announced = False

    def commit(self) -> bool:
        """Commit (once); whether it was committed. A failure is this message's: it is put
        back in the queue as after any error while sending."""
        if self.tried:
            return self.committed
        self.tried = True
        d = self.dispatcher
        try:
            d._finish_commit(self.slot, self.row, self.part_id, self.tp_mr, self.following)
        except Exception:  # the store refused it (a full disk): as _sender does for any error
            log.exception(
                "modem %s: recording message %s as sent failed", self.slot.modem_id, self.row["id"]
            )
            d._requeue_after_error(self.slot, self.row["id"])
            return False
        self.committed = True
        return True

    def announce(self) -> None:
        """Once committed: the early status report and the announcement (once)."""
        if self.announced or not self.committed:
            return
        self.announced = True
        try:
            self.dispatcher._finish_announce(self.slot, self.row, self.tp_mr)
        except Exception:  # it is committed: a failed announcement must not resend it
            log.exception("message %s: announcing it sent failed", self.row["id"])

    def run(self) -> None:
        self.commit()
        self.announce()


class _Step:
    """What goes with writing one part: the commit that records it 'writing' before its PDU
    (with the previous part's answer, or the previous message's :class:`_Carry`, in one
    transaction; nothing when the claim recorded it already), and what to do once the PDU is
    out."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        slot: _Slot,
        message_id: int,
        part_id: int,
        carry: _Carry | None,
        answered: tuple[int, int] | None,
    ) -> None:
        self.d, self.slot, self.message_id, self.part_id = dispatcher, slot, message_id, part_id
        self.carry, self.answered = carry, answered
        self.tried = False
        self.failed: Exception | None = None  # the store's error, when the commit failed
        self.hooks: list[Callable[[], None]] = []  # after the part's answer is committed

    def commit(self) -> None:
        """Record the part 'writing' (runs once, before its PDU); raises :class:`_Withheld`
        when it must not be written, or the store's error."""
        if self.tried:
            return
        self.tried = True
        d, slot, messages = self.d, self.slot, self.d.store.messages
        if self.carry is not None:
            ok = self.carry.commit()  # records this part 'writing' with the answer before it
            with d._lock:
                mine = slot.marked.get(self.message_id) == self.part_id
                # The modem may have gone down or out of routing meanwhile: as for a message
                # prepared behind another, it is then given back unwritten.
                go = ok and mine and slot.routable and not d._stop.is_set()
                if go:
                    del slot.marked[self.message_id]
            if not go:
                raise _Withheld(f"part {self.part_id} is not to be written now")
            return
        try:
            if self.answered is not None:
                with d.store.db.tx():
                    messages.part_sent(*self.answered)
                    messages.part_writing(self.part_id, slot.modem_id)
                return
            with d._lock:
                ahead = slot.marked.get(self.message_id) == self.part_id
                if ahead:
                    del slot.marked[self.message_id]
            if not ahead:
                messages.part_writing(self.part_id, slot.modem_id)
        except Exception as exc:
            self.failed = exc
            raise

    def after(self) -> None:
        """Once the PDU is out (or the send ended): the answer before it announced."""
        if self.carry is not None:
            self.carry.announce()
        hooks, self.hooks = self.hooks, []
        for hook in hooks:
            hook()


class Dispatcher:
    """Owns the routing thread and the per-modem sender threads."""

    def __init__(
        self,
        config: Config,
        store: Store,
        events: EventBus,
        *,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.config = config
        self.store = store
        self.events = events
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}
        self._started = clock()
        # Messages left 'sending' because the store could not take their outcome (a full
        # disk): the routing thread puts them back in the queue once it can write again.
        self._stranded: set[int] = set()
        self._thread: threading.Thread | None = None
        self._last_sweep: datetime | None = None  # when expired messages were last swept
        # Called with (modem id, recipient, TP-MR) once a part is recorded as sent: a status
        # report that overtook the +CMGS answer is matched then (the daemon wires Inbound's).
        self.on_part_sent: Callable[[str, str, int], None] | None = None
        # Checks a failing modem on its sender thread: None when it looks ready to send, else
        # what is wrong (the daemon wires the modem manager's check; without one, the trial
        # message alone decides).
        self.probe: Callable[[str], str | None] | None = None
        # Called with (modem id, SendHealth.snapshot()) when a modem's sending health changes,
        # outside the dispatcher's lock (the daemon shows it with the modem's status).
        self.on_health: Callable[[str, dict], None] | None = None
        # Modems that failed a queued message by their own fault: it goes to another of the
        # pool next. One that every modem it tried failed is suspect (the fault may be its
        # own): no modem on trial gets it. Forgotten once the message is final.
        self._failed_on: dict[int, set[str]] = {}
        # Parts sent and failed per modem and how long each took, for /metrics.
        self.stats = SendStats()
        for mc in config.modems:
            self._slots[mc.id] = self._new_slot(mc.id, mc)

    def _new_slot(self, modem_id: str, config: ModemConfig | None) -> _Slot:
        r = self.config.routing
        health = SendHealth(r.failing_after, r.probe_seconds, r.probe_max_seconds)
        return _Slot(modem_id, config, health, down_since=self._started)

    # -- wiring --------------------------------------------------------------------------

    def wake(self) -> None:
        """Something changed: look at the queue again (cheap; callable from any thread)."""
        self._wake.set()

    def start(self) -> None:
        recovered = self.store.messages.recover_after_crash()
        if recovered:
            log.warning(
                "%d message(s) were being sent when the gateway stopped; they go out again and "
                "are marked as possible duplicates",
                len(recovered),
            )
        self._load_day_counts()
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop routing; let each sender finish the part in flight (never half a command)."""
        with self._lock:  # so that no sender is started again once they were told to stop
            self._stop.set()
        self._wake.set()
        with self._lock:
            slots = list(self._slots.values())
        for slot in slots:
            slot.jobs.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        for slot in slots:
            if slot.thread is not None:
                slot.thread.join(timeout)

    def modem_up(self, modem_id: str, link: ModemLink) -> None:
        """A modem is ready to send (called by the modem manager)."""
        with self._lock:
            slot = self._slots.get(modem_id)
            if slot is None:
                slot = self._slots[modem_id] = self._new_slot(modem_id, None)
            slot.link = link
            slot.down_since = None
            slot.health.reset(self.clock())
            if slot.thread is None or not slot.thread.is_alive():
                slot.thread = threading.Thread(
                    target=self._sender, args=(slot,), name=f"send-{modem_id}", daemon=True
                )
                slot.thread.start()
        self._show_health(modem_id)
        self.wake()

    def modem_down(self, modem_id: str) -> None:
        """A modem stopped answering or was unplugged."""
        with self._lock:
            slot = self._slots.get(modem_id)
            if slot is not None and slot.link is not None:
                slot.link = None
                slot.down_since = self.clock()
        self.wake()

    @property
    def alive(self) -> bool:
        """Whether the routing thread runs (the systemd watchdog is fed only then)."""
        return self._thread is not None and self._thread.is_alive()

    def healthy(self, modem_id: str) -> bool:
        """Whether the manager has handed this modem over as up (whatever its sends do)."""
        with self._lock:
            slot = self._slots.get(modem_id)
            return slot is not None and slot.link is not None

    def routable(self, modem_id: str) -> bool:
        """Whether messages are routed to this modem now: up, and not failing its sends."""
        with self._lock:
            slot = self._slots.get(modem_id)
            return slot is not None and slot.routable

    def send_health(self, modem_id: str) -> dict | None:
        """The modem's sending health (:meth:`SendHealth.snapshot`), None if unknown."""
        with self._lock:
            slot = self._slots.get(modem_id)
            return slot.health.snapshot() if slot is not None else None

    def in_hand(self, modem_id: str) -> list[int]:
        """The messages handed to this modem's sender and not finished: the one it sends and
        the one prepared behind it, in no order (for tools and tests)."""
        with self._lock:
            slot = self._slots.get(modem_id)
            return list(slot.claimed) if slot is not None else []

    def short_code_up(self, code: str) -> bool:
        """Whether any modem of this short code's pool can send now."""
        try:
            sc = self.config.short_code(code)
        except KeyError:
            return False
        return any(self.routable(m) for m in sc.modems)

    def _show_health(self, modem_id: str) -> None:
        """Tell on_health when the modem's sending health changed since it was last told.
        Never called holding the lock: the callback may ask the dispatcher back."""
        with self._lock:
            slot = self._slots.get(modem_id)
            if slot is None:
                return
            snap = slot.health.snapshot()
            if snap == slot.shown:
                return
            before, slot.shown = slot.shown, snap
        if before is None and snap["state"] == SendState.OK.value:
            return  # nothing to tell: it was never anything but ok
        if snap["state"] != SendState.OK.value:
            log.warning(
                "modem %s: sending %s after %d failure(s) in a row (%s); next check %s",
                modem_id,
                snap["state"],
                snap["failures"],
                snap["reason"],
                snap["next_check"] or "with its next message",
            )
        elif before is not None and before["state"] != SendState.OK.value:
            log.info("modem %s: sends again; back in routing", modem_id)
        if self.on_health is not None:
            try:
                self.on_health(modem_id, snap)
            except Exception:  # showing it must not stop routing
                log.exception("modem %s: health callback failed", modem_id)

    # -- routing thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                timeout = self.route_once()
            except StoreError as exc:  # a full disk, say: the store logs it in full itself
                log.warning("dispatcher: routing paused: %s", exc)
                timeout = 5.0
            except Exception:  # the router must survive a bad row or a store hiccup
                log.exception("dispatcher: routing failed; trying again shortly")
                timeout = 5.0
            if self._stranded:
                timeout = min(timeout or STRANDED_RETRY_SECONDS, STRANDED_RETRY_SECONDS)
            self._wake.wait(timeout)
            self._wake.clear()

    def route_once(self) -> float | None:
        """One routing pass: assign what can be sent now; return seconds until the next timer
        (a retry, a rate window, quiet hours, an expiry), None if none. The routing thread runs
        it whenever it is woken; tests and tools call it to see at once what waits, and why."""
        self._requeue_stranded()
        at = self.clock()
        if (
            self._last_sweep is None
            or at - self._last_sweep >= timedelta(seconds=EXPIRY_SWEEP_SECONDS)
            or at < self._last_sweep
            or not self._wake_guaranteed()
        ):
            self._last_sweep = at
            for mid, profile_id in self.store.messages.expire_due(iso(at)):
                self._forget(mid)
                self._announce(mid, profile_id, MessageStatus.EXPIRED)
        timers: list[datetime] = []
        with self._lock:
            for slot in self._slots.values():
                self._roll_window(slot, at)
        self._revive_senders()
        timers += self._schedule_probes(at)
        # Page through everything due, so that messages that cannot go now (a short code whose
        # modems are down, a sticky modem in its grace, quiet hours) never hide the ones behind
        # them; stop early once no modem is idle.
        after: tuple[int, int] | None = None
        suspects = []  # failed on several modems: trial messages only when nothing else is
        room = self._any_idle()
        # A small first page: mostly one modem has room for one message, and each row read
        # costs (a pass after every send read 200 rows); pages grow when rows cannot go now.
        page = FIRST_PAGE
        while room:
            rows = self.store.messages.due(iso(at), limit=page, after=after)
            if not rows:
                break
            page = min(page * 4, 200)
            after = (rows[-1]["priority"], rows[-1]["id"])
            for row in rows:
                # Once every modem is full, the rest of the queue waits for the next pass
                # (a modem that finishes wakes it): looking on would cost a check per row.
                room = self._any_idle()
                if not room:
                    break
                if self._refuse_if_no_longer_wanted(row) or self._expired(row, at):
                    continue
                slot, wait_until = self._choose(row, at)
                if wait_until is not None:
                    timers.append(wait_until)
                if slot is not None:
                    self._assign(row, slot, at)
                elif self._suspect(row["id"]) and len(suspects) < 200:
                    suspects.append(row)
        # A modem on trial that no other message came for takes a suspect one: after an outage
        # of the whole pool every queued message failed on every modem.
        for row in suspects:
            if not self._any_idle():
                break
            slot, _ = self._choose(row, at, trial=True)
            if slot is not None:
                self._assign(row, slot, at)
        if not self._wake_guaranteed():
            # Each of these reads every queued row: skipped while a modem sends, since its
            # answer wakes this thread anyway (and a due retry could not go sooner).
            nxt = self.store.messages.next_attempt_time()
            if nxt:
                timers.append(parse(nxt))
            expiry = self.store.messages.next_expiry()
            if expiry:
                timers.append(parse(expiry))
        if not timers:
            return None
        return max(0.05, min((t - at).total_seconds() for t in timers))

    def _assign(self, row, slot: _Slot, at: datetime) -> None:
        """Claim the message for the slot's modem, encode its parts (in the same transaction)
        and hand it to its sender: a message prepared while the modem sends another is ready
        to be written when it answers. A message for an idle modem goes out at once: its first
        part is recorded 'writing' in this transaction too (one commit, not two, between the
        submit and the PDU)."""
        with self._lock:
            idle = slot.held == 0  # only this thread hands jobs over: it stays so until then
        marked = None
        early = None
        if row["parts_total"] == 1:
            # No concatenation reference to take from the store: encoded before the write lock
            # is taken, which a modem's sender may be waiting for to commit before its PDU.
            try:
                early = self._encode(row, slot.config)
            except Exception:
                log.debug("message %d: not encoded ahead", row["id"], exc_info=True)
        with self.store.db.tx():
            if not self.store.messages.claim(row["id"], slot.modem_id):
                return
            if not self.store.messages.parts(row["id"]):
                try:
                    encoded = early if early is not None else self._encode(row, slot.config)
                except Exception:
                    log.debug("message %d: not encoded ahead", row["id"], exc_info=True)
                else:
                    self._store_parts(row["id"], encoded)
            if idle:
                marked = self._mark_first_part(slot, row["id"])
                plan = None
            else:
                plan = [dict(p) for p in self.store.messages.parts(row["id"])]
        # Announced before the sender can have it, so that 'sending' never comes after 'sent'.
        self._announce(row["id"], row["profile_id"], MessageStatus.SENDING, modem_id=slot.modem_id)
        with self._lock:  # all at once: in_hand() shows it when the sender has it
            if marked is not None:
                slot.marked[row["id"]] = marked
            if plan:
                slot.plans[row["id"]] = plan
            slot.held += 1
            slot.claimed[row["id"]] = int(row["parts_total"])
            slot.last_used = at
            slot.jobs.put(row["id"])

    def _expired(self, row, at: datetime) -> bool:
        """A row past its expiry that the last sweep did not catch: expired now, not sent."""
        if row["expires_at"] is None or parse(row["expires_at"]) > at:
            return False
        if self.store.messages.expire_if_due(row["id"], iso(at)):
            self._forget(row["id"])
            self._announce(row["id"], row["profile_id"], MessageStatus.EXPIRED)
        return True

    def _suspect(self, message_id: int) -> bool:
        with self._lock:
            return len(self._failed_on.get(message_id, ())) > 1

    def _any_idle(self) -> bool:
        """Whether some modem can take a message now (or a prepared one behind its current)."""
        with self._lock:
            return any(s.has_room for s in self._slots.values())

    def _wake_guaranteed(self) -> bool:
        """Whether a modem is sending, so that this thread is woken when it is done."""
        with self._lock:
            return any(s.routable and s.busy for s in self._slots.values())

    def _schedule_probes(self, at: datetime) -> list[datetime]:
        """Hand a check to each failing modem whose pause is over; return when the others'
        are due."""
        later = []
        with self._lock:
            for slot in self._slots.values():
                if slot.link is None or slot.health.state is not SendState.FAILING:
                    continue
                if slot.busy:
                    continue  # woken when its current job finishes
                if slot.health.probe_due(at):
                    slot.held += 1
                    slot.jobs.put(_PROBE)
                elif slot.health.probe_at is not None:
                    later.append(slot.health.probe_at)
        return later

    def _forget(self, message_id: int) -> None:
        with self._lock:
            self._failed_on.pop(message_id, None)

    def _revive_senders(self) -> None:
        """A sender thread that died (a bug, a store error while recording a failure) is
        started again, so its modem's messages are not stuck in 'sending'. Not while stopping:
        a sender that took its stop sign is not dead, and one started now would never end."""
        with self._lock:
            if self._stop.is_set():
                return
            for slot in self._slots.values():
                if slot.link is not None and slot.thread is not None and not slot.thread.is_alive():
                    log.error("modem %s: sender thread died; starting it again", slot.modem_id)
                    slot.held = slot.jobs.qsize()
                    slot.thread = threading.Thread(
                        target=self._sender, args=(slot,), name=f"send-{slot.modem_id}", daemon=True
                    )
                    slot.thread.start()

    def _refuse_if_no_longer_wanted(self, row) -> bool:
        """A recipient who opted out or was deactivated after the message was queued does not
        get it (a keyword's own confirmation excepted): the same rule as at submit time
        (:func:`.eligibility.refusal`), asked again. True when the message was
        failed."""
        if row["created_by"] == "keyword":
            return False
        # "subscribed" is the row's subscription to the message's own short code, read with
        # the store's one rule (store/subscriptions.py) in the same query as the message.
        profile = {
            "status": row["profile_status"],
            "subscribed": row["subscribed_all"],
            "phone": row["phone"],
        }
        # The number itself was checked when the message was accepted (Outbox.submit).
        reason = refusal(profile, bool(row["subscribed"]), row["short_code"], number_checked=True)
        if reason is None:
            return False
        self._fail(row, f"{reason} Found at send time: it was queued before.")
        return True

    def _announce(
        self, message_id: int, profile_id: int, status: MessageStatus, **extra: object
    ) -> None:
        self.events.publish(
            "message.status", id=message_id, profile_id=profile_id, status=status, **extra
        )

    def _fail(self, row, reason: str) -> None:
        """A queued message that will never be sent: failed with the reason, announced."""
        self.store.messages.fail(row["id"], reason)
        self._forget(row["id"])
        self._announce(row["id"], row["profile_id"], MessageStatus.FAILED, error=reason)

    def _choose(
        self, row, at: datetime, *, trial: bool = False
    ) -> tuple[_Slot | None, datetime | None]:
        """The modem to send ``row`` now, or when to look again. ``trial``: a message that
        failed on several modems may go to one on trial."""
        try:
            sc = self.config.short_code(row["short_code"])
        except KeyError:
            self._fail(row, f"short code {row['short_code']} is no longer configured")
            return None, None
        grace = timedelta(minutes=self.config.routing.sticky_grace_minutes)
        bulk = row["priority"] >= PRIORITY_BULK
        pinned = None
        # Parts already out came from one SIM: the rest must follow from the same number, or
        # the handset cannot join them.
        if row["attempts"] and row["modem_id"] and self.store.messages.has_sent_parts(row["id"]):
            pinned = row["modem_id"]
        with self._lock:
            pool = [self._slots[m] for m in sc.modems if m in self._slots]
            avoid = self._failed_on.get(row["id"], set())
            sticky = pinned or row["sticky_modem"]
            sticky_slot = self._slots.get(sticky) if sticky in sc.modems else None
            # A message that failed somewhere, or the rest of a partly sent one, goes only to
            # an idle modem, never prepared behind another message (it may fail again).
            alone = bool(avoid) or trial or pinned is not None
            # A modem that failed this message, or fails every send, keeps none of its profiles:
            # it has shown it cannot send, unlike one that is briefly down.
            if (
                sticky_slot is not None
                and not pinned
                and (sticky in avoid or (sticky_slot.link is not None and not sticky_slot.routable))
            ):
                sticky_slot = None
            if sticky_slot is not None:
                if sticky_slot.routable:
                    return self._if_ready(sticky_slot, at, bulk, row["parts_total"], alone)
                # Down, or (for the rest of a partly sent message) failing: wait the grace.
                failing = sticky_slot.link is not None
                since = (sticky_slot.health.since if failing else sticky_slot.down_since) or at
                down_for = at - since
                if down_for < grace:
                    return None, since + grace
                if pinned:
                    log.warning(
                        "message %d: modem %s is down or failing for %s; sending all its parts "
                        "again through another modem of the pool",
                        row["id"],
                        pinned,
                        down_for,
                    )
                    self.store.messages.reset_parts(row["id"])
            ready = []
            wake_at: list[datetime] = []
            candidates = [s for s in pool if s.routable and s.modem_id not in avoid]
            if not candidates:  # every modem that could take it failed it: any of them
                candidates = [s for s in pool if s.routable]
            if len(avoid) > 1 and not trial:
                # Failed by more than one modem: it must not decide whether a modem on trial
                # is back while others can (a message that fails everywhere would keep the
                # pool out).
                candidates = [s for s in candidates if s.health.state is SendState.OK]
            for slot in candidates:
                chosen, when = self._if_ready(slot, at, bulk, row["parts_total"], alone)
                if chosen is not None:
                    ready.append(chosen)
                elif when is not None:
                    wake_at.append(when)
            if not ready:
                return None, min(wake_at) if wake_at else None
            ready.sort(
                key=lambda s: (
                    s.held,  # an idle modem before one that would hold it behind another
                    s.modem_id != sc.default_modem,
                    s.last_used or datetime.min.replace(tzinfo=at.tzinfo),
                )
            )
            return ready[0], None

    def _if_ready(self, slot: _Slot, at: datetime, bulk: bool, parts: int = 1, alone: bool = False):
        """(slot, None) when it can take a message now, else (None, when it might). ``alone``:
        only when it holds no other message."""
        if slot.held >= (1 if alone else slot.depth):
            return None, None  # woken when its current send finishes
        cfg = slot.config
        if cfg is not None:
            limit = cfg.rate_limit
            # Counted in SMS parts, those claimed and not sent yet included: a message fits
            # when its parts do (or nothing is in the window, so that a message longer than
            # the limit still goes, alone).
            ahead = slot.parts_ahead
            if (
                limit.per_minute is not None
                and (slot.recent or ahead)
                and len(slot.recent) + ahead + parts > limit.per_minute
            ):
                # Woken when a claimed message finishes, or when the window moves.
                return None, slot.recent[0] + timedelta(minutes=1) if slot.recent else None
            if (
                limit.per_day is not None
                and (slot.day_count or ahead)
                and slot.day_count + ahead + parts > limit.per_day
            ):
                local = at.astimezone(self.config.tz)
                tomorrow = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0)
                return None, tomorrow
            if bulk and cfg.quiet_hours is not None:
                local = at.astimezone(self.config.tz)
                if cfg.quiet_hours.contains(local.time()):
                    end = local.replace(
                        hour=cfg.quiet_hours.end.hour,
                        minute=cfg.quiet_hours.end.minute,
                        second=0,
                        microsecond=0,
                    )
                    if end <= local:
                        end += timedelta(days=1)
                    return None, end
        return slot, None

    def _roll_window(self, slot: _Slot, at: datetime) -> None:
        while slot.recent and slot.recent[0] <= at - timedelta(minutes=1):
            slot.recent.popleft()
        today = at.astimezone(self.config.tz).date().isoformat()
        if slot.day != today:
            slot.day, slot.day_count = today, 0

    def _load_day_counts(self) -> None:
        at = self.clock()
        local_midnight = at.astimezone(self.config.tz).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        sent = self.store.messages.parts_sent_per_modem(iso(local_midnight))
        for modem_id, count in sent.items():
            slot = self._slots.get(modem_id)
            if slot is not None:
                slot.day = at.astimezone(self.config.tz).date().isoformat()
                slot.day_count = count

    # -- sender threads ------------------------------------------------------------------

    def _sender(self, slot: _Slot) -> None:
        # The answer to the last message's last part, left for the next message to commit
        # before its first PDU (see _Carry); run on every other way.
        carry: _Carry | None = None
        while True:
            message_id = slot.jobs.get()
            given, carry = carry, None
            if given is not None and not isinstance(message_id, int):
                given.run()  # not a message behind it after all: committed now
                given = None
            if message_id is None:
                return
            if message_id == _PROBE:
                try:
                    self._probe(slot)
                finally:
                    with self._lock:
                        slot.held -= 1
                    self.wake()
                continue
            try:
                if given is not None and (self._stop.is_set() or not slot.routable):
                    given.run()
                if self._stop.is_set():
                    # Shutting down: a claimed message not started yet goes back to the queue
                    # at once; only a send already under way is finished.
                    self._unmark(slot, message_id)
                    self.store.messages.unclaim(message_id)
                    continue
                if not slot.routable:
                    # Claimed (prepared behind another) while the modem could send; it went
                    # down or out of routing since: back to the queue, for the rest of the
                    # pool, as if never claimed.
                    self._give_back(slot, message_id)
                    continue
                carry = self._send(slot, message_id, given)
            except Exception:  # a bug must not kill the modem's sender: log, requeue, go on
                log.exception("modem %s: sending message %s failed", slot.modem_id, message_id)
                self._requeue_after_error(slot, message_id)
            finally:
                with self._lock:
                    slot.held -= 1
                    slot.claimed.pop(message_id, None)
                    slot.plans.pop(message_id, None)
                    # A part marked ahead and not written must not stay 'writing' (a resend
                    # would skip it): _unmark ran on every way out that left it unwritten.
                    leftover = slot.marked.pop(message_id, None)
                if leftover is not None:
                    log.error(
                        "message %s: part %s was marked ahead and left unwritten",
                        message_id,
                        leftover,
                    )
                    self.store.messages.part_not_written(leftover)
                # The router prepares the next message; with one already waiting here, it is
                # woken when that one's PDU goes out instead (_send): woken now, it would take
                # the interpreter from this thread between the answer and the next PDU.
                if slot.jobs.empty():
                    # Nothing more in hand: the connection goes back to the store's small pool
                    # (eight senders each holding one were ~3 MiB of SQLite's heap for good);
                    # the next message takes one from the pool.
                    self.store.release_connection()
                    self.wake()

    def _give_back(self, slot: _Slot, message_id: int) -> None:
        """A claimed message this modem will not send after all goes back to the queue, its
        attempt not counted."""
        self._unmark(slot, message_id)
        self.store.messages.unclaim(message_id)
        row = self.store.messages.get(message_id)
        if row is not None and row["status"] == MessageStatus.QUEUED:
            log.info(
                "message %d: back to the queue; modem %s stopped sending before it",
                message_id,
                slot.modem_id,
            )
            self._announce(message_id, row["profile_id"], MessageStatus.QUEUED)

    def _probe(self, slot: _Slot) -> None:
        """Check a failing modem (on its sender thread, the only one that sends on it)."""
        if self._stop.is_set():
            return
        problem = None
        if self.probe is not None:
            try:
                problem = self.probe(slot.modem_id)
            except Exception as exc:  # a broken check must not stop the sender: it failed
                log.exception("modem %s: checking it failed", slot.modem_id)
                problem = f"the check failed: {exc!r}"
        with self._lock:
            slot.health.checked(self.clock(), problem)
        self._show_health(slot.modem_id)

    def _requeue_after_error(self, slot: _Slot, message_id: int) -> None:
        failure = Failure(
            Blame.RETRY, False, "internal error while sending; it will be tried again"
        )
        try:
            self._unmark(slot, message_id)
            self._after_failure(message_id, slot, failure)
        except Exception:  # the store itself failed: at least do not leave it 'sending'
            log.exception("message %s: could not record the failure", message_id)
            try:
                self.store.messages.unclaim(message_id)
            except Exception:
                log.exception(
                    "message %s: could not put it back in the queue either; it goes back as "
                    "soon as the store can be written, without a restart",
                    message_id,
                )
                with self._lock:
                    self._stranded.add(message_id)

    def _requeue_stranded(self) -> None:
        """Put back in the queue the messages whose outcome the store could not take, as a
        restart would (a part that may have gone out is sent again, marked a possible
        duplicate). Those the store still refuses stay for the next pass."""
        with self._lock:
            stranded = sorted(self._stranded)
        for message_id in stranded:
            try:
                requeued = self.store.messages.requeue_stranded(message_id)
            except StoreError as exc:  # still full: the next pass tries again
                log.warning("message %s is still 'sending': %s", message_id, exc)
                return
            with self._lock:
                self._stranded.discard(message_id)
            if requeued:
                log.warning("message %s is back in the queue after a store error", message_id)

    def _encode(self, row, modem: ModemConfig | None) -> list[smspdu.SubmitPart]:
        limits = self.config.messages
        reference = None
        if row["parts_total"] > 1:
            reference = self.store.refs.next(row["phone"], bits=16 if limits.ref16 else 8)
        return smspdu.encode_submit(
            row["phone"],
            row["body"],
            smsc=modem.smsc if modem else None,
            status_report=modem.status_reports if modem else False,
            validity_minutes=limits.validity_minutes,
            ref16=limits.ref16,
            reference=reference,
            max_parts=max(limits.max_parts, row["parts_total"]),
        )

    def _send(self, slot: _Slot, message_id: int, carry: _Carry | None = None) -> _Carry | None:
        """Send the message's pending parts. ``carry``: the answer to the message before it,
        committed with this message's first part 'writing' before that part's PDU goes out (or
        at once when this message cannot take it). Returns this message's own last answer when
        the message prepared behind it is to commit it the same way, else None."""
        try:
            return self._send_parts(slot, message_id, carry)
        finally:
            if carry is not None:
                carry.run()  # whatever the send did: the answer before it is recorded

    def _planned_first(self, slot: _Slot, message_id: int) -> dict | None:
        """The first part of a message prepared behind another, as claimed (its PDU ready
        before the modem answers the message in front), or None to read it from the store."""
        with self._lock:
            plan = slot.plans.pop(message_id, None)
        if not plan or plan[0]["status"] != PartStatus.PENDING:
            return None
        return plan[0]

    def _send_parts(self, slot: _Slot, message_id: int, carry: _Carry | None) -> _Carry | None:
        first = self._planned_first(slot, message_id) if carry is not None else None
        row = None
        if first is None:
            if carry is not None:
                carry.run()
            row = self.store.messages.get(message_id)
            if row is None or row["status"] != MessageStatus.SENDING:
                self._unmark(slot, message_id)  # no longer this modem's to send
                return None
            parts = self.store.messages.parts(message_id)
            if not parts:  # not encoded ahead (or its parts were reset)
                encoded = self._encode(row, slot.config)
                with self.store.db.tx():
                    self._store_parts(message_id, encoded)
                parts = self.store.messages.parts(message_id)
            with self._lock:
                ahead = slot.marked.get(message_id)
            pending = [p for p in parts if p["status"] == PartStatus.PENDING or p["id"] == ahead]
        else:
            # The rest of the message (and its row) is read while the modem works on this part.
            pending = [first]
        answered: tuple[int, int] | None = None  # the previous part's answer, not recorded yet
        hooks: list[Callable[[], None]] = []  # to run once that answer is recorded
        i = 0
        while i < len(pending):
            part = pending[i]
            link = slot.link
            if link is None:
                self._record_answer_alone(slot, answered)
                self._unmark(slot, message_id)
                down = Failure(Blame.MODEM, False, "the modem is down")
                self._after_failure(message_id, slot, down)
                return None
            step = _Step(self, slot, message_id, part["id"], carry, answered)
            step.hooks, hooks = hooks, []
            read: dict = {}

            def during(step=step, read=read, first_out=i == 0, need_row=row is None) -> None:
                step.after()
                if first_out:
                    self.wake()  # the router prepares the next message while the modem works
                    if need_row:
                        # Only read ahead: a failure here must not pass for the send's own (the
                        # part is out); it is read again after the answer.
                        try:
                            read["row"] = self.store.messages.get(message_id)
                            read["parts"] = self.store.messages.parts(message_id)
                        except Exception:
                            log.exception("message %d: reading it ahead failed", message_id)
                            read.clear()

            started = time.monotonic()
            try:
                tp_mr = self._write_part(link, part["pdu"], part["length"], step.commit, during)
            except _Withheld:
                # Nothing was written: the message goes back to the queue if its modem stopped
                # (or the daemon stops), else it is sent the slow way.
                step.after()
                if self._stop.is_set() or not slot.routable:
                    self._give_back(slot, message_id)
                    return None
                return self._send_parts(slot, message_id, None)
            except Exception as exc:  # every failure is classified and recorded
                if step.failed is not None:
                    raise  # the store refused the commit: not the modem's fault
                if not step.tried:
                    # Failed before its commit (writing AT+CMGS): recorded 'writing' now, as
                    # every failed part was before its attempt.
                    try:
                        step.commit()
                    except _Withheld:
                        step.after()
                        self._requeue_after_error(slot, message_id)
                        return None
                step.after()
                if row is None:
                    row = self.store.messages.get(message_id)
                failure = classify(exc)
                self.stats.failed(slot.modem_id, failure.blame, time.monotonic() - started)
                log.warning(
                    "modem %s: part %d/%d of message %d not sent: %s",
                    slot.modem_id,
                    part["seq"],
                    row["parts_total"] if row is not None else 0,
                    message_id,
                    failure.reason,
                )
                self.store.messages.part_unsent(
                    part["id"], failure.reason, maybe_sent=failure.maybe_sent
                )
                if failure.blame is Blame.MODEM:
                    with self._lock:
                        slot.health.failed(self.clock(), failure.reason)
                    self._show_health(slot.modem_id)
                self._after_failure(message_id, slot, failure)
                return None
            carry = None  # recorded by the step
            self.stats.sent(slot.modem_id, time.monotonic() - started)
            with self._lock:
                slot.health.sent(self.clock())
            self._show_health(slot.modem_id)
            if row is None:
                row = read.get("row") or self.store.messages.get(message_id)
                parts = read.get("parts") or self.store.messages.parts(message_id)
                pending += [p for p in parts if p["status"] == PartStatus.PENDING]
            self._count_part(slot, message_id)
            if i < len(pending) - 1:
                # Recorded with the next part's 'writing', in one transaction (_Step).
                answered = (part["id"], tp_mr)
                hooks.append(lambda phone=row["phone"], mr=tp_mr: self._hook_part(slot, phone, mr))
                i += 1
                continue
            # The last part's answer and the message's end in one transaction, with the first
            # part of the message prepared behind it recorded 'writing': committed by that
            # message, between its AT+CMGS line and its PDU, when its PDU is ready.
            following = self._prepared_behind(slot)
            if following is not None:
                with self._lock:
                    ready = bool(slot.plans.get(following))
                if ready:
                    return _Carry(self, slot, row, part["id"], tp_mr, following)
            self._finish(slot, row, part["id"], tp_mr)
            return None
        if not pending:  # every part was out already (a resend after a crash found them so)
            self._finish(slot, row, None, None)
        return None

    @staticmethod
    def _write_part(
        link: ModemLink,
        pdu: str,
        length: int,
        before: Callable[[], None],
        during: Callable[[], None],
    ) -> int:
        """Write one PDU: ``before`` (the commit recording it 'writing') before its bytes go
        out, ``during`` once they are out (see :class:`StagedLink`)."""
        if isinstance(link, StagedLink):
            return link.send_pdu(pdu, length, before_payload=before, while_waiting=during)
        before()
        during()
        return link.send_pdu(pdu, length)

    def _record_answer_alone(self, slot: _Slot, answered: tuple[int, int] | None) -> None:
        """A part's answer that was to be recorded with the next part's 'writing', recorded
        alone (the next part does not go out)."""
        if answered is not None:
            self.store.messages.part_sent(answered[0], answered[1])

    def _count_part(self, slot: _Slot, message_id: int) -> None:
        """A part the network took: counted against the modem's rate limits at once (before
        its answer is committed, so that the router never sees it neither claimed nor sent)."""
        with self._lock:
            slot.recent.append(self.clock())
            slot.day_count += 1
            left = slot.claimed.get(message_id)
            if left:
                slot.claimed[message_id] = left - 1

    def _hook_part(self, slot: _Slot, phone: str, tp_mr: int) -> None:
        """A part recorded as sent: an early status report for it applied (outside any
        transaction: the hook takes its own lock first)."""
        if self.on_part_sent is not None:
            try:
                self.on_part_sent(slot.modem_id, phone, tp_mr)
            except Exception:  # the part is out: a failing hook must not resend it
                log.exception("modem %s: matching an early status report failed", slot.modem_id)

    def _finish(self, slot: _Slot, row, part_id: int | None, tp_mr: int | None) -> None:
        """Record the last part's answer, the message as sent, the profile's sticky modem and
        the modem's count in one transaction, then apply a status report that came early."""
        following = self._prepared_behind(slot)
        self._finish_commit(slot, row, part_id, tp_mr, following)
        self._finish_announce(slot, row, tp_mr)

    def _finish_commit(
        self, slot: _Slot, row, part_id: int | None, tp_mr: int | None, following: int | None
    ) -> None:
        """The transaction of :meth:`_finish` (with the first part of ``following``, the
        message prepared behind, recorded 'writing')."""
        message_id = row["id"]
        with self.store.db.tx():
            if part_id is not None and tp_mr is not None:
                self.store.messages.part_sent(part_id, tp_mr)
            self.store.messages.finish_sending(message_id)
            self.store.profiles.set_sticky_modem(row["profile_id"], slot.modem_id)
            self.store.modems.count(slot.modem_id, sent=1)
            marked = self._mark_first_part(slot, following) if following is not None else None
        if marked is not None:
            with self._lock:
                slot.marked[following] = marked

    def _finish_announce(self, slot: _Slot, row, tp_mr: int | None) -> None:
        """After :meth:`_finish_commit`: the early status report and the announcement."""
        message_id = row["id"]
        self._forget(message_id)
        if tp_mr is not None:
            self._hook_part(slot, row["phone"], tp_mr)
        # The status as it is now, read and announced holding the store's write lock, last
        # (whoever the event wakes finds it committed, and the modem free a moment later; a
        # transaction that writes nothing costs no sync). A status report can overtake the
        # +CMGS answer: applied by the hook above or by the inbound thread before this, it is
        # seen here; applied after, it is announced after this ("sent" never comes after
        # "delivered", which left a browser showing "sent" for good).
        with self.store.db.tx():
            current = self.store.messages.get(message_id)
            status = MessageStatus(current["status"]) if current is not None else MessageStatus.SENT
            self._announce(message_id, row["profile_id"], status, modem_id=slot.modem_id)

    def _prepared_behind(self, slot: _Slot) -> int | None:
        """The message next on the slot's queue (prepared while this one was sent), if the
        next job is one and the modem can still send it. Read by the slot's own sender, the
        only one that takes from its queue, so it is still next when the sender gets there."""
        with self._lock:
            if self._stop.is_set() or not slot.routable:
                return None
        with slot.jobs.mutex:
            nxt = slot.jobs.queue[0] if slot.jobs.queue else None
        return nxt if isinstance(nxt, int) else None

    def _mark_first_part(self, slot: _Slot, message_id: int) -> int | None:
        """Inside the caller's transaction: record the first pending part of a message
        claimed for this modem as 'writing' (it goes out next, as soon as the transaction is
        committed); its id, or None when it has no such part (not encoded ahead, or no longer
        this modem's to send)."""
        row = self.store.messages.get(message_id)
        if row is None or row["status"] != MessageStatus.SENDING:
            return None
        if row["modem_id"] != slot.modem_id:
            return None
        for part in self.store.messages.parts(message_id):
            if part["status"] == PartStatus.PENDING:
                self.store.messages.part_writing(part["id"], slot.modem_id)
                return int(part["id"])
        return None

    def _unmark(self, slot: _Slot, message_id: int) -> None:
        """A part recorded 'writing' ahead and not written (the message leaves this modem, or
        the send stops before that part): 'pending' again, not a possible duplicate."""
        with self._lock:
            part_id = slot.marked.pop(message_id, None)
        if part_id is not None:
            self.store.messages.part_not_written(part_id)

    def _store_parts(self, message_id: int, encoded: list[smspdu.SubmitPart]) -> None:
        """The encoded parts (and the concatenation reference) stored, inside the caller's
        transaction."""
        self.store.messages.ensure_parts(message_id, [(p.seq, p.pdu, p.length) for p in encoded])
        if encoded and encoded[0].reference is not None:
            self.store.messages.set_concat_ref(message_id, encoded[0].reference)

    def _after_failure(self, message_id: int, slot: _Slot, failure: Failure) -> None:
        row = self.store.messages.get(message_id)
        if row is None:
            return
        at = self.clock()
        expired = row["expires_at"] is not None and parse(row["expires_at"]) <= at
        if failure.blame is Blame.MODEM and not expired and self._elsewhere(row, slot):
            # Not the message's fault: at once to another modem, and not counted against it.
            self.store.messages.requeue(
                message_id, f"modem {slot.modem_id}: {failure.reason}; trying another modem"
            )
            status = MessageStatus.QUEUED
        elif failure.temporary and not expired:
            attempts = max(1, int(row["attempts"]))
            limits = self.config.messages
            delay = min(
                limits.retry_initial_seconds * 2 ** (attempts - 1), limits.retry_max_seconds
            )
            self.store.messages.defer(
                message_id, failure.reason, iso(at + timedelta(seconds=delay))
            )
            status = MessageStatus.QUEUED
        else:
            status = MessageStatus.EXPIRED if failure.temporary else MessageStatus.FAILED
            self._forget(message_id)
            self.store.messages.fail(message_id, failure.reason, status)
            self.store.modems.count(slot.modem_id, failed=1)
        self._announce(
            message_id, row["profile_id"], status, error=failure.reason, modem_id=slot.modem_id
        )

    def _elsewhere(self, row, slot: _Slot) -> bool:
        """Whether a message ``slot``'s modem failed can go to another modem of its pool that
        has not failed it yet (noted here). Not for the rest of a partly sent message: that
        stays with the modem that sent its first parts (or waits the grace)."""
        if self.store.messages.has_sent_parts(row["id"]):
            return False
        try:
            pool = self.config.short_code(row["short_code"]).modems
        except KeyError:
            return False
        with self._lock:
            avoid = self._failed_on.setdefault(row["id"], set())
            avoid.add(slot.modem_id)
            # When every modem that can send has failed it: its own backoff from here.
            return any(
                m not in avoid and m in self._slots and self._slots[m].routable for m in pool
            )
