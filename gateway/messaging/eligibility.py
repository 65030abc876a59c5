"""The one answer to "may this profile be texted from this short code?", with the reason in
words when it may not.

Every place that sends or offers to send asks here: :meth:`Outbox.submit` (the form, the chat,
the API, the CLI, keyword replies), the Text This Profile page (its warning and which short codes
its drop-down offers), the chat button's availability (``web/helpers.py``), and the dispatcher
again at send time (the profile may have been deactivated or opted out since the message was
queued). Whether the profile is subscribed to a short code is the store's one rule
(``store/subscriptions.py``); this module turns it into words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..phone import is_mobile_capable
from ..store import Store

__all__ = [
    "INACTIVE",
    "NOT_MOBILE",
    "OPTED_OUT",
    "number_refusal",
    "opted_out_of",
    "refusal",
    "why_not_textable",
]

# Each a whole sentence, shown as it is (Text This Profile, the chat, the API, the CLI).
INACTIVE = "The profile is inactive; reactivate it to text it."
OPTED_OUT = "The profile has opted out; they must text START to receive messages again."
NOT_MOBILE = (
    "The number cannot receive SMS: its numbering plan says it is a landline or a service number."
)


def opted_out_of(short_code: str) -> str:
    """The reason for a profile opted out of one short code (subscribed to others)."""
    return (
        f"The profile has opted out of {short_code}; they must text START to {short_code}"
        " to receive messages from it again."
    )


def number_refusal(phone: str) -> str | None:
    """Why no SMS can go to this number (E.164, or a sender such as "BANK" kept as given), or
    None when one can."""
    if not is_mobile_capable(phone):
        return NOT_MOBILE
    return None


def refusal(
    profile: Mapping[str, Any],
    subscribed: bool,
    short_code: str | None,
    *,
    allow_opted_out: bool = False,
    number_checked: bool = False,
) -> str | None:
    """Why a profile (a row with ``status``, ``subscribed`` (the all-short-codes default) and
    ``phone``) may not be texted from ``short_code`` when ``subscribed`` says whether it is
    subscribed to that short code (the store's rule, already read); None when it may.
    ``allow_opted_out`` is only for the confirmation of an opt-out itself (and the answer to
    HELP or a keyword), which goes to a person who just texted. ``number_checked``: the number
    passed this check when the message was accepted, and a numbering plan does not change
    while a message waits (the dispatcher asks again at send time; parsing the number was a
    fifth of its CPU per message)."""
    if profile["status"] != "active":
        return INACTIVE
    if not subscribed and not allow_opted_out:
        # Opted out of everything, or of this one short code only.
        return (
            OPTED_OUT if not profile["subscribed"] or not short_code else opted_out_of(short_code)
        )
    return None if number_checked else number_refusal(profile["phone"])


def why_not_textable(
    store: Store,
    profile: Mapping[str, Any],
    short_code: str | None,
    *,
    allow_opted_out: bool = False,
) -> str | None:
    """Why this profile may not be texted from ``short_code``, or None when it may: it must be
    active, subscribed to that short code and have a number that can receive SMS. With no
    short code (none configured), the profile-wide subscription decides."""
    if short_code:
        subscribed = store.subscriptions.subscribed(int(profile["id"]), short_code)
    else:
        subscribed = bool(profile["subscribed"])
    return refusal(profile, subscribed, short_code, allow_opted_out=allow_opted_out)
