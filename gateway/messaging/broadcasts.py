"""Broadcasts: one text, with merge fields, to a segment, a list or ad-hoc conditions, now or at
a set time, at bulk priority.

:meth:`BroadcastService.create` checks the request (text, merge fields, short code, campaign,
audience, time), commits the broadcast and its recipients in one transaction (those that may
not be texted are recorded as skipped) and returns at once. The feeder thread
(:meth:`BroadcastService.start`) starts broadcasts whose time has come and turns their pending
recipients into queued messages a window at a time (:data:`WINDOW_PER_MODEM` per modem of the
short code): the queue never holds more than that of a broadcast, so a chat reply (priority 0)
waits behind at most the messages the modems already hold, the router's passes stay short, and
pause and cancel take back what no modem has taken yet. Quiet hours are the dispatcher's (bulk
messages wait for their end, per modem). It blocks on the event bus: it runs when a message
changes state or a broadcast is changed, or when its own timer (the next start) runs out.

Merge fields: ``{first_name}`` (the name's first word), ``{name}``, ``{phone}`` and any custom
field by its name (``{school}``); a profile without the field gets an empty text. The counter
and the stored part count use the longest expansion over the audience.

Per-recipient time: with ``per_recipient_tz``, a profile whose custom field ``timezone`` holds a
time-zone name (``America/Chicago``) gets the message at the given wall-clock time in its zone;
the others at that time in the broadcast's zone.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import time
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..config import Config
from ..modem import text as smstext
from ..modem.errors import CodecError
from ..phone import PhoneNumberError, normalize
from ..store import Store, StoreError
from ..store.audiences import AudienceError, Condition, Definition, definition_sql, parse_condition
from ..store.broadcasts import BroadcastMessage, NewBroadcast
from ..store.states import BROADCAST_ACTIVE, BroadcastState
from ..store.times import iso, now, parse
from .eligibility import number_refusal
from .events import EventBus
from .outbound import PRIORITY_BULK, Outbox, expand_emoji
from .profiles import CsvFileError, read_csv
from .requests import IdempotencyConflict, SendRefused, check_text

__all__ = ["TZ_FIELD", "BroadcastService", "SendRefused", "merge_fields"]

log = logging.getLogger(__name__)

TZ_FIELD = "timezone"  # the custom field that holds a profile's own time zone
WINDOW_PER_MODEM = 10  # queued messages of a broadcast per modem of its short code
MIN_WINDOW = 20
VALUES_FOR = 30.0  # seconds the compose page's longest values of an audience are reused
PROGRESS_EVERY = 0.5  # seconds between two progress events of one broadcast
PAST_GRACE = timedelta(minutes=1)  # a time this little in the past means "now"
BUILTIN_FIELDS = ("first_name", "name", "phone")
_FIELD = re.compile(r"\{([^{}\n]{1,64})\}")
_MAX_COMBINATIONS = 64

_BS = BroadcastState


def merge_fields(body: str) -> list[str]:
    """The merge fields a text names, in order, each once (``{first_name}`` → first_name)."""
    return list(dict.fromkeys(m.strip() for m in _FIELD.findall(body)))


def field_values(profile: Mapping[str, Any]) -> Callable[[str], str]:
    """The value of each merge field for one profile (a row with name, phone, custom)."""
    try:
        custom = json.loads(profile["custom"] or "{}")
    except ValueError:
        custom = {}
    if not isinstance(custom, dict):
        custom = {}
    name = str(profile["name"] or "").strip()

    def value(field: str) -> str:
        if field == "first_name":
            return name.split(" ", 1)[0] if name else ""
        if field == "name":
            return name
        if field == "phone":
            return str(profile["phone"])
        v = custom.get(field.removeprefix("custom."))
        return "" if v is None else str(v)

    return value


def expand(body: str, profile: Mapping[str, Any]) -> str:
    """The text with each merge field replaced by this profile's value."""
    value = field_values(profile)
    return _FIELD.sub(lambda m: value(m.group(1).strip()), body)


@dataclass(frozen=True)
class Audience:
    """What a broadcast goes to: a segment, a list or conditions, compiled to SQL."""

    description: dict[str, Any]
    where: str
    params: list[Any]


@dataclass
class ListReport:
    """What a CSV upload made: the list, how many profiles joined, the rows left out."""

    added: int
    name: str
    problems: list[str] = field(default_factory=list)
    list_id: int | None = None


