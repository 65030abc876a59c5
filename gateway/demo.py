"""The demo's data: an admin user, profiles and conversations put into an empty store, so that
a visitor sees a working gateway at once. Runs only once per data directory."""

from __future__ import annotations

import logging
from datetime import timedelta
from importlib import resources
from pathlib import Path

from .config import Config
from .messaging import keywords
from .modem import text as smstext
from .store import PastMessage, Store
from .store.states import AgentState, MessageStatus
from .store.times import iso, now

log = logging.getLogger(__name__)


def demo_config_path() -> Path:
    """The bundled demo configuration (gateway/data/demo.yaml, also config/demo.yaml)."""
    return Path(str(resources.files("gateway") / "data" / "demo.yaml"))


def seed(config: Config, store: Store) -> bool:
    """Put the demo's users, profiles and conversations into an empty store; False when the
    store already has profiles (a second start keeps what the visitor did)."""
    demo = config.demo
    if demo is None:
        return False
    if store.users.by_name(demo.admin_user) is None:
        store.users.add(demo.admin_user, demo.admin_password, role="admin")
    if store.profiles.count():
        return False
    names = {h.number: h.name for h in (config.simulator.handsets if config.simulator else ())}
    opted_out: dict[int, str] = {}  # profile id -> when it was added (an opt-out by import)
    # The conversations start six hours ago; the profiles were added (imported) two weeks
    # before, a minute apart, so none is "added" after its own messages.
    start = now() - timedelta(hours=6)
    added_from = start - timedelta(days=14)
    for index, p in enumerate(demo.profiles):
        added = iso(added_from + timedelta(minutes=index))
        pid = store.profiles.add(
            p.phone,
            p.name or names.get(p.phone) or "",
            status=p.status,
            subscribed=not p.opted_out,
            custom=dict(p.custom),
            at=added,
        )
        if p.opted_out:
            opted_out[pid] = added
    master = store.campaigns.master_id()
    stop_messages: dict[int, tuple[int, str, str]] = {}  # profile -> its STOP: id, code, time
    with store.db.tx():
        for c_index, conv in enumerate(demo.conversations):
            profile = store.profiles.by_phone(conv.phone)
            if profile is None:
                continue
            sc = config.short_code(conv.short_code)
            modem = sc.default_modem or sc.modems[0]
            for m_index, msg in enumerate(conv.messages):
                at = iso(start + timedelta(minutes=40 * c_index + 3 * m_index))
                kind = None
                if not msg.outbound:
                    kw = sc.keywords
                    kind = keywords.classify(
                        msg.text, opt_out=kw.opt_out, opt_in=kw.opt_in, help=kw.help, oops=kw.oops
                    )
                last = m_index == len(conv.messages) - 1
                counted = smstext.analyze(msg.text)
                agent_state: AgentState | None = None
                if kind == keywords.REPLY:
                    agent_state = AgentState.OPEN if last else AgentState.ANSWERED
                message_id = store.messages.record_past(
                    PastMessage(
                        direction="out" if msg.outbound else "in",
                        profile_id=profile["id"],
                        phone=profile["phone"],
                        short_code=sc.code,
                        modem_id=modem,
                        body=msg.text,
                        encoding=counted.encoding,
                        parts_total=counted.parts,
                        status=MessageStatus.DELIVERED if msg.outbound else MessageStatus.RECEIVED,
                        at=at,
                        campaign_id=master if msg.outbound else None,
                        kind=kind,
                        agent_state=agent_state,
                        created_by="demo" if msg.outbound else None,
                    )
                )
                if kind == keywords.OPT_OUT:
                    stop_messages[profile["id"]] = (message_id, sc.code, at)
    # The opt-out history says why each opted-out profile is so: its STOP, or the import.
    # Each at the time it happened: the STOP's own, or the import's.
    for pid, added in opted_out.items():
        if pid in stop_messages:
            message_id, code, at = stop_messages[pid]
            store.opt_events.record(
                pid, "opt_out", source="keyword", short_code=code, message_id=message_id, at=at
            )
        else:
            store.opt_events.record(pid, "opt_out", source="import", actor="demo", at=added)
    _seed_keyword(config, store)
    log.info("demo data created: %d profiles", len(demo.profiles))
    return True


def _seed_keyword(config: Config, store: Store) -> None:
    """A keyword to try from a handset (Phones page): JOIN to the last short code, with a
    double opt-in and a question that fills the ``school`` field."""
    from .messaging.optin import KeywordBook, KeywordInvalid, Question

    if not config.short_codes:
        return
    sc = config.short_codes[-1]
    try:
        KeywordBook(config, store).add(
            short_code=sc.code,
            word="JOIN",
            reply=f"Welcome to {sc.name}! You will get school alerts and closures.",
            actor="demo",
            campaign="School alerts",
            double_opt_in=True,
            questions=[
                Question(
                    "school",
                    "Which school? Lincoln Elementary or Roosevelt Middle",
                    ("Lincoln Elementary", "Roosevelt Middle"),
                )
            ],
            done_reply="Thanks, you are all set. Reply STOP to unsubscribe.",
        )
    except KeywordInvalid as exc:  # a demo configuration that reserves JOIN: no demo keyword
        log.warning("demo keyword JOIN not added: %s", exc)
