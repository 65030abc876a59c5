"""The pages stay fast as the store grows: every query that the Home, Inbox, Messages and
Profiles pages and the two CSV exports run is served by an index, checked on its query plan.

The store is filled with realistic data (tests/scale/fill.py): 2,000 profiles and 20,000
messages in the normal run, 100,000 and 1,000,000 with ``--long``. The SQL a page really runs
is captured through the Flask test client with a trace callback on the store's connection, and
each statement is explained (EXPLAIN QUERY PLAN). A plan passes when no statement reads a whole
table of messages or profiles, sorts what it found for its ORDER BY (SQLite's "temp b-tree"),
or walks a whole index of messages. Timings are for bench/store_pages.py, not for tests.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store import Store, migrations
from gateway.store.search import MessageFilter
from gateway.store.states import MessageStatus

from .fill import MODEMS, SHORT_CODES, Shape, fill
from .harness import ScaleApp

pytestmark = pytest.mark.slow

TABLES = re.compile(r"\b(messages|profiles)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def shape(request: pytest.FixtureRequest) -> Shape:
    return Shape.full() if request.config.getoption("--long") else Shape.small()


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory, shape: Shape) -> Iterator[ScaleApp]:
    data_dir = tmp_path_factory.mktemp("scale")
    Store.open(data_dir).close()
    fill(data_dir / "gateway.sqlite3", shape)
    app = ScaleApp(data_dir)
    yield app
    app.close()


class Traced:
    """The statements the store's connection (this thread's) runs while a page is served."""

    def __init__(self, app: ScaleApp) -> None:
        self.app = app
        self.client = app.client()
        self.conn: sqlite3.Connection = app.store.db.conn

    def get(self, url: str) -> tuple[str, list[str]]:
        """The page's text and the SQL it ran (parameters filled in by SQLite)."""
        seen: list[str] = []
        self.conn.set_trace_callback(seen.append)
        try:
            resp = self.client.get(url)
            body = resp.get_data(as_text=True)  # a streamed export runs while it is read
        finally:
            self.conn.set_trace_callback(None)
        assert resp.status_code == 200, f"{url}: HTTP {resp.status_code}"
        return body, [s for s in seen if s.lstrip().upper().startswith("SELECT")]

    def plan(self, sql: str) -> list[str]:
        return [row[3] for row in self.conn.execute(f"EXPLAIN QUERY PLAN {sql}")]


def plan_problems(sql: str, plan: list[str]) -> list[str]:
    """What in ``plan`` would read far more rows than the page shows."""
    problems = []
    limited = re.search(r"\bLIMIT\b", sql, re.IGNORECASE) is not None
    messages = re.search(r"\bmessages\b", sql, re.IGNORECASE) is not None
    for line in plan:
        scan = re.match(r"SCAN (\w+)(.*)", line)
        if scan and "VIRTUAL TABLE" not in line and "SUBQUERY" not in scan.group(1):
            using = scan.group(2)
            if "INDEX" not in using:
                problems.append(f"reads a whole table: {line}")
            elif not limited and (messages or "COVERING" not in using):
                problems.append(f"walks a whole index without a LIMIT: {line}")
        if "TEMP B-TREE FOR ORDER BY" in line or "TEMP B-TREE FOR RIGHT PART OF ORDER BY" in line:
            problems.append(f"sorts every match: {line}")
    return problems


def assert_served_by_indexes(traced: Traced, url: str, *, reads_all: str = "") -> str:
    """The page's text, once every query it ran has passed :func:`plan_problems`; a statement
    that starts with ``reads_all`` is allowed to read its whole table (an export's)."""
    body, statements = traced.get(url)
    checked = [s for s in statements if TABLES.search(s)]
    if reads_all:
        checked = [s for s in checked if not s.startswith(reads_all)]
    assert checked, f"{url} ran no query on messages or profiles"
    report = []
    for sql in dict.fromkeys(checked):
        plan = traced.plan(sql)
        problems = plan_problems(sql, plan)
        if problems:
            report.append(f"{sql}\n  plan: {plan}\n  " + "\n  ".join(problems))
    assert not report, f"{url}:\n" + "\n".join(report)
    return body


def deep_id(app: ScaleApp, depth: int, where: str = "1") -> int:
    """The id of the message ``depth`` rows down the newest-first list (to start a deep page)."""
    conn = app.store.db.conn
    row = conn.execute(
        f"SELECT id FROM messages WHERE {where} ORDER BY id DESC LIMIT 1 OFFSET ?", (depth,)
    ).fetchone()
    return int(row[0])


