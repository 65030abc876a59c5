"""Inbound: every PDU a modem reads is committed first; then it becomes a message (after
reassembly), its sender a profile, and keywords change the subscription.

The modem layer calls :meth:`Inbound.receive` with the PDU and deletes it from the SIM only
after that returns: a crash at any point loses nothing, and reading a PDU twice stores it once.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..config import Config, ShortCodeConfig
from ..modem import pdu as smspdu
from ..modem.errors import CodecError
from ..phone import normalize_sender
from ..store import RawPdu, Store
from ..store.states import AgentState, InboundPduKind, MessageStatus
from ..store.times import iso, now, parse
from . import keywords
from .eligibility import why_not_textable
from .events import EventBus
from .optin import OptinPaths
from .outbound import Outbox, SendRefused
from .reports import apply_status_report
from .subscriptions import OptSource, Subscriptions

log = logging.getLogger(__name__)

OOPS_WINDOW = timedelta(hours=24)
UNMATCHED_KEPT = 256  # early status reports remembered, newest kept
UNMATCHED_SECONDS = 600.0  # how long a part's +CMGS answer may trail its report


def missing_marker(seq: int, total: int) -> str:
    """What stands in a message where a part never arrived."""
    return f"[…part {seq} of {total} missing…]"


@dataclass(frozen=True)
class Received:
    """What became of one PDU: its raw row, whether it was new, and the message it completed."""

    pdu_id: int
    new: bool
    kind: InboundPduKind
    message_id: int | None = None


class Inbound:
    """Turns committed PDUs into messages; safe to call from every modem's thread."""

    def __init__(
        self,
        config: Config,
        store: Store,
        events: EventBus,
        outbox: Outbox,
        *,
        subscriptions: Subscriptions | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.events = events
        self.outbox = outbox
        # Keywords change subscriptions the one way the buttons do (messaging/subscriptions.py).
        self.subscriptions = subscriptions or Subscriptions(store, events)
        self._lock = threading.Lock()
        # A new incomplete group, or a keyword path waiting: the housekeeper's timer may move.
        self.stale_changed = threading.Event()
        # The team's keywords and the opt-in paths they start (messaging/optin.py).
        self.optin = OptinPaths(
            config, store, outbox, self.subscriptions, wake=self.stale_changed.set
        )
        # Status reports that matched no part yet, by (modem, recipient, TP-MR): a fast
        # network's report can overtake the +CMGS answer of its own part (the modem prints
        # +CDS right after it, and the sender records the TP-MR a moment later).
        self._reports_lock = threading.Lock()
        self._unmatched: collections.OrderedDict[tuple[str, str, int], tuple[float, Any]] = (
            collections.OrderedDict()
        )

    def _publish(self, kind: str, /, **data: object) -> None:
        # After the commit: a browser woken by the event must find the row it announces.
        self.store.db.after_commit(lambda: self.events.publish(kind, **data))

    # -- entry point ---------------------------------------------------------------------

    def receive(self, modem_id: str, pdu_hex: str, *, source: str = "") -> Received:
        """Commit one PDU read from ``modem_id`` and process it. Returns once it is durable;
        only then may the caller delete it from the modem."""
        received_at = iso(now())
        try:
            decoded = smspdu.decode(pdu_hex)
        except CodecError as exc:
            pdu_id, new = self.store.inbound.add(
                RawPdu(modem_id, pdu_hex, InboundPduKind.UNDECODABLE, received_at, error=str(exc))
            )
            if new:
                log.error(
                    "modem %s: a PDU%s could not be decoded (%s); kept raw as inbound PDU %d",
                    modem_id,
                    f" from {source}" if source else "",
                    exc,
                    pdu_id,
                )
                self._publish("inbound.undecodable", modem_id=modem_id, pdu_id=pdu_id)
            return Received(pdu_id, new, InboundPduKind.UNDECODABLE)
        number = self._number(decoded.number)
        if isinstance(decoded, smspdu.StatusReport):
            pdu_id, new = self.store.inbound.add(
                RawPdu(modem_id, pdu_hex, InboundPduKind.STATUS_REPORT, received_at, sender=number)
            )
            mid = None
            # Also when it was stored before but never applied (a crash in between).
            if new or not self._settled(pdu_id):
                with self._reports_lock:
                    mid = apply_status_report(self.store, self.events, modem_id, number, decoded)
                    if mid is None:
                        self._remember_unmatched(modem_id, number, decoded)
                self.store.inbound.mark_done(pdu_id)
            return Received(pdu_id, new, InboundPduKind.STATUS_REPORT, mid)
        if isinstance(decoded, smspdu.Submit):
            # An outgoing message stored on the SIM (by a phone the SIM was in): not ours.
            pdu_id, new = self.store.inbound.add(
                RawPdu(modem_id, pdu_hex, InboundPduKind.SUBMIT, received_at, sender=number)
            )
            if new:
                self.store.inbound.mark_done(pdu_id)
            return Received(pdu_id, new, InboundPduKind.SUBMIT)
        return self._deliver(modem_id, pdu_hex, decoded, number, received_at)

    def _deliver(
        self, modem_id: str, pdu_hex: str, d: smspdu.Deliver, sender: str, received_at: str
    ) -> Received:
        text = d.text if d.data is None else d.data.hex().upper()
        concat_key = None
        seq = total = None
        if d.concat is not None and d.concat.total > 1:
            c = d.concat
            concat_key = f"{modem_id}|{sender}|{c.bits}|{c.reference}|{c.total}"
            seq, total = c.seq, c.total
        pdu_id, new = self.store.inbound.add(
            RawPdu(
                modem_id,
                pdu_hex,
                InboundPduKind.DELIVER,
                received_at,
                sender=sender,
                concat_key=concat_key,
                seq=seq,
                total=total,
                text=text,
            )
        )
        if not new and self._settled(pdu_id):
            return Received(pdu_id, False, InboundPduKind.DELIVER)
        # New, or stored before but not yet made into a message (processing failed or the
        # process died in between): process it now, before the caller deletes it from the SIM.
        message_id = self._assemble(pdu_id)
        return Received(pdu_id, new, InboundPduKind.DELIVER, message_id)

    def _number(self, raw: str) -> str:
        """The one place an inbound number (a sender, or the recipient a report is about) takes
        its stored form: E.164 when it is a phone number, else as given ("BANK", "55123")."""
        return normalize_sender(raw, self.config.default_region)

    def _settled(self, pdu_id: int) -> bool:
        row = self.store.inbound.get(pdu_id)
        return row is None or bool(row["settled"])

    # -- status reports that came early ---------------------------------------------------

    def _remember_unmatched(self, modem_id: str, phone: str, report: smspdu.StatusReport) -> None:
        self._unmatched[(modem_id, phone, report.reference)] = (time.monotonic(), report)
        while len(self._unmatched) > UNMATCHED_KEPT:
            self._unmatched.popitem(last=False)

    def part_sent(self, modem_id: str, phone: str, tp_mr: int) -> int | None:
        """A part was recorded as sent: apply a report that arrived for it before that (the
        dispatcher calls this). Returns the message id it was about, or None."""
        with self._reports_lock:
            early = self._unmatched.pop((modem_id, phone, tp_mr), None)
            if early is None or time.monotonic() - early[0] > UNMATCHED_SECONDS:
                return None
            log.info("modem %s: status report for TP-MR %d came before +CMGS", modem_id, tp_mr)
            return apply_status_report(self.store, self.events, modem_id, phone, early[1])

    # -- reassembly ----------------------------------------------------------------------

    def _assemble(self, pdu_id: int, *, force: bool = False) -> int | None:
        """Make a message of this PDU's group when complete (or ``force``d by the timeout)."""
        with self._lock, self.store.db.tx():
            row = self.store.inbound.get(pdu_id)
            if row is None or row["settled"]:
                return None
            if row["concat_key"] is None:
                return self._make_message([row], row["total"] or 1, complete=True)
            group = self.store.inbound.group(row["concat_key"])
            by_seq = {}
            for part in group:
                if part["seq"] in by_seq:
                    self.store.inbound.mark_done(part["id"])  # a duplicated part
                    log.info("dropped a duplicated part %s of %s", part["seq"], part["concat_key"])
                    continue
                by_seq[part["seq"]] = part
            total = int(row["total"])
            late = self._incomplete_message_for(row["concat_key"], set(by_seq))
            if late is not None:
                return self._complete_late(late, list(by_seq.values()), total)
            if len(by_seq) < total and not force:
                self.stale_changed.set()
                return None
            parts = [by_seq[s] for s in sorted(by_seq)]
            return self._make_message(parts, total, complete=len(by_seq) == total)

    def _incomplete_message_for(self, concat_key: str, seqs: set[int]) -> int | None:
        """A recent 'incomplete' message of this group that exactly these parts complete.

        Only within twice the reassembly timeout (plus ten minutes), and only when none of
        the parts is already in it: a handset that later reuses the same 8-bit reference
        starts a new message, it is not grafted onto an old one."""
        timeout = timedelta(minutes=self.config.messages.reassembly_timeout_minutes)
        since = iso(now() - 2 * timeout - timedelta(minutes=10))
        message_id = self.store.inbound.incomplete_message_of(concat_key, since)
        if message_id is None:
            return None
        have = {r["seq"] for r in self.store.inbound.parts_of(message_id)}
        return None if have & seqs else message_id

    def _body(self, parts_by_seq: dict, total: int) -> str:
        return "".join(
            parts_by_seq[s]["text"] if s in parts_by_seq else missing_marker(s, total)
            for s in range(1, total + 1)
        )

    def _complete_late(self, message_id: int, new_parts: list, total: int) -> int:
        have = {r["seq"]: r for r in self.store.inbound.parts_of(message_id)}
        fresh = []
        for part in new_parts:
            if part["seq"] in have:
                self.store.inbound.mark_done(part["id"])
            else:
                have[part["seq"]] = part
                fresh.append(part["id"])
        self.store.inbound.attach(fresh, message_id)
        status = MessageStatus.RECEIVED if len(have) == total else MessageStatus.INCOMPLETE
        self.store.messages.complete_inbound(message_id, self._body(have, total), status)
        msg = self.store.messages.get(message_id)
        self._publish("message.status", id=message_id, profile_id=msg["profile_id"], status=status)
        return message_id

    def flush_stale(self) -> float | None:
        """Turn groups still missing parts after the reassembly timeout into messages with
        markers; returns seconds until the next group would time out (None: none waiting)."""
        timeout = timedelta(minutes=self.config.messages.reassembly_timeout_minutes)
        cutoff = now() - timeout
        for key in self.store.inbound.waiting_groups(iso(cutoff)):
            first = self.store.inbound.group(key)
            if first:
                self._assemble(first[0]["id"], force=True)
        oldest = self.store.inbound.oldest_waiting_part()
        if oldest is None:
            return None
        return max(0.0, (parse(oldest) + timeout - now()).total_seconds())

    def recover(self) -> None:
        """At start: PDUs committed but not yet made into messages or applied (a crash in
        between)."""
        for row in self.store.inbound.unapplied_status_reports():
            try:
                report = smspdu.decode(row["pdu"])
            except CodecError as exc:
                log.error(
                    "inbound PDU %d: stored status report no longer decodes: %s", row["id"], exc
                )
            else:
                if isinstance(report, smspdu.StatusReport):
                    phone = self._number(report.number)
                    apply_status_report(self.store, self.events, row["modem_id"], phone, report)
            self.store.inbound.mark_done(row["id"])
        for row in self.store.inbound.unprocessed_singles():
            self._assemble(row["id"])
        for key in self.store.inbound.unassembled_groups():
            group = self.store.inbound.group(key)
            if group:
                self._assemble(group[0]["id"])

    # -- the message ---------------------------------------------------------------------

    def _short_code(self, modem_id: str) -> ShortCodeConfig | None:
        sc = self.config.short_code_of_modem(modem_id)
        if sc is None and self.config.short_codes:
            return self.config.short_codes[0]
        return sc

    def _make_message(self, parts: list, total: int, *, complete: bool) -> int:
        first = parts[0]
        modem_id = first["modem_id"]
        sender = first["sender"]
        body = self._body({p["seq"] or 1: p for p in parts}, total) if total > 1 else first["text"]
        sc = self._short_code(modem_id)
        code = sc.code if sc else ""
        profile, created = self.store.profiles.get_or_create(sender)
        kind = keywords.REPLY
        if sc is not None and complete:
            kw = sc.keywords
            kind = keywords.classify(
                body,
                opt_out=kw.opt_out,
                opt_out_all=kw.opt_out_all,
                opt_in=kw.opt_in,
                help=kw.help,
                oops=kw.oops,
            )
        plan = None
        if kind == keywords.REPLY and sc is not None and complete:
            # STOP/START/HELP/OOPS came first; then the team's keywords and open paths.
            plan = self.optin.plan(profile, sc, body, self._sent_at(first))
            if plan is not None:
                kind = plan.kind
        if kind == keywords.REPLY and created:
            kind = "unknown"  # a number the gateway has never seen
        message_id = self.store.messages.add_inbound(
            profile_id=profile["id"],
            phone=sender,
            short_code=code,
            modem_id=modem_id,
            body=body,
            encoding=None,
            parts_total=total,
            status=MessageStatus.RECEIVED if complete else MessageStatus.INCOMPLETE,
            kind=kind,
            received_at=first["received_at"],
            agent_state=AgentState.OPEN if kind in (keywords.REPLY, "unknown") else None,
        )
        self.store.inbound.attach([p["id"] for p in parts], message_id)
        self.store.profiles.set_sticky_modem(profile["id"], modem_id)
        # The message and its sender ride along, so that every open Inbox shows the row from
        # the event itself instead of each one asking the store for it.
        self._publish(
            "message.new",
            id=message_id,
            profile_id=profile["id"],
            direction="in",
            kind=kind,
            status=MessageStatus.RECEIVED if complete else MessageStatus.INCOMPLETE,
            body=body,
            created_at=first["received_at"],
            short_code=code,
            profile={
                "id": profile["id"],
                "name": profile["name"],
                "phone": profile["phone"],
                "status": profile["status"],
                # Subscribed to the short code this message came in on (the Inbox row's).
                "subscribed": (
                    self.store.subscriptions.subscribed(profile["id"], code)
                    if code
                    else bool(profile["subscribed"])
                ),
                # Why it may not be texted (None: it may), so the page need not know the rule.
                "refusal": why_not_textable(self.store, profile, code or None),
            },
        )
        if sc is not None and plan is not None:
            self.optin.act(plan, profile["id"], sc, message_id)
        elif sc is not None:
            self._keyword_action(kind, profile, sc, message_id)
        return message_id

    def _sent_at(self, first) -> datetime:
        """When the network took this text: its service-centre time stamp, unless that is
        later than when the gateway read it (a handset or network clock ahead). An answer that
        waited on the SIM while the gateway was down is judged by when it was sent."""
        received = parse(first["received_at"])
        try:
            decoded = smspdu.decode(first["pdu"])
        except CodecError:
            return received
        stamp = getattr(decoded, "timestamp", None)
        if stamp is None or stamp.tzinfo is None:
            return received
        return min(received, stamp)

    def _keyword_action(self, kind: str, profile, sc: ShortCodeConfig, message_id: int) -> None:
        pid = profile["id"]
        reply = None
        allow = False
        by = OptSource.by_keyword(sc.code, message_id)
        if kind == keywords.OPT_OUT:
            # This short code only; a STOP is also the way out of an open keyword path.
            self.optin.cancel_open(pid, [sc.code])
            self.subscriptions.unsubscribe(pid, by, short_code=sc.code)
            reply, allow = sc.reply("opt_out"), True
        elif kind == keywords.OPT_OUT_ALL:
            self.optin.cancel_open(pid, [s.code for s in self.config.short_codes])
            self.subscriptions.unsubscribe(pid, by)
            reply, allow = sc.reply("opt_out_all"), True
        elif kind == keywords.OPT_IN:
            self.subscriptions.subscribe(pid, by, short_code=sc.code)
            reply = sc.reply("opt_in")
        elif kind == keywords.HELP:
            reply, allow = sc.reply("help"), True
        elif kind == keywords.OOPS:
            stop = self._just_stopped(pid, message_id)
            if stop is not None:
                # Undone as wide as the STOP was: its short code, or all of them.
                scope = None if stop["all_codes"] else stop["short_code"]
                self.subscriptions.subscribe(pid, by, short_code=scope, undo=True)
                reply = sc.reply("oops")
            else:
                # Not right after a STOP: an ordinary message for the team.
                self.store.messages.set_agent_state(message_id, AgentState.OPEN, expect=(None,))
                self.store.messages.set_kind(message_id, "reply")
        if reply:
            try:
                self.outbox.submit(
                    reply,
                    profile_id=pid,
                    short_code=sc.code,
                    user="keyword",
                    answers=False,  # an automatic reply leaves the person waiting for the team
                    allow_unsubscribed=allow,
                )
            except SendRefused as exc:
                log.warning("no %s reply to %s: %s", kind, profile["phone"], exc)

    def _just_stopped(self, profile_id: int, message_id: int) -> Any:
        """The opt history's entry of the STOP this profile texted just before this message
        (within the undo window), or None."""
        last = self.store.opt_events.last(profile_id)
        if last is None or last["action"] != "opt_out" or last["message_id"] is None:
            return None
        previous_in = self.store.messages.previous_inbound(profile_id, message_id)
        recent = parse(last["created_at"]) >= now() - OOPS_WINDOW
        return last if previous_in == last["message_id"] and recent else None
