"""Subscription per short code: the ``subscriptions`` table and THE rule "may this profile be
texted from this short code" as SQL.

A profile is subscribed to short code C when its row for C says so, and, with no row for C,
when ``profiles.subscribed`` says so (that column means "subscribed to the short codes with no
row of their own"). STOP to C writes (profile, C, 0), START to C writes (profile, C, 1); an
opt-out of all clears ``profiles.subscribed`` and sets every row to 0. Everything that decides
whether a profile is subscribed (eligibility, the dispatcher at send time, broadcasts' audiences)
uses :func:`subscribed_sql` / :meth:`ShortCodeSubscriptions.textable_sql`, so the rule is
written once.
"""

from __future__ import annotations

from typing import Any

from .db import Database
from .times import iso, now


def subscribed_sql(code: str = "?", *, alias: str = "p") -> str:
    """The SQL expression (1 or 0) "profile ``alias`` is subscribed to short code ``code``",
    where ``code`` is an SQL expression: ``?`` (a parameter, the default) or a column such as
    ``m.short_code``. Uses the table's primary key: one index look-up per profile."""
    return (
        "COALESCE((SELECT s.subscribed FROM subscriptions s"
        f" WHERE s.profile_id = {alias}.id AND s.short_code = {code}), {alias}.subscribed)"
    )


class ShortCodeSubscriptions:
    """Rows of ``subscriptions`` and the profile-wide default beside them. Changes go through
    :class:`gateway.messaging.subscriptions.Subscriptions`, which records them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def textable_sql(self, code: str, *, alias: str = "p") -> tuple[str, tuple[Any, ...]]:
        """The WHERE condition (and its parameters) "profile ``alias`` may be texted from short
        code ``code``": active and subscribed to it. Whether its number can receive SMS is the
        numbering plan's answer, checked in Python (messaging/eligibility.py)."""
        return f"{alias}.status = 'active' AND {subscribed_sql(alias=alias)} = 1", (code,)

    def subscribed(self, profile_id: int, code: str) -> bool:
        """Whether the profile is subscribed to ``code`` (False for an unknown profile)."""
        value = self.db.value(
            f"SELECT {subscribed_sql()} FROM profiles p WHERE p.id = ?", (code, profile_id)
        )
        return bool(value)

    def of_profile(self, profile_id: int) -> dict[str, bool]:
        """The short codes this profile has a row for, with their state."""
        return {
            r["short_code"]: bool(r["subscribed"])
            for r in self.db.q(
                "SELECT short_code, subscribed FROM subscriptions WHERE profile_id = ?"
                " ORDER BY short_code",
                (profile_id,),
            )
        }

    def set_one(self, profile_id: int, code: str, subscribed: bool) -> None:
        """Write the profile's row for ``code``."""
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO subscriptions (profile_id, short_code, subscribed, changed_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (profile_id, short_code) DO UPDATE SET"
                " subscribed = excluded.subscribed, changed_at = excluded.changed_at",
                (profile_id, code, int(subscribed), iso(now())),
            )

    def set_all(self, profile_id: int, subscribed: bool) -> None:
        """Subscribe to (or opt out of) every short code: the default and every row."""
        stamp = iso(now())
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE profiles SET subscribed = ?, updated_at = ? WHERE id = ?",
                (int(subscribed), stamp, profile_id),
            )
            conn.execute(
                "UPDATE subscriptions SET subscribed = ?, changed_at = ?"
                " WHERE profile_id = ? AND subscribed != ?",
                (int(subscribed), stamp, profile_id, int(subscribed)),
            )

    def differing(self, profile_ids: list[int]) -> dict[int, dict[str, bool]]:
        """For a page of profiles: the short codes where each one's own row differs from its
        default ({profile id: {short code: subscribed}}; profiles with none are left out)."""
        found: dict[int, dict[str, bool]] = {}
        for start in range(0, len(profile_ids), 500):
            chunk = profile_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for r in self.db.q(
                "SELECT s.profile_id, s.short_code, s.subscribed FROM subscriptions s"
                " JOIN profiles p ON p.id = s.profile_id"
                f" WHERE s.profile_id IN ({marks}) AND s.subscribed != p.subscribed"
                " ORDER BY s.profile_id, s.short_code",
                chunk,
            ):
                found.setdefault(int(r["profile_id"]), {})[r["short_code"]] = bool(r["subscribed"])
        return found
