"""Profiles as the team manages them: checked input, changes made by hand (recorded), and the
CSV import and export.

The store (``gateway.store.profiles``) only reads and writes rows; this module decides what a
valid profile is (an E.164 number in the configured region, a known status, sane custom
fields), activates and deactivates profiles (recorded in the audit log), and turns
spreadsheets into profiles row by row: each row is committed or rejected with its reason, and
a file that cannot be read at all changes nothing. Subscriptions change only through
``messaging/subscriptions.py``, the import's opt-outs too.
"""

from __future__ import annotations

import csv
import io
import logging
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..phone import PhoneNumberError, normalize
from ..store import ProfileError, Store
from ..store.profiles import custom_fields
from .events import EventBus
from .subscriptions import OptSource, ProfileNotFound, Subscriptions

__all__ = [
    "BASE_COLUMNS",
    "STATUSES",
    "CsvFileError",
    "ImportReport",
    "ProfileFields",
    "ProfileInvalid",
    "ProfileNotFound",
    "ProfileService",
    "RowResult",
    "read_csv",
]

log = logging.getLogger(__name__)

STATUSES = ("active", "inactive")
BASE_COLUMNS = ("name", "phone", "status", "subscribed")
MAX_NAME = 200
MAX_FIELD_NAME = 64
MAX_FIELD_VALUE = 1000
MAX_CUSTOM_FIELDS = 50

_YES = {"yes", "y", "true", "1", "subscribed", "opted in", "opted-in", "in"}
_NO = {"no", "n", "false", "0", "unsubscribed", "opted out", "opted-out", "out"}

# A spreadsheet treats a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_IMPORT_CHUNK = 200  # rows per transaction: bounded time holding the store's write lock


