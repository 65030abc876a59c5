"""/metrics and the webhook outbox stay cheap as the store grows: every statement a scrape
runs on messages, raw PDUs and deliveries is served by an index (or by the kept counts of
migration 11), and the webhook triggers' test on every message is one indexed probe."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections.abc import Iterator

import pytest

from gateway.config import MetricsConfig
from gateway.store import Store
from gateway.store.webhooks import SCHEMA
from gateway.web.app import create_app

from .fill import SHORT_CODES, Shape, fill
from .harness import ScaleApp
from .test_store_pages import plan_problems

pytestmark = pytest.mark.slow

BIG = re.compile(r"\b(messages|profiles|inbound_pdus|webhook_deliveries)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory, request) -> Iterator[ScaleApp]:
    shape = Shape.full() if request.config.getoption("--long") else Shape.small()
    data_dir = tmp_path_factory.mktemp("scale-metrics")
    Store.open(data_dir).close()
    fill(data_dir / "gateway.sqlite3", shape)
    app = ScaleApp(data_dir)
    yield app
    app.close()


def _plan(conn: sqlite3.Connection, sql: str) -> list[str]:
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]


def test_a_scrape_reads_no_table_whole(scale: ScaleApp) -> None:
    s = scale.services
    hook = s.webhooks.add(SHORT_CODES[0], "http://127.0.0.1:9/h", user="t")
    config = dataclasses.replace(s.config, metrics=MetricsConfig(allow_loopback=True))
    app = create_app(dataclasses.replace(s, config=config), TESTING=True)
    conn = scale.store.db.conn
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        resp = app.test_client().get("/metrics")
    finally:
        conn.set_trace_callback(None)
    assert resp.status_code == 200
    text = resp.get_data(as_text=True)
    total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("gateway_messages{")
    )
    assert total == scale.store.db.value("SELECT COUNT(*) FROM messages")  # the kept counts
    statements = [q for q in dict.fromkeys(seen) if q.lstrip().upper().startswith("SELECT")]
    checked = [q for q in statements if BIG.search(q)]
    assert len(checked) >= 4
    report = []
    for sql in checked:
        plan = _plan(conn, sql)
        # webhooks (alias w) holds a row per receiver: a handful, read whole at no cost.
        problems = [p for p in plan_problems(sql, plan) if not p.endswith(": SCAN w")]
        if problems:
            report.append(f"{sql}\n  plan: {plan}\n  " + "\n  ".join(problems))
    assert not report, "\n".join(report)
    s.webhooks.remove(hook.id, user="t")


def test_the_webhook_triggers_probe_one_index(scale: ScaleApp) -> None:
    conn = scale.store.db.conn
    probes = set()
    for statement in SCHEMA:
        probes |= set(
            re.findall(r"EXISTS \((SELECT 1 FROM webhooks w WHERE .*?)\) BEGIN", statement)
        )
    assert len(probes) == 3  # inbound (twice the same), status, opt
    for probe in probes:
        sql = probe.replace("NEW.short_code", "'55123'")
        plan = " ".join(_plan(conn, sql))
        if "on_opt" in sql:
            # An opt event may have no short code: the few webhooks are read (opt events are
            # rare; messages never take this path).
            assert plan == "SCAN w", (sql, plan)
        else:
            assert "USING INDEX sqlite_autoindex_webhooks_1 (short_code=?)" in plan, (sql, plan)


def test_the_webhooks_page_reads_the_dead_letters_by_index(scale: ScaleApp) -> None:
    from gateway.store.times import iso, now

    s = scale.services
    hooks = [
        s.webhooks.add(code, f"http://127.0.0.1:9/{code}", user="t") for code in SHORT_CODES[:2]
    ]
    # Dead letters of two webhooks: the page pages them newest first, all or one webhook's.
    for hook in hooks:
        for i in range(30):
            s.store.webhooks.record(hook.short_code, "broadcast", "broadcast.completed", {"i": i})
        for d in s.store.webhooks.next_pending(hook.id, limit=100):
            s.store.webhooks.attempt_failed(d, "down", iso(now()), iso(now()), give_up=True)
    client = scale.client()
    conn = scale.store.db.conn
    for url in (
        "/settings/webhooks",
        f"/settings/webhooks?webhook={hooks[0].id}",
        "/settings/webhooks?before=1000000",
    ):
        seen: list[str] = []
        conn.set_trace_callback(seen.append)
        try:
            resp = client.get(url)
        finally:
            conn.set_trace_callback(None)
        assert resp.status_code == 200, url
        dead = [q for q in dict.fromkeys(seen) if "state = 'dead'" in q and "ORDER BY id DESC" in q]
        assert dead, url
        for sql in dead:
            plan = _plan(conn, sql)
            assert not plan_problems(sql, plan), (url, sql, plan)
    for hook in hooks:
        s.webhooks.remove(hook.id, user="t")
