"""ProfileService: checks, changes by hand (recorded), history pages, CSV import and export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest

from gateway.config import parse_config
from gateway.messaging.events import EventBus
from gateway.messaging.profiles import (
    CsvFileError,
    ProfileInvalid,
    ProfileNotFound,
    ProfileService,
    escape_cell,
    parse_subscribed,
    unescape_cell,
)
from gateway.messaging.subscriptions import OptSource, Subscriptions
from gateway.store import NewOutbound, Store
from gateway.store.profiles import custom_fields

CONFIG = """
data_dir: {data_dir}
default_region: US
modems:
  - {{id: a, imei: "490154203237518"}}
short_codes:
  - {{code: "55123", name: Support, modems: [a]}}
"""


class Env:
    def __init__(self, tmp_path) -> None:
        self.config = parse_config(CONFIG.format(data_dir=tmp_path))
        self.store = Store.open(tmp_path)
        self.events = EventBus()
        self.sub = self.events.subscribe()
        self.service = ProfileService(self.config, self.store, self.events)
        self.subscriptions = Subscriptions(self.store, self.events)

    def set_subscribed(self, pid: int, subscribed: bool, actor: str) -> bool:
        by = OptSource.by_hand(actor)
        if subscribed:
            return self.subscriptions.subscribe(pid, by)
        return self.subscriptions.unsubscribe(pid, by)

    def add(self, phone: str, name: str = "", **kw) -> int:
        return self.service.create(
            self.service.validate(name=name, phone=phone, **kw), actor="tester"
        )

    def snapshot(self) -> list[tuple]:
        return [
            (r["name"], r["phone"], r["status"], r["subscribed"], custom_fields(r))
            for r in self.store.profiles.all()
        ]

    def audit_actions(self) -> list[str]:
        return [r["action"] for r in reversed(self.store.audit.recent())]


@pytest.fixture
def env(tmp_path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.sub.close()
    e.store.close()


def csv_bytes(*rows: list[str], bom: bool = False, delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return (("\ufeff" if bom else "") + out.getvalue()).encode("utf-8")


# -- checking ------------------------------------------------------------------------------


def test_validate_normalises_the_number_in_the_configured_region(env: Env) -> None:
    fields = env.service.validate(
        name="  Ann  ", phone="(555) 123-0001", custom={"City": " Paris "}
    )
    assert (fields.name, fields.phone, fields.custom) == ("Ann", "+15551230001", {"City": "Paris"})


@pytest.mark.parametrize(
    ("kw", "field", "words"),
    [
        ({"phone": "12"}, "phone", "wrong number of digits"),
        ({"phone": ""}, "phone", "required"),
        ({"phone": "call me"}, "phone", "not a phone number"),
        ({"status": "gone"}, "status", "active or inactive"),
        ({"name": "x" * 201}, "name", "at most 200"),
        ({"name": "two\nlines"}, "name", "control characters"),
        ({"custom": {"phone": "1"}}, "custom", "profile column"),
        ({"custom": {"": "orphan value"}}, "custom", "needs a name"),
        ({"custom": {"k": "v" * 1001}}, "custom", "at most 1000"),
    ],
)
def test_validate_names_the_bad_field(env: Env, kw, field, words) -> None:
    args = {"name": "Ann", "phone": "+15551230001", **kw}
    with pytest.raises(ProfileInvalid) as info:
        env.service.validate(**args)
    assert words in info.value.errors[field]


def test_duplicate_number_is_refused_but_not_for_the_profile_itself(env: Env) -> None:
    pid = env.add("+15551230001", "Ann")
    with pytest.raises(ProfileInvalid) as info:
        env.service.validate(name="Bob", phone="555 123 0001")
    assert info.value.errors["phone"] == "A profile with +15551230001 already exists (Ann)."
    assert env.service.validate(name="Ann B", phone="+15551230001", profile_id=pid)


def test_all_errors_are_reported_at_once(env: Env) -> None:
    with pytest.raises(ProfileInvalid) as info:
        env.service.validate(name="a\tb", phone="12", status="x")
    assert set(info.value.errors) == {"name", "phone", "status"}


# -- changes by hand -----------------------------------------------------------------------


def test_opt_out_and_back_by_hand_are_recorded_with_the_agent(env: Env) -> None:
    pid = env.add("+15551230001", "Ann")
    assert env.set_subscribed(pid, False, actor="agent1") is True
    assert env.set_subscribed(pid, False, actor="agent1") is False  # no change, no record
    assert env.set_subscribed(pid, True, actor="agent2") is True
    history = [(e["action"], e["source"], e["actor"]) for e in env.store.opt_events.history(pid)]
    assert history == [("opt_out", "agent", "agent1"), ("opt_in", "agent", "agent2")]
    assert env.audit_actions()[-2:] == ["profile.opt_out", "profile.opt_in"]
    kinds = [env.sub.get(0), env.sub.get(0)]
    assert [(e.kind, e.data) for e in kinds] == [
        ("profile.changed", {"id": pid, "subscribed": False, "short_code": None}),
        ("profile.changed", {"id": pid, "subscribed": True, "short_code": None}),
    ]


def test_a_profile_created_opted_out_has_that_in_its_history(env: Env) -> None:
    pid = env.add("+15551230001", subscribed=False)
    assert not env.store.profiles.get(pid)["subscribed"]
    assert [e["action"] for e in env.store.opt_events.history(pid)] == ["opt_out"]


def test_deactivate_reactivate_and_update_are_audited(env: Env) -> None:
    pid = env.add("+15551230001", "Ann")
    assert env.service.deactivate(pid, actor="t") is True
    assert env.service.deactivate(pid, actor="t") is False
    assert env.store.profiles.get(pid)["status"] == "inactive"
    assert env.service.activate(pid, actor="t") is True
    same = env.service.validate(name="Ann", phone="+15551230001", profile_id=pid)
    env.service.update(pid, same, actor="t")  # nothing changed: nothing recorded
    other = env.service.validate(
        name="Ann B", phone="+15551230002", custom={"a": "1"}, profile_id=pid
    )
    env.service.update(pid, other, actor="t")
    row = env.store.profiles.get(pid)
    assert (row["name"], row["phone"], custom_fields(row)) == ("Ann B", "+15551230002", {"a": "1"})
    assert env.audit_actions() == [
        "profile.add",
        "profile.deactivate",
        "profile.reactivate",
        "profile.update",
    ]


def test_a_status_changed_in_the_edit_form_is_a_deactivation(env: Env) -> None:
    # The edit form's status field goes through deactivate/activate, audited as they are.
    pid = env.add("+15551230001", "Ann")
    fields = env.service.validate(
        name="Ann B", phone="+15551230001", status="inactive", profile_id=pid
    )
    env.service.update(pid, fields, actor="t")
    assert env.store.profiles.get(pid)["status"] == "inactive"
    assert env.audit_actions()[-2:] == ["profile.update", "profile.deactivate"]
    same = env.service.validate(name="Ann B", phone="+15551230001", profile_id=pid)
    env.service.update(pid, same, actor="t")
    assert env.audit_actions()[-1] == "profile.reactivate"


def test_unknown_profile(env: Env) -> None:
    with pytest.raises(ProfileNotFound):
        env.set_subscribed(99, False, actor="t")


def test_history_pages_newest_first_with_part_states(env: Env) -> None:
    pid = env.add("+15551230001")
    ids = []
    for i in range(5):
        mid, _ = env.store.messages.add_outbound(
            NewOutbound(pid, "+15551230001", "55123", f"m{i}", "gsm7", 2, None, 0, "2099-01-01")
        )
        ids.append(mid)
    env.store.messages.ensure_parts(ids[-1], [(1, "00", 10), (2, "00", 10)])
    rows, parts, more = env.service.history(pid, limit=3)
    assert [r["id"] for r in rows] == ids[::-1][:3] and more
    assert parts[ids[-1]] == {"pending": 2}
    rows, _, more = env.service.history(pid, before=rows[-1]["id"], limit=3)
    assert [r["id"] for r in rows] == ids[1::-1] and not more


# -- CSV cells -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["=1+1", "+15551230001", "-2", "@SUM(A1)", "\tx", "'", "''=x", "'=x", "plain", ""]
)
def test_escaped_cells_come_back_exactly(value: str) -> None:
    escaped = escape_cell(value)
    assert not escaped.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert unescape_cell(escaped) == value


def test_subscribed_words() -> None:
    assert parse_subscribed(" YES ") and parse_subscribed("1") and parse_subscribed("true")
    assert not parse_subscribed("No") and not parse_subscribed("opted out")
    with pytest.raises(ValueError, match="yes or no"):
        parse_subscribed("maybe")


# -- export --------------------------------------------------------------------------------


def test_export_escapes_formulas_and_lists_custom_fields(env: Env) -> None:
    env.add("+15551230001", '=HYPERLINK("http://x")', custom={"note": "@cmd", "city": "Paris"})
    env.add("+15551230002", "Bob", status="inactive", subscribed=False)
    text = env.service.export_csv()
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["name", "phone", "status", "subscribed", "city", "note"]
    assert rows[1] == [
        '\'=HYPERLINK("http://x")',
        "'+15551230001",
        "active",
        "yes",
        "Paris",
        "'@cmd",
    ]
    assert rows[2] == ["Bob", "'+15551230002", "inactive", "no", "", ""]


# -- import --------------------------------------------------------------------------------


def test_import_creates_updates_and_rejects_row_by_row(env: Env) -> None:
    env.add("+15551230001", "Ann", custom={"city": "Paris"})
    before = env.snapshot()
    data = csv_bytes(
        ["Name", "Phone", "status", "subscribed", "city", "team"],
        ["Ann Lee", "555-123-0001", "", "", "", "red"],  # row 2: update (empty cells kept)
        ["Bob", "+1 555 123 0002", "inactive", "no", "Oslo", ""],  # row 3: new, opted out
        ["Cy", "12", "", "", "", ""],  # row 4: bad number
        ["Di", "", "", "", "", ""],  # row 5: no number
        ["", "", "", "", "", ""],  # blank line: skipped
        ["Ed", "5551230005", "gone", "maybe", "", ""],  # row 7: two bad cells
        ["Fay", "(555) 123-0002", "", "", "", ""],  # row 8: same number as row 3
        ["Gus", "5551230007", "", "", "", "", "extra"],  # row 9: too many cells
        ["Hal", "5551230008"],  # row 10: short row is fine
        bom=True,
    )
    report = env.service.import_csv(data, actor="t")
    outcomes = [(r.row, r.outcome) for r in report.rows]
    assert outcomes == [
        (2, "updated"),
        (3, "imported"),
        (4, "rejected"),
        (5, "rejected"),
        (7, "rejected"),
        (8, "rejected"),
        (9, "rejected"),
        (10, "imported"),
    ]
    messages = {r.row: r.message for r in report.rows}
    assert messages[4] == (
        "row 4: phone: The number '12' has the wrong number of digits for its country."
    )
    assert messages[5] == "row 5: phone: the cell is empty"
    assert "status: 'gone' must be active or inactive" in messages[7]
    assert "subscribed: 'maybe' must be yes or no" in messages[7]
    assert messages[8] == "row 8: phone: +15551230002 is also on row 3"
    assert "has 7 cells but the header has 6 columns" in messages[9]
    assert report.counts == {"imported": 2, "updated": 1, "unchanged": 0, "rejected": 5}
    ann = env.store.profiles.by_phone("+15551230001")
    assert ann["name"] == "Ann Lee" and custom_fields(ann) == {"city": "Paris", "team": "red"}
    bob = env.store.profiles.by_phone("+15551230002")
    assert (bob["name"], bob["status"], bob["subscribed"]) == ("Bob", "inactive", 0)
    assert custom_fields(bob) == {"city": "Oslo"}
    assert [(e["action"], e["source"]) for e in env.store.opt_events.history(bob["id"])] == [
        ("opt_out", "import")
    ]
    assert len(env.snapshot()) == len(before) + 2
    assert env.audit_actions()[-1] == "profile.import"


def test_import_never_resubscribes_someone_who_opted_out(env: Env) -> None:
    pid = env.add("+15551230001", "Ann")
    env.set_subscribed(pid, False, actor="t")
    report = env.service.import_csv(
        csv_bytes(["phone", "subscribed"], ["5551230001", "yes"]), actor="t"
    )
    assert report.rows[0].outcome == "unchanged" and "kept opted out" in report.rows[0].message
    assert not env.store.profiles.get(pid)["subscribed"]


def test_import_can_opt_out_and_publishes_it(env: Env) -> None:
    pid = env.add("+15551230001", "Ann")
    env.service.import_csv(csv_bytes(["phone", "subscribed"], ["5551230001", "no"]), actor="t")
    assert not env.store.profiles.get(pid)["subscribed"]
    event = env.sub.get(0)
    assert (event.kind, event.data) == (
        "profile.changed",
        {"id": pid, "subscribed": False, "short_code": None},
    )


def test_semicolon_files_and_crlf_inside_quotes(env: Env) -> None:
    data = csv_bytes(
        ["name", "phone", "note"], ["Ann", "5551230001", "line1\nline2"], delimiter=";"
    )
    report = env.service.import_csv(data, actor="t")
    assert report.counts["imported"] == 1
    assert custom_fields(env.store.profiles.by_phone("+15551230001")) == {"note": "line1\nline2"}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"  \r\n", "empty"),
        (b"PK\x03\x04\x14\x00\x06\x00binary", "spreadsheet file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file"),
        ("name,phone\nZoë,5551230001\n".encode("latin-1"), "not UTF-8"),
        (b"name,number\nAnn,5551230001\n", "no 'phone' column"),
        (b"name,phone,Name\nAnn,5551230001,x\n", "appears twice"),
        (b'name,phone\n"Ann,5551230001\n', "nothing was imported"),
    ],
)
def test_a_bad_file_changes_nothing(env: Env, data: bytes, words: str) -> None:
    env.add("+15551230009", "Zed")
    before = env.snapshot()
    with pytest.raises(CsvFileError, match=words):
        env.service.import_csv(data, actor="t")
    assert env.snapshot() == before


def test_columns_without_a_name_are_ignored_with_a_note(env: Env) -> None:
    report = env.service.import_csv(b"phone,,name\n5551230001,junk,Ann\n", actor="t")
    assert report.counts["imported"] == 1 and "column 2 has no name" in report.notes[0]
    assert custom_fields(env.store.profiles.by_phone("+15551230001")) == {}


def test_round_trip_export_then_import_gives_the_same_profiles(env: Env, tmp_path) -> None:
    env.add("+15551230001", "=cmd|' /C calc'!A0", custom={"note": "-5", "emoji": "👍 ok"})
    env.add("+447700900123", "Zoë 'Quote' \"Marks\"", status="inactive", subscribed=False)
    env.add("+15551230003", "", custom={"city": "São Paulo, BR"})
    exported = env.service.export_csv().encode("utf-8")

    again = env.service.import_csv(exported, actor="t")  # into the same store: nothing changes
    assert again.counts == {"imported": 0, "updated": 0, "unchanged": 3, "rejected": 0}

    other = Env(tmp_path / "other")
    try:
        report = other.service.import_csv(exported, actor="t")
        assert report.counts["imported"] == 3
        assert sorted(other.snapshot()) == sorted(env.snapshot())
    finally:
        other.sub.close()
        other.store.close()
