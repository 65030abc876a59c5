"""The demo's seeded store tells one consistent story in time (issue 11: profiles were "added"
after their own messages, and an opt-out's history time was not its STOP's)."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.config import load_config
from gateway.demo import demo_config_path, seed
from gateway.services import build_services


@pytest.fixture
def demo_store(tmp_path):
    config = load_config(demo_config_path(), data_dir=tmp_path, log_warnings=False)
    services = build_services(config, modems=False)
    assert seed(config, services.store)
    yield services.store
    services.store.close()


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def test_every_profile_is_added_before_its_first_message(demo_store) -> None:
    profiles = demo_store.db.q("SELECT id, name, created_at FROM profiles")
    assert len(profiles) == 10
    with_messages = 0
    for p in profiles:
        messages = demo_store.messages.conversation(p["id"])
        if not messages:
            continue
        with_messages += 1
        first = min(at(m["created_at"]) for m in messages)
        assert at(p["created_at"]) <= first, f"{p['name']} added after their first message"
    assert with_messages >= 4


def test_each_opt_event_is_at_the_time_of_its_keyword_message(demo_store) -> None:
    events = demo_store.db.q("SELECT * FROM opt_events")
    assert events, "the demo has an opted-out profile"
    from_keyword = 0
    for event in events:
        profile = demo_store.profiles.get(event["profile_id"])
        if event["message_id"] is not None:
            from_keyword += 1
            message = demo_store.messages.get(event["message_id"])
            assert message["body"].strip().upper() == "STOP"
            assert event["created_at"] == message["created_at"]
        else:  # an opt-out that came with the import: when the profile was added
            assert event["created_at"] == profile["created_at"]
    assert from_keyword == 1  # Tom Becker's STOP to 55999
