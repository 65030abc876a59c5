"""Accepting an outbound text: checks, normalisation and the commit that makes it durable.

A message the UI or API accepted is committed before the caller hears "accepted"; the
dispatcher is woken after the commit and sends it when a modem of its short code can.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..config import Config, ShortCodeConfig
from ..modem import text as smstext
from ..modem.errors import CodecError, MessageTooLong
from ..phone import PhoneNumberError, normalize
from ..store import NewOutbound, Store
from ..store.states import MessageStatus
from ..store.times import iso, now
from .eligibility import number_refusal, why_not_textable
from .eligibility import refusal as profile_refusal
from .events import EventBus
from .requests import (
    IdempotencyConflict,
    SendRefused,
    check_key,
    check_recipient,
    check_short_code,
    check_text,
    check_user,
)

__all__ = [
    "PRIORITY_BULK",
    "PRIORITY_CHAT",
    "Accepted",
    "IdempotencyConflict",
    "Outbox",
    "SendRefused",
]

log = logging.getLogger(__name__)

PRIORITY_CHAT = 0  # one-off texts, chat and agent replies, keyword answers
PRIORITY_BULK = 10

# Senders that are the gateway itself, not a person: their texts (keyword replies) never count
# as answering anyone.
SYSTEM_SENDERS = frozenset({"keyword"})


def answers_by_default(user: str | None, priority: int) -> bool:
    """Whether a text counts as answering the profile's waiting messages when the caller does
    not say: any one-to-one text a person sent (the chat, Text This Profile, the API or the CLI
    on a user's behalf) answers, as a chat reply does; the gateway's own texts (keyword
    replies, ``user`` None) and bulk sends (a broadcast reaches everyone alike, it answers
    nobody in particular) do not."""
    return user is not None and user not in SYSTEM_SENDERS and priority < PRIORITY_BULK


@dataclass(frozen=True)
class Accepted:
    """A committed outbound message (``created`` is False for a repeated idempotency key)."""

    message_id: int
    profile_id: int
    phone: str
    short_code: str
    parts: int
    encoding: str
    created: bool


# What a ``:name:`` shortcode can look like: no white space or colon between the colons (no
# emoji name has either). "Reminder: see you at 10:00" has none, so it does not load the tables.
_SHORTCODE = re.compile(r":[^\s:]+:")


def expand_emoji(text: str) -> str:
    """``:thumbsup:`` and ``:thumbs_up:`` become 👍; unknown ``:names:`` stay as typed."""
    if _SHORTCODE.search(text) is None:
        return text  # no :name: to expand
    # Imported on first use: the emoji tables cost about 8 MB, which an idle gateway (and one
    # whose texts never name an emoji) need not hold.
    import emoji

    return emoji.emojize(text, language="alias")


class Outbox:
    """The one way into the outbound queue, for the web app, the CLI and keyword replies."""

    def __init__(
        self, config: Config, store: Store, events: EventBus, wake: Callable[[], None]
    ) -> None:
        self.config = config
        self.store = store
        self.events = events
        self._wake = wake

    def short_code_for(
        self, code: str | None, profile_id: int | None = None, *, profile: Any = None
    ) -> ShortCodeConfig:
        """The named short code, else the one this profile last talked with (and may be texted
        from), else the first. ``profile``: its row, when the caller has read it already."""
        if not self.config.short_codes:
            raise SendRefused("short_code", "No short code is configured on this gateway.")
        if code:
            try:
                return self.config.short_code(code)
            except KeyError as exc:
                known = ", ".join(s.code for s in self.config.short_codes)
                raise SendRefused(
                    "short_code", f"There is no short code {code!r} (the short codes are {known})."
                ) from exc
        if profile_id is None:
            return self.config.short_codes[0]
        if profile is None:
            profile = self.store.profiles.get(profile_id)
        candidates = list(self.config.short_codes)
        last = self.store.messages.last_short_code(profile_id)
        if last:
            try:
                candidates.insert(0, self.config.short_code(last))
            except KeyError:
                log.info("short code %s of an old message is no longer configured", last)
        # The one it last talked with when it may be texted from it, else the first one it may
        # be texted from (a STOP to one short code leaves the others). Being active and having
        # a number that can receive SMS are the same for every short code: checked once.
        if profile is not None and profile_refusal(profile, True, None) is None:
            for sc in candidates:
                if self.store.subscriptions.subscribed(profile_id, sc.code):
                    return sc
        return candidates[0]

    def submit(
        self,
        text: str,
        *,
        to: str | None = None,
        profile_id: int | None = None,
        short_code: str | None = None,
        campaign_id: int | None = None,
        priority: int = PRIORITY_CHAT,
        idempotency_key: str | None = None,
        user: str | None = None,
        answers: bool | None = None,
        allow_unsubscribed: bool = False,
    ) -> Accepted:
        """Check and commit one outbound message; raises SendRefused with the reason.

        ``to`` is a number as typed (normalised with the configured region) or ``profile_id``
        names the recipient; a number without a profile gets one. ``answers`` marks the
        profile's open and claimed inbound messages as answered; left None it is decided by
        :func:`answers_by_default` (a person's one-to-one text answers, a broadcast does not).
        ``allow_unsubscribed`` is only for the confirmation of an opt-out itself.
        """
        # The same checks as every entry point's (messaging/requests.py), for callers inside
        # the process too: nothing below ever sees a value that was cut or converted to fit.
        text = check_text(text)
        short_code = check_short_code(short_code)
        idempotency_key = check_key(idempotency_key)
        user = check_user(user)
        if answers is None:
            answers = answers_by_default(user, priority)
        if profile_id is None:
            to = check_recipient(to)
        if idempotency_key is not None:
            existing = self.store.messages.by_idempotency_key(idempotency_key)
            if existing is not None:
                return self._repeat(
                    existing, text, to=to, profile_id=profile_id, short_code=short_code
                )
        if profile_id is not None:
            profile = self.store.profiles.get(profile_id)
            if profile is None:
                raise SendRefused("profile", f"There is no profile with id {profile_id}.")
        else:
            if not to:
                raise SendRefused("to", "A recipient number is required.")
            try:
                phone = normalize(to, self.config.default_region)
            except PhoneNumberError as exc:
                raise SendRefused("to", str(exc).removeprefix("phone: ")) from exc
            refusal = number_refusal(phone)
            if refusal is not None:  # before a profile is made for a number never texted
                raise SendRefused("to", refusal)
            profile, _ = self.store.profiles.get_or_create(phone)
        sc = self.short_code_for(short_code, profile["id"], profile=profile)
        refusal = why_not_textable(self.store, profile, sc.code, allow_opted_out=allow_unsubscribed)
        if refusal is not None:
            raise SendRefused("profile", refusal)
        body = expand_emoji(text or "")
        if not body.strip():
            raise SendRefused("text", "The message is empty.")
        limits = self.config.messages
        try:
            analysis = smstext.analyze(body, ref16=limits.ref16, max_parts=limits.max_parts).check()
        except MessageTooLong as exc:
            raise SendRefused(
                "text",
                f"The message is too long: its {exc.units} {exc.unit} need {exc.parts} SMS "
                f"parts and the limit is {exc.max_parts} parts.",
            ) from exc
        except CodecError as exc:
            raise SendRefused("text", f"The message cannot be sent as SMS: {exc.why}.") from exc
        if campaign_id is None:
            campaign_id = self.store.campaigns.master_id()
        expires = now() + timedelta(hours=limits.expiry_hours)
        with self.store.db.tx():
            message_id, created = self.store.messages.add_outbound(
                NewOutbound(
                    profile_id=profile["id"],
                    phone=profile["phone"],
                    short_code=sc.code,
                    body=body,
                    encoding=analysis.encoding,
                    parts_total=analysis.parts,
                    campaign_id=campaign_id,
                    priority=priority,
                    expires_at=iso(expires),
                    idempotency_key=idempotency_key,
                    created_by=user,
                )
            )
            if answers and created:
                self.store.messages.answer_open(profile["id"])
        if not created:
            # Another request with this key committed between the look-up above and ours.
            existing = self.store.messages.get(message_id)
            assert existing is not None
            return self._repeat(
                existing, text, to=profile["phone"], profile_id=profile["id"], short_code=short_code
            )
        if created:
            event = {
                "id": message_id,
                "profile_id": profile["id"],
                "direction": "out",
                "status": MessageStatus.QUEUED,
            }
            # Announced and routed only once committed (a caller may hold a transaction).
            self.store.db.after_commit(lambda: self.events.publish("message.new", **event))
            self.store.db.after_commit(self._wake)
        return Accepted(
            message_id,
            profile["id"],
            profile["phone"],
            sc.code,
            analysis.parts,
            analysis.encoding,
            created,
        )

    def _repeat(
        self,
        existing: Any,
        text: str,
        *,
        to: str | None,
        profile_id: int | None,
        short_code: str | None,
    ) -> Accepted:
        """A request whose idempotency key is already stored: the earlier message when it asked
        for the same thing (a retry), else :class:`IdempotencyConflict` (never "ok" for a text
        that was not sent)."""
        if profile_id is not None:
            same_recipient = existing["profile_id"] == profile_id
        else:
            try:
                same_recipient = existing["phone"] == normalize(
                    to or "", self.config.default_region
                )
            except PhoneNumberError:
                same_recipient = False
        differs = []
        if not same_recipient:
            differs.append("recipient")
        if existing["body"] != expand_emoji(text):
            differs.append("text")
        if short_code is not None and existing["short_code"] != short_code:
            differs.append("short code")
        if differs:
            raise IdempotencyConflict(
                f"This idempotency key was already used for message {existing['id']} with "
                f"another {' and '.join(differs)}; use a new key for a new message."
            )
        return Accepted(
            existing["id"],
            existing["profile_id"],
            existing["phone"],
            existing["short_code"],
            existing["parts_total"],
            existing["encoding"],
            False,
        )
