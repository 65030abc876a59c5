"""End to end through the real daemon: an admin adds a webhook in Settings → Webhooks, sees
its secret, and removes it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_add_a_webhook_in_settings(logged_in_page, gateway_daemon):
    page, gw = logged_in_page, gateway_daemon
    page.goto(f"{gw.url}/settings")
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
    form = page.locator("form#add")
    form.get_by_label("URL").fill("http://127.0.0.1:9/hooks/sms")
    form.get_by_label("broadcast").uncheck()
    form.get_by_role("button", name="Add webhook").click()
    expect(page.locator(".flash")).to_contain_text("added")
    row = page.locator("table.webhooks-table tbody tr", has_text="127.0.0.1:9/hooks/sms")
    expect(row).to_contain_text("inbound, status, opt")
    secret = row.locator("code.secret")
    expect(secret).to_be_visible()  # opened for the new webhook
    [hook] = [h for h in gw.daemon.services.webhooks.all() if h.url.endswith("/hooks/sms")]
    expect(secret).to_have_text(hook.secret)
    # Remove it again: the row goes.
    row.get_by_role("button", name="Remove").click()
    expect(page.locator("table.webhooks-table tbody tr", has_text="/hooks/sms")).to_have_count(0)
