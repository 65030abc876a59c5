"""Versioned schema migrations, applied in order at start, with a backup before each.

A migration is never edited once released: a change to the schema is a new entry at the end.
Times are stored as UTC ISO-8601 text (``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``), which sorts
correctly and reads the same in SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime

from . import counts, states, tokens, webhooks
from .db import Database, StoreError

log = logging.getLogger(__name__)

SCHEMA_V1 = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'agent')),
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE modems (
    modem_id TEXT PRIMARY KEY,          -- the config id (IMEI by default)
    imei TEXT, iccid TEXT, imsi TEXT, number TEXT, label TEXT,
    manufacturer TEXT, model TEXT, firmware TEXT,
    first_seen TEXT, last_seen TEXT,
    last_up TEXT, last_down TEXT,
    sent_count INTEGER NOT NULL DEFAULT 0,
    received_count INTEGER NOT NULL DEFAULT 0,
    failed_count INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('master', 'bulk')),
    created_at TEXT NOT NULL,
    created_by TEXT
);

CREATE TABLE profiles (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL UNIQUE,         -- E.164
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    subscribed INTEGER NOT NULL DEFAULT 1,
    custom TEXT NOT NULL DEFAULT '{}',  -- JSON object of custom fields
    sticky_modem TEXT,                  -- the modem that last talked with this profile
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_message_at TEXT
);
CREATE INDEX profiles_name ON profiles (name);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
    profile_id INTEGER NOT NULL REFERENCES profiles (id),
    phone TEXT NOT NULL,
    short_code TEXT NOT NULL,
    campaign_id INTEGER REFERENCES campaigns (id),
    modem_id TEXT,
    body TEXT NOT NULL,
    encoding TEXT,
    parts_total INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL,
    -- out: queued, sending, sent, delivered, failed, expired
    -- in:  received, incomplete
    kind TEXT,                          -- inbound: reply, opt-out, opt-in, help, oops, unknown
    priority INTEGER NOT NULL DEFAULT 10, -- 0 chat / one-off, 10 bulk
    idempotency_key TEXT UNIQUE,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    expires_at TEXT,
    maybe_duplicate INTEGER NOT NULL DEFAULT 0,
    concat_ref INTEGER,
    created_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- agent queue state for inbound: open, claimed, answered, no_response
    agent_state TEXT,
    claimed_by TEXT,
    claimed_at TEXT
);
CREATE INDEX messages_profile ON messages (profile_id, id);
CREATE INDEX messages_queue ON messages (status, priority, id) WHERE direction = 'out';
CREATE INDEX messages_agent ON messages (agent_state, id) WHERE direction = 'in';

CREATE TABLE message_parts (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id),
    seq INTEGER NOT NULL,
    pdu TEXT,
    length INTEGER,
    status TEXT NOT NULL DEFAULT 'pending',
    -- pending, writing (handed to the modem, no answer yet), sent, delivered, failed
    modem_id TEXT,
    tp_mr INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    maybe_duplicate INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    report_status INTEGER,
    sent_at TEXT,
    reported_at TEXT,
    UNIQUE (message_id, seq)
);
CREATE INDEX parts_report ON message_parts (modem_id, tp_mr, sent_at);

CREATE TABLE inbound_pdus (
    id INTEGER PRIMARY KEY,
    modem_id TEXT NOT NULL,
    dedup_key TEXT NOT NULL UNIQUE,     -- hash of modem and PDU: reading twice stores once
    pdu TEXT NOT NULL,
    kind TEXT NOT NULL,                 -- deliver, status-report, undecodable
    sender TEXT,
    concat_key TEXT,                    -- sender/ref/total for reassembly, NULL when single
    seq INTEGER,
    total INTEGER,
    text TEXT,
    error TEXT,
    message_id INTEGER REFERENCES messages (id),
    settled INTEGER NOT NULL DEFAULT 0, -- 1 once made into a message or found to make none
    received_at TEXT NOT NULL
);
CREATE INDEX inbound_concat ON inbound_pdus (concat_key) WHERE settled = 0;

CREATE TABLE conversation_reads (
    profile_id INTEGER NOT NULL REFERENCES profiles (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    last_read_id INTEGER NOT NULL,
    PRIMARY KEY (profile_id, user_id)
);

CREATE TABLE opt_events (
    id INTEGER PRIMARY KEY,
    profile_id INTEGER NOT NULL REFERENCES profiles (id),
    short_code TEXT,
    action TEXT NOT NULL CHECK (action IN ('opt_out', 'opt_in', 'undo_opt_out')),
    source TEXT NOT NULL,               -- keyword, agent, import
    message_id INTEGER REFERENCES messages (id),
    actor TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX opt_events_profile ON opt_events (profile_id, id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE concat_refs (
    recipient TEXT NOT NULL,
    bits INTEGER NOT NULL,
    last_ref INTEGER NOT NULL,
    PRIMARY KEY (recipient, bits)
);
"""