@dataclass(frozen=True)
class Longest:
    """The longest expansion of a text over an audience: its analysis, the text, and the
    candidate values per field that the browser's counter combines the same way."""

    analysis: smstext.Analysis
    text: str
    values: dict[str, list[str]]


class BroadcastService:
    """Creates, changes and feeds broadcasts; see the module's docstring."""

    def __init__(
        self,
        config: Config,
        store: Store,
        events: EventBus,
        outbox: Outbox,
        wake_dispatcher: Callable[[], None],
        *,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.config = config
        self.store = store
        self.events = events
        self.outbox = outbox
        self._wake_dispatcher = wake_dispatcher
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sub = None
        self._lock = threading.Lock()
        self._progress: dict[int, tuple[float, tuple, str]] = {}  # last published per broadcast
        self._any_active = True  # until the first pass has looked
        self._values: dict[tuple, tuple[float, list[str]]] = {}  # see _longest_values

    # -- audience and text --------------------------------------------------------------------

    def audience(
        self,
        *,
        segment: str | int | None = None,
        list_name: str | int | None = None,
        conditions: list[Condition] | Definition | None = None,
    ) -> Audience:
        """Compile a segment (by name or id), a list (by name or id) or conditions; SendRefused
        naming ``audience`` when it is unknown or badly written."""
        # No condition at all (an empty list) is every profile; None is no choice.
        chosen = [x for x in (segment, list_name) if x not in (None, "")]
        if len(chosen) + (conditions is not None) != 1:
            raise SendRefused("audience", "choose one audience: a segment, a list or conditions")
        au = self.store.audiences
        if segment not in (None, ""):
            row = _by_name_or_id(segment, au.segment, au.segment_named)
            if row is None:
                raise SendRefused("audience", f"no segment named {segment!r}")
            d = Definition.from_json(row["definition"])
            where, params = definition_sql(d)
            return Audience({"segment": row["name"], "segment_id": row["id"]}, where, params)
        if list_name not in (None, ""):
            row = _by_name_or_id(list_name, au.list_, au.list_named)
            if row is None:
                raise SendRefused("audience", f"no list named {list_name!r}")
            d = Definition((Condition("list", "=", row["name"]),))
            where, params = definition_sql(d)
            return Audience({"list": row["name"], "list_id": row["id"]}, where, params)
        d = (
            conditions
            if isinstance(conditions, Definition)
            else Definition(tuple(conditions or ()))
        )
        where, params = definition_sql(d)
        return Audience({"conditions": d.to_json()}, where, params)

    @staticmethod
    def parse_where(items: list[str]) -> list[Condition]:
        """``--where`` texts as conditions; SendRefused naming ``where``."""
        try:
            return [parse_condition(i) for i in items]
        except AudienceError as exc:
            raise SendRefused("where", str(exc)) from exc

    def check_body(self, text: str) -> str:
        """The text as it will be stored (emoji names expanded), its merge fields known."""
        text = check_text(text)
        body = expand_emoji(text or "")
        if not body.strip():
            raise SendRefused("text", "The message is empty.")
        unknown = [f for f in merge_fields(body) if not self._known_field(f)]
        if unknown:
            fields = ", ".join("{" + f + "}" for f in unknown)
            raise SendRefused(
                "text",
                f"Unknown merge field {fields}: use {{first_name}}, {{name}}, {{phone}} or a"
                " custom field that profiles have.",
            )
        return body

    def _known_field(self, field: str) -> bool:
        if field in BUILTIN_FIELDS:
            return True
        name = field.removeprefix("custom.")
        return self.store.audiences.field_exists(name)

    def longest(self, body: str, audience: Audience, *, fresh: bool = False) -> Longest:
        """The analysis of the longest expansion of ``body`` over ``audience`` (each field's
        longest value and its longest non-ASCII ones, combined, the worst taken)."""
        fields = merge_fields(body)
        values = (
            self.store.audiences.longest_values(audience.where, audience.params, fields)
            if fresh
            else self._longest_values(audience, fields)
        )
        limits = self.config.messages
        choices = [values.get(f) or [""] for f in fields]
        combos = list(itertools.islice(itertools.product(*choices), _MAX_COMBINATIONS))
        worst: tuple[tuple[int, int], str, smstext.Analysis] | None = None
        for combo in combos:
            lookup = dict(zip(fields, combo, strict=True))
            text = _FIELD.sub(lambda m, lk=lookup: lk.get(m.group(1).strip(), ""), body)
            a = smstext.analyze(text, ref16=limits.ref16, max_parts=limits.max_parts)
            key = (a.parts, -a.remaining)
            if worst is None or key > worst[0]:
                worst = (key, text, a)
        assert worst is not None
        return Longest(worst[2], worst[1], values)

    def _longest_values(self, audience: Audience, fields: list[str]) -> dict[str, list[str]]:
        """Each field's longest values over the audience, remembered for VALUES_FOR seconds:
        the compose page asks again at every pause in typing, and one field costs a read of
        every profile of the audience (0.2 s at 100,000)."""
        key_base = (audience.where, tuple(audience.params))
        at = time.monotonic()
        out: dict[str, list[str]] = {}
        missing = []
        with self._lock:
            for f in fields:
                hit = self._values.get((*key_base, f))
                if hit is not None and at - hit[0] < VALUES_FOR:
                    out[f] = hit[1]
                else:
                    missing.append(f)
        if missing:
            found = self.store.audiences.longest_values(audience.where, audience.params, missing)
            with self._lock:
                if len(self._values) > 256:
                    self._values.clear()
                for f, v in found.items():
                    self._values[(*key_base, f)] = (at, v)
            out.update(found)
        return out

    # -- creating -----------------------------------------------------------------------------

    def create(
        self,
        text: str,
        *,
        short_code: str,
        audience: Audience,
        name: str | None = None,
        campaign: str | None = None,
        at: str | datetime | None = None,
        timezone: str | None = None,
        per_recipient_tz: bool = False,
        user: str | None = None,
        request_key: str | None = None,
    ) -> dict[str, Any]:
        """Check and commit a broadcast; its reply (id, recipients, skipped, scheduled_for,
        state, and ``created``: False when ``request_key`` was already used for the same
        request, for the broadcast made then). Raises SendRefused naming the field, and
        IdempotencyConflict when ``request_key`` was used for another broadcast."""
        if request_key:
            known = self.store.broadcasts.by_request_key(request_key)
            if known is not None:
                self._same_request(known, text, short_code, audience, name, at, timezone)
                return {**self._created_reply(known), "created": False}
        body = self.check_body(text)
        if not short_code:
            raise SendRefused("short_code", "choose the short code to send from")
        sc = self.outbox.short_code_for(short_code)
        longest = self.longest(body, audience, fresh=True)
        if longest.analysis.too_long:
            raise SendRefused(
                "text",
                f"The longest expansion over this audience takes {longest.analysis.parts} SMS;"
                f" the limit is {longest.analysis.max_parts}.",
            )
        tz_name = timezone or self.config.timezone
        try:
            tz = zoneinfo.ZoneInfo(tz_name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise SendRefused("timezone", f"Unknown time zone {tz_name!r}.") from exc
        current = self.clock()
        wall: datetime | None = None
        if at not in (None, ""):
            moment = at if isinstance(at, datetime) else _parse_at(str(at))
            wall = moment.replace(tzinfo=None) if moment.tzinfo is None else None
            moment = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment
            if moment < current - PAST_GRACE:
                raise SendRefused("at", f"{moment.isoformat(timespec='minutes')} is in the past.")
            if wall is None:
                wall = moment.astimezone(tz).replace(tzinfo=None)
            scheduled: datetime | None = moment
        else:
            scheduled = None
        default_send_at = iso(scheduled or current)
        per_zone: dict[str, str] | None = None
        if per_recipient_tz and wall is not None:
            per_zone = {}
            for zone in self.store.audiences.timezones(audience.where, audience.params, TZ_FIELD):
                try:
                    local = wall.replace(tzinfo=zoneinfo.ZoneInfo(zone))
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    log.info(
                        "broadcast: time zone %r of a profile is unknown; theirs is %s",
                        zone,
                        tz_name,
                    )
                    continue
                per_zone[zone] = iso(local) or ""
        name = (name or "").strip() or body[:40]
        campaign_id = self._campaign(campaign or name, user)
        bid, created = self.store.broadcasts.create(
            NewBroadcast(
                name=name,
                body=body,
                campaign_id=campaign_id,
                short_code=sc.code,
                audience=audience.description,
                where=audience.where,
                params=audience.params,
                state=_BS.SCHEDULED,
                scheduled_for=iso(scheduled) if scheduled else None,
                timezone=tz_name,
                default_send_at=default_send_at or "",
                parts=longest.analysis.parts,
                encoding=longest.analysis.encoding,
                tz_field=TZ_FIELD if per_zone else None,
                per_zone=per_zone,
                created_by=user,
                request_key=request_key or None,
            )
        )
        if created:
            self.store.audit.add("broadcast.create", actor=user, id=bid, name=name)
            self._changed(bid)
        b = self.store.broadcasts.get(bid)
        assert b is not None
        return {**self._created_reply(b), "created": created}

    def _same_request(
        self,
        known: Mapping[str, Any],
        text: str,
        short_code: str,
        audience: Audience,
        name: str | None,
        at: str | datetime | None,
        timezone: str | None,
    ) -> None:
        """IdempotencyConflict unless a request whose key is stored asks for what the stored
        broadcast is (a retry): never "created" for a broadcast that was not made."""
        differs = []
        try:
            body = expand_emoji(check_text(text) or "")
        except SendRefused:
            body = None
        if body != known["body"]:
            differs.append("text")
        try:
            code = self.outbox.short_code_for(short_code).code if short_code else None
        except SendRefused:
            code = None
        if code != known["short_code"]:
            differs.append("short code")
        if json.loads(known["audience"]) != audience.description:
            differs.append("audience")
        if (name or "").strip() and name.strip() != known["name"]:
            differs.append("name")
        if not self._same_time(known, at, timezone):
            differs.append("time")
        if differs:
            raise IdempotencyConflict(
                f"This idempotency key was already used for broadcast {known['id']} with "
                f"another {' and '.join(differs)}; use a new key for a new broadcast."
            )

    @staticmethod
    def _same_time(known: Mapping[str, Any], at: str | datetime | None, zone: str | None) -> bool:
        """Whether ``at`` (read in ``zone``, else the stored broadcast's zone, as create reads
        it) is the stored broadcast's time ("now" only matches "now")."""
        if at in (None, "") or known["scheduled_for"] is None:
            return at in (None, "") and known["scheduled_for"] is None
        try:
            moment = at if isinstance(at, datetime) else _parse_at(str(at))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(zone or known["timezone"]))
        except (SendRefused, zoneinfo.ZoneInfoNotFoundError, ValueError):
            return False
        return parse(known["scheduled_for"]) == moment

    @staticmethod
    def _created_reply(b: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "id": int(b["id"]),
            "recipients": b["recipients"],
            "skipped": b["n_skipped"],
            "scheduled_for": b["scheduled_for"],
            "state": b["state"],
        }

    def _campaign(self, name: str, user: str | None) -> int:
        row = self.store.broadcasts.bulk_campaign_named(name)
        return int(row["id"]) if row is not None else self.store.campaigns.add_bulk(name, user)

    def send_test(
        self,
        text: str,
        *,
        to: str,
        short_code: str,
        audience: Audience | None = None,
        user: str | None = None,
    ) -> dict[str, Any]:
        """Send the text once to ``to`` now (chat priority), its merge fields filled with the
        profile of that number, else the audience's first profile; the message's id."""
        body = self.check_body(text)
        profile = None
        if audience is not None:
            profile = self.store.audiences.first(audience.where, audience.params)
        # The number's own profile fills the fields when it has one (the tester's own data).
        try:
            phone = normalize(to, self.config.default_region)
        except PhoneNumberError as exc:
            raise SendRefused("to", str(exc).removeprefix("phone: ")) from exc
        own = self.store.profiles.by_phone(phone)
        filled = expand(body, own if own is not None else profile or _EMPTY_PROFILE)
        acc = self.outbox.submit(filled, to=phone, short_code=short_code, user=user)
        return {
            "ok": True,
            "id": acc.message_id,
            "to": acc.phone,
            "text": filled,
            "parts": acc.parts,
        }

    # -- static lists -------------------------------------------------------------------------

    def list_from_csv(self, name: str, data: bytes, *, user: str | None = None) -> ListReport:
        """A static list of the profiles whose numbers a CSV file's ``phone`` column holds
        (numbers with no profile, or that are not numbers, are reported with their row, not
        added). CsvFileError for a file that cannot be read; AudienceError for the name."""
        header, records = read_csv(data)
        names = [h.strip().lstrip("\ufeff").strip().lower() for h in header]
        if "phone" not in names:
            raise CsvFileError(
                "there is no 'phone' column in the first line; name the column of numbers phone"
            )
        col = names.index("phone")
        report = ListReport(0, name.strip())
        ids: list[int] = []
        for row, cells in records:
            raw = cells[col].strip() if col < len(cells) else ""
            if not raw:
                continue
            try:
                phone = normalize(raw, self.config.default_region)
            except PhoneNumberError as exc:
                report.problems.append(f"row {row}: {raw!r}: {exc}".replace("phone: ", ""))
                continue
            profile = self.store.profiles.by_phone(phone)
            if profile is None:
                report.problems.append(f"row {row}: no profile has the number {phone}")
                continue
            ids.append(int(profile["id"]))
        with self.store.db.tx():
            list_id = self.store.audiences.create_list(name, source="CSV upload", user=user)
            report.added = self.store.audiences.add_members(list_id, ids)
        report.list_id = list_id
        return report

    def list_from_profiles(
        self, name: str, profile_ids: list[int], *, user: str | None = None
    ) -> int:
        """A static list (new, or an existing one of that name) of the chosen profiles; how
        many were added."""
        au = self.store.audiences
        with self.store.db.tx():
            row = au.list_named(name)
            list_id = (
                int(row["id"])
                if row is not None
                else au.create_list(name, source="Profiles table", user=user)
            )
            return au.add_members(list_id, profile_ids)

    # -- changing -----------------------------------------------------------------------------

    def pause(self, broadcast_id: int, user: str | None = None) -> dict[str, Any]:
        """Nothing more of it goes to the queue; its messages no modem has taken come back."""
        b = self._get(broadcast_id)
        if not self.store.broadcasts.move(broadcast_id, _BS.PAUSED, _BS.SCHEDULED, _BS.SENDING):
            raise SendRefused(
                "state", f"broadcast {broadcast_id} is {b['state']}; it cannot be paused"
            )
        self.store.broadcasts.take_back(broadcast_id, cancel=False)
        self.store.audit.add("broadcast.pause", actor=user, id=broadcast_id)
        return self._changed(broadcast_id) or self.status(broadcast_id)

    def resume(self, broadcast_id: int, user: str | None = None) -> dict[str, Any]:
        """A paused broadcast goes on (or waits again for its time)."""
        b = self._get(broadcast_id)
        later = b["scheduled_for"] is not None and parse(b["scheduled_for"]) > self.clock()
        new = _BS.SCHEDULED if later else _BS.SENDING
        if not self.store.broadcasts.move(broadcast_id, new, _BS.PAUSED):
            raise SendRefused("state", f"broadcast {broadcast_id} is {b['state']}, not paused")
        self.store.audit.add("broadcast.resume", actor=user, id=broadcast_id)
        return self._changed(broadcast_id) or self.status(broadcast_id)

    def cancel(self, broadcast_id: int, user: str | None = None) -> dict[str, Any]:
        """Stop it for good: what has not gone to a modem never will; what went stays."""
        b = self._get(broadcast_id)
        if not self.store.broadcasts.move(broadcast_id, _BS.CANCELLED, *BROADCAST_ACTIVE):
            raise SendRefused("state", f"broadcast {broadcast_id} is {b['state']}; it has ended")
        self.store.broadcasts.take_back(broadcast_id, cancel=True)
        self.store.audit.add("broadcast.cancel", actor=user, id=broadcast_id)
        return self._changed(broadcast_id) or self.status(broadcast_id)

    def _get(self, broadcast_id: int):
        b = self.store.broadcasts.get(broadcast_id)
        if b is None:
            raise SendRefused("id", f"no broadcast with id {broadcast_id}")
        return b

    def status(self, broadcast_id: int) -> dict[str, Any]:
        """Its state and counters: ``queued`` is what has not gone out yet (waiting for its
        turn or in the queue), ``sent`` what the network took (delivered included)."""
        return progress(self._get(broadcast_id))

    def _changed(self, broadcast_id: int) -> dict[str, Any] | None:
        """Publish its progress and wake the feeder; the progress published."""
        b = self.store.broadcasts.get(broadcast_id)
        p = None
        if b is not None:
            p = progress(b)
            self._any_active = True
            self._progress.pop(broadcast_id, None)
            self.events.publish("broadcast.progress", **p)
        self.wake()
        return p

    # -- the feeder ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the feeder thread (the daemon does, after the dispatcher)."""
        self._stop.clear()
        self._sub = self.events.subscribe(maxsize=64)
        self._thread = threading.Thread(target=self._run, name="broadcasts", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sub is not None:
            self._sub.close()

    def wake(self) -> None:
        """Run a feeder pass soon (a broadcast was created or changed)."""
        sub = self._sub
        if sub is not None:
            sub.poke()

    def _run(self) -> None:
        assert self._sub is not None
        while not self._stop.is_set():
            try:
                timeout = self.feed_once()
            except StoreError as exc:
                log.warning("broadcasts: feeding paused: %s", exc)
                timeout = 5.0
            except Exception:  # the feeder must survive a bad row; say so and go on
                log.exception("broadcasts: a feeder pass failed; trying again shortly")
                timeout = 5.0
            if not self._any_active:
                # No broadcast sending: the connection goes back to the store's pool until one
                # is (while one sends, the feeder wakes for every message and keeps it).
                self.store.release_connection()
            # Blocks until something happens on the bus (a message of a broadcast moved, a
            # broadcast changed) or the next timer; nothing is read while the gateway idles.
            while not self._stop.is_set():
                event = self._sub.get(timeout)
                if event is None or event.kind == "wake" or self._any_active:
                    break

    def feed_once(self) -> float | None:
        """One pass: start what is due, top up each sending broadcast's window, finish what is
        done, publish progress. Seconds until the next timer, None if none."""
        at = self.clock()
        timers: list[datetime] = []
        active = self.store.broadcasts.active()
        self._any_active = bool(active)
        for b in active:
            bid = int(b["id"])
            if b["state"] == _BS.SCHEDULED:
                when = parse(b["scheduled_for"]) if b["scheduled_for"] else None
                if when is not None and when > at:
                    timers.append(when)
                    continue
                self.store.broadcasts.move(bid, _BS.SENDING, _BS.SCHEDULED)
                log.info("broadcast %d: sending to %d recipients", bid, b["recipients"])
                b = self.store.broadcasts.get(bid)
            if b is not None and b["state"] == _BS.SENDING:
                nxt = self._top_up(b, at)
                if nxt is not None:
                    timers.append(nxt)
                self.store.broadcasts.finish_if_done(bid)
            timers += self._publish(bid)
        if not timers:
            return None
        return max(0.05, min((t - at).total_seconds() for t in timers))

    def window(self, short_code: str) -> int:
        """How many of a broadcast's messages may wait in the queue at once."""
        try:
            pool = len(self.config.short_code(short_code).modems)
        except KeyError:
            pool = 1
        return max(MIN_WINDOW, WINDOW_PER_MODEM * pool)

    def _top_up(self, b, at: datetime) -> datetime | None:
        """Fill the broadcast's window from its due recipients (only once it is half empty,
        so that a commit carries many messages); when the next pending one is due later."""
        bid = int(b["id"])
        size = self.window(b["short_code"])
        room = size - int(b["n_queued"])
        if int(b["n_pending"]) == 0:
            return None
        if room >= size // 2:
            rows = self.store.broadcasts.due(bid, iso(at), room)
            messages, skipped = [], []
            limits = self.config.messages
            for r in rows:
                if not r["may_text"]:
                    skipped.append(
                        (r["profile_id"], "inactive" if r["status"] != "active" else "opted_out")
                    )
                    continue
                if number_refusal(r["phone"]) is not None:
                    skipped.append((r["profile_id"], "not_mobile"))
                    continue
                text = expand(b["body"], r)
                try:
                    a = smstext.analyze(
                        text, ref16=limits.ref16, max_parts=limits.max_parts
                    ).check()
                except CodecError as exc:
                    # A field changed since the broadcast was made and the text no longer fits.
                    log.warning("broadcast %d: profile %d: %s", bid, r["profile_id"], exc)
                    skipped.append((r["profile_id"], "too_long"))
                    continue
                messages.append(
                    BroadcastMessage(r["profile_id"], r["phone"], text, a.encoding, a.parts)
                )
            if messages or skipped:
                expires = iso(at + timedelta(hours=limits.expiry_hours)) or ""
                ids = self.store.broadcasts.materialise(
                    bid, messages, skipped, priority=PRIORITY_BULK, expires_at=expires
                )
                if ids:
                    self._wake_dispatcher()
                if len(rows) == room:
                    return at  # more are due: the next pass at once
        when = parse(self.store.broadcasts.next_pending_time(bid))
        return when if when is not None and when > at else None

    def _publish(self, bid: int) -> list[datetime]:
        """A progress event when the counters changed (at most every PROGRESS_EVERY s); the
        time of a deferred one."""
        b = self.store.broadcasts.get(bid)
        if b is None:
            return []
        p = progress(b)
        key = tuple(sorted(p.items()))
        mono = time.monotonic()
        with self._lock:
            last = self._progress.get(bid)
            if last is not None and last[1] == key:
                return []
            if last is not None and mono - last[0] < PROGRESS_EVERY and p["state"] == last[2]:
                return [self.clock() + timedelta(seconds=PROGRESS_EVERY - (mono - last[0]))]
            self._progress[bid] = (mono, key, p["state"])
        self.events.publish("broadcast.progress", **p)
        return []

    # -- the control socket -------------------------------------------------------------------

    def control_ops(self) -> dict[str, Callable[[dict], dict]]:
        """The daemon's control-socket handlers for ``gateway broadcast``."""
        return {
            "broadcast.create": self._op_create,
            "broadcast.status": lambda r: self._op(r, lambda bid, user: self.status(bid)),
            "broadcast.list": self._op_list,
            "broadcast.pause": lambda r: self._op(r, self.pause),
            "broadcast.resume": lambda r: self._op(r, self.resume),
            "broadcast.cancel": lambda r: self._op(r, self.cancel),
        }

    def _op(self, request: dict, action: Callable[..., dict]) -> dict:
        try:
            bid = int(request.get("id"))
        except (TypeError, ValueError):
            return {"ok": False, "field": "id", "error": "a broadcast id (a number) is needed"}
        try:
            return {"ok": True, **action(bid, user=request.get("user") or "cli")}
        except SendRefused as exc:
            return {"ok": False, "field": exc.field, "error": exc.reason}

    def _op_create(self, request: dict) -> dict:
        try:
            for key in ("text", "short_code", "segment", "list", "name", "campaign", "at",
                        "timezone", "user"):  # fmt: skip
                value = request.get(key)
                if value is not None and not isinstance(value, str):
                    raise SendRefused(key, f"{key} must be a string")
            where = request.get("where") or []
            if not isinstance(where, list) or not all(isinstance(w, str) for w in where):
                raise SendRefused("where", "where must be a list of FIELD=VALUE texts")
            audience = self.audience(
                segment=request.get("segment"),
                list_name=request.get("list"),
                conditions=self.parse_where(where) if where else None,
            )
            return self.create(
                request.get("text") or "",
                short_code=str(request.get("short_code") or ""),
                audience=audience,
                name=request.get("name"),
                campaign=request.get("campaign"),
                at=request.get("at"),
                timezone=request.get("timezone"),
                per_recipient_tz=bool(request.get("per_recipient_tz")),
                user=request.get("user") or "cli",
            )
        except SendRefused as exc:
            return {"ok": False, "field": exc.field, "error": exc.reason}
        except AudienceError as exc:
            return {"ok": False, "field": exc.field, "error": str(exc)}

    def _op_list(self, request: dict) -> dict:
        return {
            "ok": True,
            "broadcasts": [progress(b) for b in self.store.broadcasts.page(limit=200)],
        }


_EMPTY_PROFILE = {"name": "", "phone": "", "custom": "{}"}


def progress(b: Mapping[str, Any]) -> dict[str, Any]:
    """A broadcast row as its JSON (the CLI's status and the page's live counters)."""
    return {
        "id": int(b["id"]),
        "name": b["name"],
        "state": str(b["state"]),
        "short_code": b["short_code"],
        "scheduled_for": b["scheduled_for"],
        "recipients": int(b["recipients"]),
        "queued": int(b["n_pending"]) + int(b["n_queued"]),
        "sent": int(b["n_sent"]) + int(b["n_delivered"]),
        "delivered": int(b["n_delivered"]),
        "failed": int(b["n_failed"]),
        "skipped": int(b["n_skipped"]),
        "cancelled": int(b["n_cancelled"]),
        "parts": int(b["parts"]),
    }


def _by_name_or_id(ref: str | int, by_id: Callable[[int], Any], named: Callable[[str], Any]):
    """The segment or list ``ref`` names: by its id when it is a number, else by its name."""
    return by_id(int(ref)) if isinstance(ref, int) or str(ref).isdigit() else named(str(ref))


def _parse_at(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise SendRefused(
            "at", f"{text!r} is not a date and time (write 2026-12-24T09:00, ISO-8601)"
        ) from exc
