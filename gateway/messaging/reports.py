"""Delivery reports: a status report is matched to the part it is about and rolled up to the
message (sent → delivered or failed)."""

from __future__ import annotations

import logging
from datetime import timedelta

from ..modem.pdu import StatusReport, status_meaning
from ..store import Store
from ..store.times import iso, now
from .events import EventBus

log = logging.getLogger(__name__)

# TP-MR is 8 bits: it wraps after 256 parts from one modem. Reports older than this are not
# matched, so a wrapped reference does not mark the wrong part.
MATCH_WINDOW = timedelta(days=3)


# What a failed report means for the person who sent the text, for the TP-Status values a
# network really gives (TS 23.040 §9.2.3.15 has the codes; these say what to do about them).
_FAILURE_REASONS = {
    0x41: "the phone cannot receive this kind of message",
    0x42: "the recipient's phone refused it",
    0x43: "the number does not exist or is not in service; check the number",
    0x46: "the phone could not be reached before the message expired",
    0x48: "the operator deleted it",
}


def failure_reason(status: int) -> str:
    """The error a failed message shows for a report with this TP-Status: what happened in
    words a user can act on, then the report's own code and TS 23.040 meaning."""
    _category, meaning = status_meaning(status)
    why = _FAILURE_REASONS.get(status, meaning)
    return f"the network could not deliver it: {why} (status report 0x{status:02X}, {meaning})"


def report_meaning(status: int) -> tuple[str, str]:
    """(category, meaning) of a status report's TP-ST value, for people: category is delivered,
    pending or failed; meaning is TS 23.040's words for it."""
    return status_meaning(status)


def apply_status_report(
    store: Store, events: EventBus, modem_id: str, phone: str, report: StatusReport
) -> int | None:
    """Apply a report received on ``modem_id`` about a part sent to ``phone`` (the report's
    recipient in its stored form); the id of the message it was about, or None when no part
    matches (logged, kept as a raw PDU)."""
    since = iso(now() - MATCH_WINDOW)
    part = store.messages.match_report(modem_id, phone, report.reference, since)
    if part is None:
        log.info(
            "modem %s: status report for TP-MR %d to %s matches no part sent in the last %s",
            modem_id,
            report.reference,
            phone,
            MATCH_WINDOW,
        )
        return None
    # 0x40 and above: the service centre has given up (TS 23.040 §9.2.3.15).
    reason = failure_reason(report.status) if report.status >= 0x40 else None
    message_id, status = store.messages.part_report(
        part["id"], report.status, report.status_category, reason
    )
    msg = store.messages.get(message_id)
    data = {
        "id": message_id,
        "profile_id": msg["profile_id"] if msg else None,
        "status": status,
        "part": part["seq"],
        "report": report.status_meaning,
    }
    store.db.after_commit(lambda: events.publish("message.status", **data))
    return message_id
