"""End to end through the real demo daemon, whose simulated network invents no phones: a handset
texts the short code 55123 from the Phones page and the text reaches the gateway on that short
code's default modem; a text to a number nobody has ends failed with the reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from e2e_helpers import E2E_TIMEOUT_S
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

WALKER = "+15551239301"  # not a demo profile: a phone of this test's own
NOBODY = "+15559879999"  # no handset has this number


def wait_for(gw, check: Callable[[], Any], what: str) -> Any:
    """``check()`` once it is truthy, re-evaluated after each event on the bus."""
    sub = gw.daemon.services.events.subscribe()
    try:
        deadline = time.monotonic() + E2E_TIMEOUT_S
        while True:
            got = check()
            if got:
                return got
            left = deadline - time.monotonic()
            assert left > 0, f"{what}: not within {E2E_TIMEOUT_S}s"
            sub.get(timeout=min(left, 0.5))
    finally:
        sub.close()


def test_handset_texts_a_short_code_and_a_text_to_nobody_fails(
    logged_in_page, gateway_daemon, artifacts_dir
):
    page, gw = logged_in_page, gateway_daemon
    gw.handset(WALKER)
    page.goto(f"{gw.url}/phones")
    card = page.locator(f"section.phone[data-number='{WALKER}']")
    card.get_by_label("To").select_option("55123")
    card.get_by_label("Text").fill("Is the library open on Saturday?")
    card.get_by_role("button", name=f"Send as {WALKER}").click()
    expect(page.get_by_text(f"{WALKER} texted 55123 (1 part).")).to_be_visible()

    def arrived():
        rows = gw.store.db.q(
            "SELECT * FROM messages WHERE direction = 'in' AND phone = ?", (WALKER,)
        )
        return rows[0] if rows else None

    row = wait_for(gw, arrived, "the text to 55123 in the store")
    assert row["short_code"] == "55123" and row["modem_id"] == "support-a"
    assert gw.net.handsets.count(gw.net.handset(WALKER)) == 1
    assert all(h.number != "55123" for h in gw.net.handsets)  # no phone invented for it

    acc = gw.daemon.services.outbox.submit("Hello?", to=NOBODY, short_code="55123")

    def failed():
        msg = gw.store.messages.get(acc.message_id)
        return msg if msg["status"] == "failed" else None

    msg = wait_for(gw, failed, "the text to nobody failed")
    assert "the number does not exist or is not in service" in msg["error"]
    page.goto(f"{gw.url}/messages/{acc.message_id}")
    expect(page.locator("main")).to_contain_text("the number does not exist or is not in service")
    page.screenshot(path=artifacts_dir / "phones-short-code-and-nobody.png")
