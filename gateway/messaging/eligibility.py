"""The one answer to "may this profile be texted?", with the reason in words when it may not.

Every place that sends or offers to send asks here: :meth:`Outbox.submit` (the form, the chat,
the API, the CLI, keyword replies), the Text This Profile page's warning, the chat button's
availability (``web/helpers.py``), and the dispatcher again at send time (the profile may have
been deactivated or opted out since the message was queued).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..phone import is_mobile_capable

__all__ = ["INACTIVE", "NOT_MOBILE", "OPTED_OUT", "number_refusal", "why_not_textable"]

# Each a whole sentence, shown as it is (Text This Profile, the chat, the API, the CLI).
INACTIVE = "The profile is inactive; reactivate it to text it."
OPTED_OUT = "The profile has opted out; they must text START to receive messages again."
NOT_MOBILE = (
    "The number cannot receive SMS: its numbering plan says it is a landline or a service number."
)


def number_refusal(phone: str) -> str | None:
    """Why no SMS can go to this number (E.164, or a sender such as "BANK" kept as given), or
    None when one can."""
    if not is_mobile_capable(phone):
        return NOT_MOBILE
    return None


def why_not_textable(profile: Mapping[str, Any], *, allow_opted_out: bool = False) -> str | None:
    """Why this profile (a row with ``status``, ``subscribed`` and ``phone``) may not be
    texted, or None when it may: it must be active, subscribed and have a number that can
    receive SMS. ``allow_opted_out`` is only for the confirmation of an opt-out itself (and the
    answer to HELP), which goes to a person who just opted out."""
    if profile["status"] != "active":
        return INACTIVE
    if not profile["subscribed"] and not allow_opted_out:
        return OPTED_OUT
    return number_refusal(profile["phone"])