# Login sessions kept on the server, so that logging out, a password change or disabling a
# user ends them even when someone kept a copy of the cookie; the cookie holds only a random
# id, and the store only its SHA-256.
SESSIONS = """
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
"""

# Pages that go deep at 100,000 profiles and 1,000,000 messages (docs/store.md, "Scale"): one
# index per filter and sort of the Messages, Inbox and Profiles pages, each ending in the id so
# that keyset pages (``id < ?``) walk it in order (none on direction alone: with two values,
# walking the ids is as quick, and such an index would lure the queue's queries away from
# their partial indexes); the case-insensitive name sort gets its own
# index; full-text search of message bodies through an FTS5 index kept in step by triggers and
# built for the messages already stored. A list, not one text: trigger bodies hold semicolons.
SCALE_INDEXES_AND_SEARCH: list[str] = [
    "CREATE INDEX messages_status ON messages (status, id)",
    "CREATE INDEX messages_short_code ON messages (short_code, id)",
    "CREATE INDEX messages_modem ON messages (modem_id, id) WHERE modem_id IS NOT NULL",
    "CREATE INDEX messages_kind ON messages (kind, id) WHERE kind IS NOT NULL",
    # Home's "failed today": only failed and expired outbound messages, by when they ended.
    "CREATE INDEX messages_failed ON messages (status, updated_at)"
    " WHERE direction = 'out' AND status IN ('failed', 'expired')",
    "DROP INDEX profiles_name",
    "CREATE INDEX profiles_name_nocase ON profiles (name COLLATE NOCASE, id)",
    "CREATE INDEX profiles_status ON profiles (status, id)",
    "CREATE INDEX profiles_subscribed ON profiles (subscribed, id)",
    "CREATE INDEX profiles_last_message ON profiles (COALESCE(last_message_at, ''), id)",
    "CREATE INDEX profiles_created ON profiles (created_at, id)",
    # External content: the words are indexed, the text stays in messages alone; no column
    # sizes, which only ranking by relevance would read (the lists are newest first).
    "CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', content_rowid='id',"
    " tokenize='unicode61 remove_diacritics 2', columnsize=0)",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN"
    " INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN"
    " INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);"
    " END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN"
    " INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);"
    " INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body); END",
    "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",
]

# The state machines of store/states.py held by the schema: SQLite cannot add a CHECK to an
# existing table, so triggers refuse unknown values (a message's status by its direction) and
# moves the tables there do not allow. Built from those tables, so there is one source; a later
# change to a table is a new migration that drops these triggers and creates them again.
STATE_TRIGGERS: list[str] = states.triggers()

# The dispatcher's expiry sweep and timer (issue 10): queued messages past their expiry, and the
# earliest expiry, found in this index instead of by reading every queued row (100,000 after a
# broadcast to every profile, once a second while a modem sends). The queue's page keeps its
# own index (messages_queue); "expires_at IS NOT NULL" in the condition keeps the planner from
# taking this one for other counts of queued rows (Home's, the queue's), which have theirs.
EXPIRY_INDEX: list[str] = [
    "CREATE INDEX messages_expiry ON messages (status, expires_at)"
    " WHERE direction = 'out' AND expires_at IS NOT NULL",
]

