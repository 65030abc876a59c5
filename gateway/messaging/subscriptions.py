"""The one place a profile's subscription changes: opting out and back in, whether the person
texted a keyword, an agent clicked a button (on the profile's page or in the Inbox) or a CSV
import said so.

Every change is recorded in the opt history (``opt_events``) with its cause, a change by hand
also in the audit log, and announced as ``profile.changed`` {id, subscribed} once committed.
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
    """Subscribe and unsubscribe profiles (no state of its own; one per caller is fine)."""

    def __init__(self, store: Store, events: EventBus) -> None:
        self.store = store
        self.events = events

    def subscribe(self, profile_id: int, by: OptSource, *, undo: bool = False) -> bool:
        """Opt a profile back in (``undo``: the person took back their STOP with the undo
        word, recorded as ``undo_opt_out``). The profile's status is left as it is. False when
        it already was subscribed (a keyword is recorded all the same: see :meth:`_change`)."""
        return self._change(profile_id, True, "undo_opt_out" if undo else "opt_in", by)

    def unsubscribe(self, profile_id: int, by: OptSource) -> bool:
        """Opt a profile out: no more texts go to it (the dispatcher also fails any still
        queued). No SMS is sent here; a STOP's confirmation is the keyword handler's. False
        when it already was opted out."""
        return self._change(profile_id, False, "opt_out", by)

    def _change(self, profile_id: int, subscribed: bool, action: str, by: OptSource) -> bool:
        with self.store.db.tx():
            profile = self.store.profiles.get(profile_id)
            if profile is None:
                raise ProfileNotFound(f"no profile with id {profile_id}")
            changed = bool(profile["subscribed"]) != subscribed
            # Each STOP or START the person texts is their request and stays in the history
            # (the undo word looks for the STOP it undoes), even when nothing had to change.
            if not changed and by.source != "keyword":
                return False
            if changed:
                self.store.profiles.update(profile_id, subscribed=subscribed)
            self.store.opt_events.record(
                profile_id,
                action,
                source=by.source,
                short_code=by.short_code,
                message_id=by.message_id,
                actor=by.actor,
            )
            if by.source == "agent":
                self.store.audit.add(
                    f"profile.{'opt_in' if subscribed else 'opt_out'}",
                    actor=by.actor,
                    profile_id=profile_id,
                    phone=profile["phone"],
                )
            # Announced once committed: a page woken by it reads the profile from the store.
            self.store.db.after_commit(
                lambda: self.events.publish("profile.changed", id=profile_id, subscribed=subscribed)
            )
        return changed