@pytest.fixture(scope="module")
def traced(scale: ScaleApp) -> Traced:
    return Traced(scale)


def test_home_and_inbox(traced: Traced, shape: Shape) -> None:
    assert_served_by_indexes(traced, "/home")
    page = assert_served_by_indexes(traced, "/inbox")
    older = re.search(r'href="(/inbox\?before=\d+)" rel="next"', page).group(1)
    assert_served_by_indexes(traced, older)
    assert_served_by_indexes(traced, "/inbox?kind=help")
    deep = deep_id(traced.app, shape.messages // 4, "direction = 'in'")
    assert_served_by_indexes(traced, f"/inbox?before={deep}")
    assert_served_by_indexes(traced, f"/inbox?after={deep}")
    latest = deep_id(traced.app, 3, "direction = 'in'")
    assert_served_by_indexes(traced, f"/api/inbox?after={latest}")


def test_home_counts_use_the_indexes_made_for_them(traced: Traced) -> None:
    """An index for the Messages page must not lure Home's counts (or the queue's queries) away
    from the small partial indexes that answer them: each count names its index."""
    _, statements = traced.get("/home")
    expected = {
        "agent_state IN": "messages_agent",
        "status IN ('queued','sending')": "messages_status",
        "status IN ('failed','expired')": "messages_failed",
    }
    for clue, index in expected.items():
        sql = next(s for s in statements if clue in s)
        assert any(index in line for line in traced.plan(sql)), (sql, traced.plan(sql))


def test_the_queue_keeps_its_indexes(traced: Traced) -> None:
    """The dispatcher's reads of the queue look at queued rows only, never at every message of
    a modem or a direction (those indexes are for the Messages page)."""
    msgs = traced.app.store.messages
    seen: list[str] = []
    traced.conn.set_trace_callback(seen.append)
    try:
        msgs.due("9999", limit=200)
        msgs.due("9999", limit=200, after=(10, 5))
        msgs.next_attempt_time()
        msgs.queued_count()
        msgs.queued_count(MODEMS[0])
        msgs.agent_queue()
    finally:
        traced.conn.set_trace_callback(None)
    for sql in seen:
        plan = traced.plan(sql)
        used = " ".join(plan)
        assert "messages_modem" not in used and "messages_short_code" not in used, (sql, plan)
        assert re.search(r"messages_(queue|status|agent)", used), (sql, plan)


def test_messages_lists_filters_and_search(traced: Traced, shape: Shape) -> None:
    page = assert_served_by_indexes(traced, "/messages")
    assert 'rel="next"' in page
    deep = deep_id(traced.app, 50 * 999 if shape.messages > 100_000 else shape.messages // 2)
    assert_served_by_indexes(traced, f"/messages?before={deep}")
    assert_served_by_indexes(traced, f"/messages?after={deep}")
    found = assert_served_by_indexes(traced, "/messages?q=bus")
    assert "bus" in found.lower()
    code = SHORT_CODES[3]
    assert_served_by_indexes(traced, f"/messages?direction=in&short_code={code}")
    assert_served_by_indexes(traced, f"/messages?direction=out&short_code={code}&q=late")
    assert_served_by_indexes(traced, "/messages?status=failed")
    assert_served_by_indexes(traced, "/messages?status=delivered&direction=out")
    assert_served_by_indexes(traced, f"/messages?modem={MODEMS[2]}")
    assert_served_by_indexes(traced, "/messages?kind=opt-out")
    phone = traced.app.store.db.conn.execute("SELECT phone FROM profiles LIMIT 1").fetchone()[0]
    assert_served_by_indexes(traced, f"/messages?q={phone.replace('+', '%2B')}")


@pytest.mark.parametrize("sort", ["name", "phone", "status", "subscribed", "last_message"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_profiles_every_sort_and_page(traced: Traced, sort: str, direction: str) -> None:
    base = f"/profiles?sort={sort}&dir={direction}"
    first = assert_served_by_indexes(traced, base)
    after = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = assert_served_by_indexes(traced, after)
    before = re.search(r'href="([^"]+)" rel="prev"', second).group(1).replace("&amp;", "&")
    assert_served_by_indexes(traced, before)
    assert_served_by_indexes(traced, base + "&last=1")
    assert_served_by_indexes(traced, base + "&status=inactive")


def test_name_sort_ignores_case_across_pages(traced: Traced) -> None:
    # From 25 rows before the first name that starts with "b" ("bea", lower case, after "Ann").
    start = traced.conn.execute(
        "SELECT id FROM profiles WHERE name COLLATE NOCASE < 'b'"
        " ORDER BY name COLLATE NOCASE DESC, id DESC LIMIT 1 OFFSET 25"
    ).fetchone()[0]
    url, names = f"/profiles?sort=name&after={start}", []
    for _ in range(8):
        page = traced.get(url)[0]
        names += [
            "" if n.startswith("<span") else re.sub(r"<[^>]+>", "", n)
            for n in re.findall(r'<td data-label="Name">(.*?)</td>', page)
        ]
        url = re.search(r'href="([^"]+)" rel="next"', page).group(1).replace("&amp;", "&")
    named = [n for n in names if n]
    assert len(names) == 400 and names == sorted(names, key=str.lower)
    assert any(n[0].islower() for n in named) and any(n[0].isupper() for n in named)


def test_exports_read_by_id_with_every_row(traced: Traced, shape: Shape) -> None:
    # The names of custom fields (the CSV's header) are read from every profile, in SQLite.
    names = "SELECT DISTINCT j.key AS key FROM profiles, json_each"
    text = assert_served_by_indexes(traced, "/profiles/export.csv", reads_all=names)
    assert len(list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))) == shape.profiles + 1
    text = assert_served_by_indexes(traced, f"/messages/export.csv?short_code={SHORT_CODES[5]}")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and {r["short_code"] for r in rows} == {SHORT_CODES[5]}
    ids = [int(r["id"]) for r in rows]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)


def test_a_filled_store_from_before_the_migration_gets_its_search_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 2 builds the full-text index of the messages already stored (taking a backup
    first), and its triggers keep the index in step with changed and purged messages."""
    with monkeypatch.context() as patched:
        patched.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
        Store.open(tmp_path).close()
    fill(tmp_path / "gateway.sqlite3", Shape(profiles=50, messages=500))
    store = Store.open(tmp_path)
    try:
        assert list((tmp_path / "backups").glob("before-migration-2-*.sqlite3"))
        found = store.messages.page(MessageFilter(text="bus"), limit=1000).rows
        expected = store.db.value("SELECT COUNT(*) FROM messages WHERE body LIKE '%bus%'")
        assert found and len(found) == expected
        # An inbound one: the schema refuses "received" for an outbound message (migration 4).
        first = next(r["id"] for r in found if r["direction"] == "in")
        store.messages.complete_inbound(first, "the tram is late", MessageStatus.RECEIVED)
        bus = store.messages.page(MessageFilter(text="bus"), limit=1000).rows
        assert first not in {r["id"] for r in bus}
        assert [r["id"] for r in store.messages.page(MessageFilter(text="tram")).rows] == [first]
        store.purge(messages_before="9999", raw_pdus_before=None)
        assert store.messages.page(MessageFilter(text="late")).rows == []
        # FTS5 compares its index with the messages table and raises when they differ.
        store.db.execute(
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)"
        )
    finally:
        store.close()


def test_the_expiry_sweep_reads_only_what_expires(traced: Traced) -> None:
    """Issue 10: the dispatcher's expiry sweep (once a second while a modem sends) and its
    expiry timer find queued messages by their expiry (messages_expiry, migration 5), not by
    reading every queued row (100,000 after a broadcast to every profile)."""
    msgs = traced.app.store.messages
    seen: list[str] = []
    traced.conn.set_trace_callback(seen.append)
    try:
        msgs.expire_due("0000")
        msgs.next_expiry()
    finally:
        traced.conn.set_trace_callback(None)
    selects = [sql for sql in seen if sql.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, seen
    for sql in selects:
        plan = traced.plan(sql)
        assert any("USING INDEX messages_expiry" in step for step in plan), (sql, plan)


def test_the_subscription_rule_reads_one_row_per_profile(traced: Traced) -> None:
    """ "May this profile be texted from short code C" (store/subscriptions.py), over every
    profile as a broadcast's audience asks it: one primary-key look-up per profile, and the
    keyword page's counts by index."""
    store = traced.app.store
    where, params = store.subscriptions.textable_sql(SHORT_CODES[0])
    sql = f"SELECT COUNT(*) FROM profiles p WHERE {where}"
    plan = [row[3] for row in traced.conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    assert "SEARCH s USING PRIMARY KEY (profile_id=? AND short_code=?)" in plan, plan
    seen: list[str] = []
    traced.conn.set_trace_callback(seen.append)
    try:
        store.keywords.live()
        store.keyword_paths.next_expiry()
    finally:
        traced.conn.set_trace_callback(None)
    for statement in seen:
        plan = traced.plan(statement)
        assert not any(re.match(r"SCAN keyword_paths", line) for line in plan), (statement, plan)
