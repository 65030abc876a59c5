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
    message_id, status = store.messages.part_report(
        part["id"], report.status, report.status_category
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