class ProfileInvalid(ValueError):
    """A profile cannot be saved as given; ``errors`` maps each form field to what is wrong."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class CsvFileError(ValueError):
    """The uploaded file cannot be read as a CSV of profiles; nothing was imported."""


@dataclass(frozen=True)
class ProfileFields:
    """A checked profile: E.164 phone, stripped name, known status, string custom fields."""

    name: str
    phone: str
    status: str = "active"
    subscribed: bool = True
    custom: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RowResult:
    """What happened to one data row of an import (``row`` counts the header as row 1, as a
    spreadsheet shows it)."""

    row: int
    outcome: str  # imported, updated, unchanged, rejected
    phone: str
    name: str
    message: str = ""


@dataclass
class ImportReport:
    """Every row's outcome and remarks about the file itself."""

    rows: list[RowResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    @property
    def counts(self) -> dict[str, int]:
        return {k: self.count(k) for k in ("imported", "updated", "unchanged", "rejected")}


def escape_cell(value: str) -> str:
    """A cell a spreadsheet will show as text: a leading ``'`` before a formula character (and
    before a leading ``'``, so that :func:`unescape_cell` gives back exactly the value)."""
    if value.startswith(_FORMULA_START) or value.startswith("'"):
        return "'" + value
    return value


def unescape_cell(value: str) -> str:
    """Undo :func:`escape_cell` (a ``'`` before a formula character or another ``'``)."""
    if len(value) > 1 and value[0] == "'" and value[1:].startswith((*_FORMULA_START, "'")):
        return value[1:]
    return value


def parse_subscribed(value: str) -> bool:
    """``yes``/``no`` (and true/false, 1/0, subscribed/opted out) as a bool; ValueError else."""
    word = value.strip().lower()
    if word in _YES:
        return True
    if word in _NO:
        return False
    raise ValueError(f"subscribed {value!r} must be yes or no")


class ProfileService:
    """Create, change, import and export profiles for the web app (one per request is fine: it
    keeps no state of its own)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        events: EventBus,
        *,
        subscriptions: Subscriptions | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.events = events
        # The import's opt-outs go the one way every subscription change goes.
        self.subscriptions = subscriptions or Subscriptions(store, events)

    # -- checking ------------------------------------------------------------------------

    def normalize_phone(self, raw: str) -> str:
        """E.164 for a number as typed, read in the configured region."""
        try:
            return normalize(raw, self.config.default_region)
        except PhoneNumberError as exc:
            raise ProfileInvalid({"phone": str(exc).removeprefix("phone: ")}) from exc

    def validate(
        self,
        *,
        name: str,
        phone: str,
        status: str = "active",
        subscribed: bool = True,
        custom: Mapping[str, str] | None = None,
        profile_id: int | None = None,
    ) -> ProfileFields:
        """Check every field (all errors at once); ``profile_id`` is the profile being edited,
        whose own number is not a duplicate."""
        errors: dict[str, str] = {}
        name = (name or "").strip()
        # Each error a sentence: the form shows it under its field as it is.
        if len(name) > MAX_NAME:
            errors["name"] = (
                f"The name is too long: at most {MAX_NAME} characters ({len(name)} given)."
            )
        elif not name.isprintable():
            errors["name"] = "The name must not contain control characters such as line breaks."
        e164 = ""
        try:
            e164 = self.normalize_phone(phone)
        except ProfileInvalid as exc:
            errors.update(exc.errors)
        else:
            other = self.store.profiles.by_phone(e164)
            if other is not None and other["id"] != profile_id:
                who = f" ({other['name']})" if other["name"] else ""
                errors["phone"] = f"A profile with {e164} already exists{who}."
        if status not in STATUSES:
            errors["status"] = f"The status must be active or inactive, not {status!r}."
        checked_custom, custom_error = check_custom(custom or {})
        if custom_error:
            errors["custom"] = f"Custom fields: {custom_error}."
        if errors:
            raise ProfileInvalid(errors)
        return ProfileFields(name, e164, status, bool(subscribed), checked_custom)

    # -- changes by hand -----------------------------------------------------------------

    def get(self, profile_id: int) -> sqlite3.Row:
        row = self.store.profiles.get(profile_id)
        if row is None:
            raise ProfileNotFound(f"no profile with id {profile_id}")
        return row

    def create(self, fields: ProfileFields, *, actor: str) -> int:
        """Add a checked profile; one created opted out gets that in its opt history."""
        try:
            with self.store.db.tx():
                pid = self.store.profiles.add(
                    fields.phone,
                    fields.name,
                    status=fields.status,
                    subscribed=fields.subscribed,
                    custom=fields.custom,
                )
                if not fields.subscribed:
                    self.store.opt_events.record(pid, "opt_out", source="agent", actor=actor)
                self.store.audit.add("profile.add", actor=actor, profile_id=pid, phone=fields.phone)
        except ProfileError as exc:  # the same number added at the same moment elsewhere
            raise ProfileInvalid({"phone": str(exc).removeprefix("phone: ")}) from exc
        return pid

    def update(self, profile_id: int, fields: ProfileFields, *, actor: str) -> None:
        """Save name, phone, status and custom fields, in one transaction. A change of status
        is :meth:`activate` or :meth:`deactivate` (audited as such); subscription changes go
        through :class:`~gateway.messaging.subscriptions.Subscriptions`, so each is recorded."""
        old = self.get(profile_id)
        changes: dict[str, Any] = {}
        if fields.name != old["name"]:
            changes["name"] = fields.name
        if fields.phone != old["phone"]:
            changes["phone"] = fields.phone
        if fields.custom != custom_fields(old):
            changes["custom"] = fields.custom
        status_changed = fields.status != old["status"]
        if not changes and not status_changed:
            return
        try:
            with self.store.db.tx():
                if changes:
                    self.store.profiles.update(profile_id, **changes)
                    self.store.audit.add(
                        "profile.update",
                        actor=actor,
                        profile_id=profile_id,
                        phone=fields.phone,
                        changed=sorted(changes),
                    )
                if status_changed:
                    self._set_status(profile_id, fields.status == "active", actor=actor)
        except ProfileError as exc:
            raise ProfileInvalid({"phone": str(exc).removeprefix("phone: ")}) from exc

    def activate(self, profile_id: int, *, actor: str) -> bool:
        """Make an inactive profile active again ("Reactivate" in the UI); its subscription
        is left as it is. False when it already was active."""
        return self._set_status(profile_id, True, actor=actor)

    def deactivate(self, profile_id: int, *, actor: str) -> bool:
        """Make a profile inactive: no texts go to it, whatever its subscription. False when
        it already was inactive."""
        return self._set_status(profile_id, False, actor=actor)

    def _set_status(self, profile_id: int, active: bool, *, actor: str) -> bool:
        old = self.get(profile_id)
        status = "active" if active else "inactive"
        if old["status"] == status:
            return False
        with self.store.db.tx():
            self.store.profiles.update(profile_id, status=status)
            self.store.audit.add(
                "profile.reactivate" if active else "profile.deactivate",
                actor=actor,
                profile_id=profile_id,
                phone=old["phone"],
            )
        return True

    # -- reading -------------------------------------------------------------------------

    def history(
        self, profile_id: int, *, before: int | None = None, limit: int = 100
    ) -> tuple[list[sqlite3.Row], dict[int, dict[str, int]], bool]:
        """A page of the profile's messages, newest first, older than message ``before``; the
        part states of each ({message id: {status: count}}); whether older ones exist."""
        rows = self.store.messages.conversation_page(profile_id, before=before, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        ids = [r["id"] for r in rows if r["direction"] == "out"]
        parts = self.store.messages.part_states(ids)
        return rows, parts, more

    # -- CSV -----------------------------------------------------------------------------

    def export_csv(self) -> str:
        """Every profile as CSV text (see :meth:`export_chunks`), in one string: for tests and
        small stores; the web app streams the chunks."""
        return "".join(self.export_chunks())

    def export_chunks(self, batch: int = 1000) -> Iterator[str]:
        """Every profile as CSV (UTF-8 text with a BOM for spreadsheets): name, phone, status,
        subscribed (yes/no), then one column per custom field; formula-like cells are escaped.
        Yields the text a batch of profiles at a time, so that memory stays the same whether
        there are a hundred profiles or a hundred thousand."""
        extra = [
            k for k in self.store.profiles.custom_field_names() if k.lower() not in BASE_COLUMNS
        ]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        out.write("\ufeff")
        # Names are checked when saved, but one stored before that rule is escaped like a value.
        writer.writerow([escape_cell(c) for c in (*BASE_COLUMNS, *extra)])
        for rows in self.store.profiles.batches(batch):
            for row in rows:
                custom = custom_fields(row)
                cells = [
                    row["name"],
                    row["phone"],
                    row["status"],
                    "yes" if row["subscribed"] else "no",
                    *(_text(custom.get(k, "")) for k in extra),
                ]
                writer.writerow([escape_cell(c) for c in cells])
            yield out.getvalue()
            out.seek(0)
            out.truncate()
        if out.tell():
            yield out.getvalue()

    def import_csv(self, data: bytes, *, actor: str) -> ImportReport:
        """Import a CSV file: a ``phone`` column (required), ``name``, ``status``,
        ``subscribed``, and any other column as a custom field. A row with a known number
        updates that profile (an empty cell leaves its field as it is); each row is committed
        or rejected with its reason. An unreadable file raises CsvFileError, changing nothing.
        Importing never re-subscribes someone who opted out: only they or an agent by hand can.
        """
        header, records = read_csv(data)
        report = ImportReport()
        columns = _columns(header, report)
        report.columns = [name for _, name in columns]
        seen: dict[str, int] = {}
        planned: list[tuple[int, dict[str, Any]]] = []
        for number, cells in records:
            if not any(c.strip() for c in cells):
                continue  # blank lines spreadsheets leave at the end
            if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
                report.rows.append(
                    RowResult(
                        number,
                        "rejected",
                        "",
                        "",
                        f"row {number}: has {len(cells)} cells but the header has"
                        f" {len(header)} columns",
                    )
                )
                continue
            values = {
                name: unescape_cell(cells[i].strip()) if i < len(cells) else ""
                for i, name in columns
            }
            row, error = self._check_row(number, values, seen)
            if error:
                report.rows.append(
                    RowResult(
                        number, "rejected", values.get("phone", ""), values.get("name", ""), error
                    )
                )
                continue
            seen[row["phone"]] = number
            planned.append((number, row))
        for start in range(0, len(planned), _IMPORT_CHUNK):
            with self.store.db.tx():
                for number, row in planned[start : start + _IMPORT_CHUNK]:
                    report.rows.append(self._apply_row(number, row, actor))
        report.rows.sort(key=lambda r: r.row)
        self.store.audit.add("profile.import", actor=actor, **report.counts)
        return report

    def _check_row(
        self, number: int, values: dict[str, str], seen: dict[str, int]
    ) -> tuple[dict[str, Any], str | None]:
        errors = []
        raw_phone = values.get("phone", "")
        phone = ""
        if not raw_phone:
            errors.append("phone: the cell is empty")
        else:
            try:
                phone = normalize(raw_phone, self.config.default_region)
            except PhoneNumberError as exc:
                errors.append(str(exc))
            else:
                if phone in seen:
                    errors.append(f"phone: {phone} is also on row {seen[phone]}")
        name = values.get("name", "")
        if len(name) > MAX_NAME:
            errors.append(f"name: at most {MAX_NAME} characters ({len(name)} given)")
        elif not name.isprintable():
            errors.append("name: must not contain control characters such as line breaks")
        status = values.get("status", "").lower() or None
        if status is not None and status not in STATUSES:
            errors.append(f"status: {values['status']!r} must be active or inactive")
        subscribed = None
        if values.get("subscribed", ""):
            try:
                subscribed = parse_subscribed(values["subscribed"])
            except ValueError as exc:
                errors.append(str(exc).replace("subscribed ", "subscribed: ", 1))
        custom = {k: v for k, v in values.items() if k not in BASE_COLUMNS and v}
        _, custom_error = check_custom(custom)
        if custom_error:
            errors.append(f"custom field {custom_error}")
        if errors:
            return {}, f"row {number}: " + "; ".join(errors)
        return {
            "phone": phone,
            "name": name or None,
            "status": status,
            "subscribed": subscribed,
            "custom": custom,
        }, None

    def _apply_row(self, number: int, row: dict[str, Any], actor: str) -> RowResult:
        phone, name = row["phone"], row["name"]
        existing = self.store.profiles.by_phone(phone)
        try:
            if existing is None:
                subscribed = True if row["subscribed"] is None else row["subscribed"]
                pid = self.store.profiles.add(
                    phone,
                    name or "",
                    status=row["status"] or "active",
                    subscribed=subscribed,
                    custom=row["custom"],
                )
                if not subscribed:
                    self.store.opt_events.record(pid, "opt_out", source="import", actor=actor)
                return RowResult(number, "imported", phone, name or "")
            changes: dict[str, Any] = {}
            note = ""
            if name is not None and name != existing["name"]:
                changes["name"] = name
            if row["status"] is not None and row["status"] != existing["status"]:
                changes["status"] = row["status"]
            custom = custom_fields(existing)
            merged = {**custom, **row["custom"]}
            if merged != custom:
                changes["custom"] = merged
            opt_out = False
            if row["subscribed"] is not None and row["subscribed"] != bool(existing["subscribed"]):
                if row["subscribed"]:
                    note = "kept opted out: only the person (texting START) or an agent can"
                    note += " re-subscribe them"
                else:
                    opt_out = True
            shown = name if name is not None else existing["name"]
            if not changes and not opt_out:
                return RowResult(number, "unchanged", phone, shown, note)
            if changes:
                self.store.profiles.update(existing["id"], **changes)
            if opt_out:
                self.subscriptions.unsubscribe(existing["id"], OptSource.by_import(actor))
            return RowResult(number, "updated", phone, shown, note)
        except ProfileError as exc:
            log.warning("import row %d (%s) refused by the store: %s", number, phone, exc)
            return RowResult(number, "rejected", phone, name or "", f"row {number}: {exc}")


def field_name_problem(name: str) -> str | None:
    """The one rule for a custom field's name, used by the profile form, the CSV import and
    (through them) everything the export writes: 1-64 printable characters, not one of the
    profile's own columns, and not starting with a character that makes a spreadsheet read the
    cell as a formula (``= + - @``). What is wrong, in words, or None for a good name."""
    if not name:
        return "a custom field needs a name"
    if name.lower() in BASE_COLUMNS:
        return f"{name!r} is a profile column, not a custom field"
    if len(name) > MAX_FIELD_NAME or not name.isprintable():
        return f"{name[:40]!r}: a name is 1-{MAX_FIELD_NAME} printable characters"
    if name.startswith(_FORMULA_START):
        return (
            f"{name[:40]!r}: a name must not start with {name[0]!r} (a spreadsheet would run"
            " it as a formula); start it with a letter or digit"
        )
    return None


def check_custom(custom: Mapping[str, Any]) -> tuple[dict[str, str], str | None]:
    """Custom fields as {name: text}, and what is wrong with them (None when nothing)."""
    checked: dict[str, str] = {}
    if len(custom) > MAX_CUSTOM_FIELDS:
        return checked, f"at most {MAX_CUSTOM_FIELDS} custom fields ({len(custom)} given)"
    for raw_key, raw_value in custom.items():
        key = str(raw_key).strip()
        value = _text(raw_value).strip()
        if not key:
            return checked, f"the field with value {value[:40]!r} needs a name"
        problem = field_name_problem(key)
        if problem:
            return checked, problem
        if len(value) > MAX_FIELD_VALUE:
            return checked, f"{key!r}: at most {MAX_FIELD_VALUE} characters ({len(value)} given)"
        if value:
            checked[key] = value
    return checked, None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def read_csv(data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the data records (with their spreadsheet row numbers) of an upload."""
    if not data.strip():
        raise CsvFileError("the file is empty")
    head = data[:4096]
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise CsvFileError(
            "this is a spreadsheet file (Excel or similar), not CSV; save it as 'CSV UTF-8'"
        )
    if b"\x00" in head:
        raise CsvFileError("this is not a text file; upload a CSV file (UTF-8)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvFileError(
            f"the file is not UTF-8 text (byte {data[exc.start]:#04x} at position {exc.start});"
            " save it as 'CSV UTF-8'"
        ) from exc
    first_line = text.split("\n", 1)[0]
    # Spreadsheets in some locales write ';' or tabs; the header line tells which.
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[tuple[int, list[str]]] = []
    try:
        header = next(reader, None)
        for cells in reader:
            records.append((len(records) + 2, cells))
    except csv.Error as exc:
        raise CsvFileError(f"line {reader.line_num}: {exc}; nothing was imported") from exc
    if header is None:
        raise CsvFileError("the file is empty")
    return header, records


def _columns(header: list[str], report: ImportReport) -> list[tuple[int, str]]:
    """(index, column name) of the columns to read; base columns are matched without case."""
    columns: list[tuple[int, str]] = []
    seen: set[str] = set()
    for i, raw in enumerate(header):
        name = raw.strip().lstrip("\ufeff").strip()
        if not name:
            report.notes.append(f"column {i + 1} has no name in the header and was ignored")
            continue
        if name.lower() in BASE_COLUMNS:
            name = name.lower()
        else:
            name = unescape_cell(name)  # as the export writes a name it had to escape
            problem = field_name_problem(name)
            if problem:
                raise CsvFileError(f"column {i + 1} of the header: {problem}")
        if name.lower() in seen:
            raise CsvFileError(f"the column {name!r} appears twice in the header")
        seen.add(name.lower())
        columns.append((i, name))
    if "phone" not in seen:
        found = ", ".join(repr(n) for _, n in columns[:10]) or "none"
        raise CsvFileError(
            f"there is no 'phone' column in the first line (columns found: {found}); the"
            " first line must name the columns: name, phone, status, subscribed, ..."
        )
    return columns
