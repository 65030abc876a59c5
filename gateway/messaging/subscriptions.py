"""The one place a profile's subscription changes: opting out and back in, of one short code
or of all of them, whether the person texted a keyword, an agent clicked a button (on the
profile's page or in the Inbox) or a CSV import said so.

A profile is subscribed to each short code on its own (``store/subscriptions.py`` holds the
rule): STOP to a short code opts out of that one, ``STOP ALL`` (or the law's wording where a
short code is configured so) of every one. Every change is recorded in the opt history
(``opt_events``) with its cause and scope, a change by hand also in the audit log, and announced
as ``profile.changed`` {id, subscribed, short_code (None: all)} once committed.
Subscribing is only that: it never makes an inactive profile active (that is
:meth:`gateway.messaging.profiles.ProfileService.activate`, a separate button the user sees).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..store import Store
from .events import EventBus


class ProfileNotFound(LookupError):
    """There is no profile with this id."""


@dataclass(frozen=True)
class OptSource:
    """Who or what changed a subscription, as the opt history records it: ``agent`` (by hand,
    with the user's name), ``keyword`` (the person texted STOP, START or an undo word to a short
    code; the message is kept) or ``import`` (a CSV import, with the user who ran it)."""

    source: str
    actor: str | None = None
    short_code: str | None = None
    message_id: int | None = None

    @classmethod
    def by_hand(cls, actor: str) -> OptSource:
        return cls("agent", actor=actor)

    @classmethod
    def by_keyword(cls, short_code: str, message_id: int) -> OptSource:
        return cls("keyword", short_code=short_code, message_id=message_id)

    @classmethod
    def by_import(cls, actor: str) -> OptSource:
        return cls("import", actor=actor)


class Subscriptions:
    """Subscribe and unsubscribe profiles, to one short code or to all of them (no state of
    its own; one per caller is fine)."""

    def __init__(self, store: Store, events: EventBus) -> None:
        self.store = store
        self.events = events

    def subscribe(
        self,
        profile_id: int,
        by: OptSource,
        *,
        short_code: str | None = None,
        undo: bool = False,
    ) -> bool:
        """Opt a profile in to ``short_code`` (None: to every short code) (``undo``: the person
        took back their STOP with the undo word, recorded as ``undo_opt_out``). The profile's
        status is left as it is. False when it already was subscribed (a keyword is recorded
        all the same: see :meth:`_change`)."""
        action = "undo_opt_out" if undo else "opt_in"
        return self._change(profile_id, True, action, by, short_code)

    def unsubscribe(self, profile_id: int, by: OptSource, *, short_code: str | None = None) -> bool:
        """Opt a profile out of ``short_code`` (None: of every short code, ``STOP ALL``): no
        more texts go to it from there (the dispatcher also fails any still queued). No SMS is
        sent here; a STOP's confirmation is the keyword handler's. False when it already was
        opted out."""
        return self._change(profile_id, False, "opt_out", by, short_code)

    def _change(
        self, profile_id: int, subscribed: bool, action: str, by: OptSource, scope: str | None
    ) -> bool:
        with self.store.db.tx():
            profile = self.store.profiles.get(profile_id)
            if profile is None:
                raise ProfileNotFound(f"no profile with id {profile_id}")
            rows = self.store.subscriptions
            if scope is not None:
                changed = rows.subscribed(profile_id, scope) != subscribed
            else:
                changed = bool(profile["subscribed"]) != subscribed or any(
                    v != subscribed for v in rows.of_profile(profile_id).values()
                )
            # Each STOP or START the person texts is their request and stays in the history
            # (the undo word looks for the STOP it undoes), even when nothing had to change.
            if not changed and by.source != "keyword":
                return False
            if changed:
                if scope is not None:
                    rows.set_one(profile_id, scope, subscribed)
                else:
                    rows.set_all(profile_id, subscribed)
            self.store.opt_events.record(
                profile_id,
                action,
                source=by.source,
                short_code=scope or by.short_code,
                message_id=by.message_id,
                actor=by.actor,
                all_codes=scope is None,
            )
            if by.source == "agent":
                self.store.audit.add(
                    f"profile.{'opt_in' if subscribed else 'opt_out'}",
                    actor=by.actor,
                    profile_id=profile_id,
                    phone=profile["phone"],
                    short_code=scope or "all",
                )
            # Announced once committed: a page woken by it reads the profile from the store.
            self.store.db.after_commit(
                lambda: self.events.publish(
                    "profile.changed", id=profile_id, subscribed=subscribed, short_code=scope
                )
            )
        return changed
