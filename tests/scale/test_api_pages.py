"""The REST API's lists stay fast as the store grows, like the pages (test_store_pages.py):
every query that ``GET /api/v1/messages`` (each filter, ``since``, deep cursors),
``GET /api/v1/profiles`` (search, deep cursors) and a profile's conversation run is served by
an index, checked on its query plan."""

from __future__ import annotations

import pytest

from gateway.store.search import first_id_since

from .fill import SHORT_CODES, Shape
from .harness import ScaleApp
from .test_store_pages import Traced, assert_served_by_indexes, deep_id, scale, shape  # noqa: F401

pytestmark = pytest.mark.slow


class TokenTraced(Traced):
    """Traced requests with an API token instead of a login."""

    def __init__(self, app: ScaleApp) -> None:
        super().__init__(app)
        secret = app.store.api_tokens.create("admin", "scale test").secret
        self.client = app.app.test_client()
        self.client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"


@pytest.fixture
def api(scale: ScaleApp) -> TokenTraced:  # noqa: F811
    return TokenTraced(scale)


def test_api_message_lists(api: TokenTraced, shape: Shape) -> None:  # noqa: F811
    assert_served_by_indexes(api, "/api/v1/messages")
    deep = deep_id(api.app, shape.messages // 2)
    assert_served_by_indexes(api, f"/api/v1/messages?cursor={deep}&limit=200")
    assert_served_by_indexes(api, f"/api/v1/messages?direction=in&short_code={SHORT_CODES[3]}")
    assert_served_by_indexes(api, "/api/v1/messages?status=failed")
    assert_served_by_indexes(api, "/api/v1/messages?q=bus&direction=in")
    middle = api.app.store.messages.get(deep)["created_at"].replace("+", "%2B")
    body = assert_served_by_indexes(api, f"/api/v1/messages?since={middle}&limit=200")
    assert '"next":' in body
    assert_served_by_indexes(api, f"/api/v1/messages?since={middle}&status=delivered")
    assert_served_by_indexes(api, "/api/v1/messages?since=2999-01-01T00:00:00Z")
    assert_served_by_indexes(api, f"/api/v1/messages?since={middle}&q=late")


def test_since_finds_the_first_message_of_a_time(api: TokenTraced) -> None:
    db = api.app.store.db
    rows = db.q("SELECT id, created_at FROM messages ORDER BY id")
    for row in rows[:: max(1, len(rows) // 7)]:
        first = first_id_since(db, row["created_at"])
        assert first is not None and first <= row["id"]
        assert all(r["created_at"] < row["created_at"] for r in rows if r["id"] < first)


def test_api_profile_lists_and_conversation(api: TokenTraced, shape: Shape) -> None:  # noqa: F811
    assert_served_by_indexes(api, "/api/v1/profiles")
    deep = shape.profiles // 2
    assert_served_by_indexes(api, f"/api/v1/profiles?cursor={deep}&status=active")
    assert_served_by_indexes(api, "/api/v1/profiles?q=ann")
    pid = api.app.store.db.q1("SELECT profile_id FROM messages ORDER BY id DESC LIMIT 1")[0]
    assert_served_by_indexes(api, f"/api/v1/profiles/{pid}/messages")
