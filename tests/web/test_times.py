"""Times on the pages: one format ("YYYY-MM-DD HH:MM", 24-hour) in the site's time zone (the
configuration's ``timezone``), whatever page renders them (issue 11: the chat said "Dec 3 06:36
PM" while the tables said UTC)."""

from __future__ import annotations

import re

from gateway.config import parse_config
from gateway.modem.pdu import encode_deliver
from gateway.web.helpers import shown_time

from .conftest import AGENT, CONFIG, Web


def test_shown_time_outside_a_request_is_utc() -> None:
    assert shown_time("2026-12-03T18:36:05.123456+00:00") == "2026-12-03 18:36"
    assert shown_time("2026-12-03T18:36:05") == "2026-12-03 18:36"  # naive: the store's UTC
    assert shown_time(None) == "" and shown_time("not a time") == "not a time"


def test_pages_show_times_in_the_site_time_zone(web: Web, tmp_path) -> None:
    web.use(parse_config(CONFIG.format(data_dir=tmp_path) + "timezone: America/New_York\n"))
    got = web.inbound.receive("a", encode_deliver("+15551230001", "Is it snowing?")[0])
    row = web.store.messages.get(got.message_id)
    stamp = "2026-12-03T23:30:00.000000+00:00"  # 18:30 the same day in New York (EST)
    web.store.db.execute("UPDATE messages SET created_at = ? WHERE id = ?", (stamp, row["id"]))
    client = web.client(AGENT)
    expected = "2026-12-03 18:30"
    pid = row["profile_id"]
    for url in (f"/profiles/{pid}", "/inbox", "/home", f"/messages/{row['id']}", "/agent"):
        page = client.get(url).get_data(as_text=True)
        times = re.findall(rf'<time[^>]*datetime="{re.escape(stamp)}"[^>]*>([^<]*)</time>', page)
        assert times and set(times) == {expected}, (url, times)
    assert 'name="site-timezone" content="America/New_York"' in page