# Subscription per short code (issue 11): a row says whether a profile takes texts from one
# short code; a profile without a row for a short code follows ``profiles.subscribed``, which so
# means "subscribed to the short codes with no row of their own". Existing data needs no row: a
# profile opted out (subscribed = 0) stays opted out of every short code, one subscribed stays
# subscribed to all. Opt history says whether a change was about one short code or all of them
# (every change before this migration was about all).
SUBSCRIPTIONS_PER_SHORT_CODE = """
CREATE TABLE subscriptions (
    profile_id INTEGER NOT NULL REFERENCES profiles (id),
    short_code TEXT NOT NULL,
    subscribed INTEGER NOT NULL CHECK (subscribed IN (0, 1)),
    changed_at TEXT NOT NULL,
    PRIMARY KEY (profile_id, short_code)
) WITHOUT ROWID;
CREATE INDEX subscriptions_short_code ON subscriptions (short_code, subscribed, profile_id);
ALTER TABLE opt_events ADD COLUMN all_codes INTEGER NOT NULL DEFAULT 1;
"""

# Keywords per short code and the opt-in paths they start (issue 11). A removed keyword keeps
# its row (``removed_at``) for the paths that name it; only one live keyword per word and short
# code. A path is one person's walk through one keyword: its state (store/states.py PathState),
# the question it waits on and when it expires; at most one open path per profile and short
# code.
KEYWORDS_AND_PATHS: list[str] = [
    """CREATE TABLE keywords (
        id INTEGER PRIMARY KEY,
        short_code TEXT NOT NULL,
        word TEXT NOT NULL,
        match_key TEXT NOT NULL,
        reply TEXT NOT NULL,
        campaign_id INTEGER REFERENCES campaigns (id),
        double_opt_in INTEGER NOT NULL DEFAULT 0 CHECK (double_opt_in IN (0, 1)),
        confirm_prompt TEXT NOT NULL DEFAULT '',
        time_limit_minutes INTEGER NOT NULL DEFAULT 1440 CHECK (time_limit_minutes > 0),
        questions TEXT NOT NULL DEFAULT '[]',
        done_reply TEXT NOT NULL DEFAULT '',
        exit_word TEXT NOT NULL DEFAULT 'EXIT',
        exit_reply TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        created_by TEXT,
        removed_at TEXT
    )""",
    "CREATE UNIQUE INDEX keywords_live ON keywords (short_code, match_key)"
    " WHERE removed_at IS NULL",
    """CREATE TABLE keyword_paths (
        id INTEGER PRIMARY KEY,
        profile_id INTEGER NOT NULL REFERENCES profiles (id),
        short_code TEXT NOT NULL,
        keyword_id INTEGER NOT NULL REFERENCES keywords (id),
        state TEXT NOT NULL,
        step INTEGER NOT NULL DEFAULT 0,
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX keyword_paths_open ON keyword_paths (profile_id, short_code)"
    f" WHERE state IN {states.sql_list(states.OPEN_PATHS)}",
    f"CREATE INDEX keyword_paths_expiry ON keyword_paths (expires_at)"
    f" WHERE state IN {states.sql_list(states.OPEN_PATHS)}",
    "CREATE INDEX keyword_paths_profile ON keyword_paths (profile_id, id)",
    # The Keywords page's counts per keyword (started, open, done).
    "CREATE INDEX keyword_paths_keyword ON keyword_paths (keyword_id, state)",
    *states.path_triggers(),
]


def _broadcasts_schema() -> list[str]:
    """Migration 8 (issue 11): segments, static lists, broadcasts and their recipients; which
    short codes each profile has talked through; each outbound message's broadcast, with the
    broadcast's counters kept by triggers so that its progress is one row to read."""
    recipient_states = states.sql_list(states.RecipientState)
    buckets = {
        "n_queued": states.sql_list(states.IN_FLIGHT),
        "n_sent": states.sql_list([states.MessageStatus.SENT]),
        "n_delivered": states.sql_list([states.MessageStatus.DELIVERED]),
        "n_failed": states.sql_list(states.UNSENT),
    }

    def counts(sign: str, row: str) -> str:
        return ", ".join(
            f"{col} = {col} {sign} ({row}.status IN {vals})" for col, vals in buckets.items()
        )

    def moved() -> str:
        return ", ".join(
            f"{col} = {col} + (NEW.status IN {vals}) - (OLD.status IN {vals})"
            for col, vals in buckets.items()
        )

    return [
        "CREATE TABLE segments ("
        " id INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        # JSON {"match": "all"|"any", "conditions": [{"field", "op", "value"}]}
        " definition TEXT NOT NULL,"
        " created_by TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE TABLE lists ("
        " id INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        " source TEXT NOT NULL DEFAULT '',"
        " created_by TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE TABLE list_members ("
        " list_id INTEGER NOT NULL REFERENCES lists (id),"
        " profile_id INTEGER NOT NULL REFERENCES profiles (id),"
        " PRIMARY KEY (list_id, profile_id)) WITHOUT ROWID",
        "CREATE TABLE broadcasts ("
        " id INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL,"
        " body TEXT NOT NULL,"
        " campaign_id INTEGER NOT NULL REFERENCES campaigns (id),"
        " short_code TEXT NOT NULL,"
        " audience TEXT NOT NULL,"  # JSON: the segment, list or conditions chosen
        " state TEXT NOT NULL,"
        " scheduled_for TEXT,"  # UTC; NULL: at once
        " timezone TEXT NOT NULL,"  # the zone the time was given in
        " per_recipient_tz INTEGER NOT NULL DEFAULT 0,"
        " parts INTEGER NOT NULL DEFAULT 1,"  # of the longest expansion over the audience
        " encoding TEXT,"
        " recipients INTEGER NOT NULL DEFAULT 0,"
        " n_pending INTEGER NOT NULL DEFAULT 0,"
        " n_queued INTEGER NOT NULL DEFAULT 0,"
        " n_sent INTEGER NOT NULL DEFAULT 0,"
        " n_delivered INTEGER NOT NULL DEFAULT 0,"
        " n_failed INTEGER NOT NULL DEFAULT 0,"
        " n_skipped INTEGER NOT NULL DEFAULT 0,"
        " n_cancelled INTEGER NOT NULL DEFAULT 0,"
        " created_by TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
        " started_at TEXT, finished_at TEXT,"
        # The compose form's key: the same form posted twice makes one broadcast.
        " request_key TEXT UNIQUE)",
        "CREATE INDEX broadcasts_state ON broadcasts (state, id)",
        "CREATE TABLE broadcast_recipients ("
        " broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id),"
        " profile_id INTEGER NOT NULL REFERENCES profiles (id),"
        " send_at TEXT NOT NULL,"
        f" state TEXT NOT NULL CHECK (state IN {recipient_states}),"
        " reason TEXT,"
        " message_id INTEGER,"
        " PRIMARY KEY (broadcast_id, profile_id)) WITHOUT ROWID",
        # The feeder's walk: the next pending recipients of a broadcast whose time has come.
        "CREATE INDEX broadcast_recipients_pending ON broadcast_recipients"
        f" (broadcast_id, send_at, profile_id) WHERE state = '{states.RecipientState.PENDING}'",
        "ALTER TABLE messages ADD COLUMN broadcast_id INTEGER REFERENCES broadcasts (id)",
        # Kept in step with the messages by triggers, so that the progress page reads one row.
        "CREATE TRIGGER messages_broadcast_insert AFTER INSERT ON messages"
        " WHEN NEW.broadcast_id IS NOT NULL BEGIN"
        f" UPDATE broadcasts SET {counts('+', 'NEW')} WHERE id = NEW.broadcast_id; END",
        "CREATE TRIGGER messages_broadcast_update AFTER UPDATE OF status ON messages"
        " WHEN NEW.broadcast_id IS NOT NULL AND NEW.status IS NOT OLD.status BEGIN"
        f" UPDATE broadcasts SET {moved()} WHERE id = NEW.broadcast_id; END",
        # Only a message taken back before a modem had it (pause, cancel) leaves the counts;
        # retention purging old final messages leaves a broadcast's record as it ended.
        "CREATE TRIGGER messages_broadcast_delete AFTER DELETE ON messages"
        f" WHEN OLD.broadcast_id IS NOT NULL AND OLD.status IN {buckets['n_queued']} BEGIN"
        " UPDATE broadcasts SET n_queued = n_queued - 1 WHERE id = OLD.broadcast_id; END",
        # "Has talked through short code C" for segments, without reading every message.
        # Columns in the key's order: SQLite's quick_check misreads a WITHOUT ROWID table
        # whose key columns are declared in another order (it reported NULLs that were not).
        "CREATE TABLE profile_short_codes ("
        " short_code TEXT NOT NULL,"
        " profile_id INTEGER NOT NULL REFERENCES profiles (id),"
        " PRIMARY KEY (short_code, profile_id)) WITHOUT ROWID",
        "INSERT OR IGNORE INTO profile_short_codes (short_code, profile_id)"
        " SELECT DISTINCT short_code, profile_id FROM messages",
        "CREATE TRIGGER messages_profile_short_code AFTER INSERT ON messages BEGIN"
        " INSERT OR IGNORE INTO profile_short_codes (short_code, profile_id)"
        " VALUES (NEW.short_code, NEW.profile_id); END",
        *states.broadcast_triggers(),
    ]


BROADCASTS = _broadcasts_schema()

# Webhooks (issue 12): the webhooks, their outbox and dead letters, and the triggers that
# record an event in the transaction of the change that causes it (store/webhooks.py); and
# the kept counts of messages by direction, status and short code for /metrics
# (store/counts.py). Lists: trigger bodies hold semicolons.
WEBHOOKS_AND_COUNTS: list[str] = webhooks.SCHEMA + counts.SCHEMA

MIGRATIONS: list[tuple[int, str, str | list[str]]] = [
    (1, "initial schema", SCHEMA_V1),
    (2, "login sessions", SESSIONS),
    (3, "indexes and full-text search for large stores", SCALE_INDEXES_AND_SEARCH),
    (4, "state machines enforced by triggers", STATE_TRIGGERS),
    (5, "index for the expiry of queued messages", EXPIRY_INDEX),
    (6, "subscription per short code", SUBSCRIPTIONS_PER_SHORT_CODE),
    (7, "keywords and opt-in paths", KEYWORDS_AND_PATHS),
    (8, "segments, lists and broadcasts", BROADCASTS),
    (9, "API tokens", tokens.SCHEMA),
    (10, "webhooks, their outbox, and kept message counts", WEBHOOKS_AND_COUNTS),
]


def current_version(db: Database) -> int:
    """The schema version of the database (0 for a new one)."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    version = db.value("SELECT MAX(version) FROM schema_version")
    return int(version or 0)


def needs_migration(db: Database) -> bool:
    """Whether the store is new or its schema is older than this gateway's (read only)."""
    try:
        version = db.value("SELECT MAX(version) FROM schema_version")
    except sqlite3.OperationalError:  # no such table: a new store
        return True
    return int(version or 0) != MIGRATIONS[-1][0]


def migrate(db: Database, *, backup_dir=None) -> int:
    """Bring the schema up to date; before each step on a database that has data, take a copy
    into ``backup_dir``. Returns the version reached."""
    version = current_version(db)
    # A store created by this call holds nothing yet: only an existing one is copied first.
    existed = version > 0
    latest = MIGRATIONS[-1][0]
    if version > latest:
        raise StoreError(
            f"{db.path} has schema version {version}, newer than this gateway knows ({latest}); "
            "install the newer gateway again, or restore a backup"
        )
    for number, title, sql in MIGRATIONS:
        if number <= version:
            continue
        if existed and backup_dir is not None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            target = db.backup_to(backup_dir / f"before-migration-{number}-{stamp}.sqlite3")
            log.info("backed up the store to %s before migration %d", target, number)
        log.info("applying store migration %d: %s", number, title)
        try:
            with db.tx() as conn:
                statements = sql if isinstance(sql, list) else _statements(sql)
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
        except Exception as exc:
            raise StoreError(f"migration {number} ({title}) of {db.path} failed: {exc}") from exc
        version = number
    return version


def _statements(sql: str) -> list[str]:
    # Strip "--" comments first, since a comment may hold a semicolon.
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
