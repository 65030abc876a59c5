"""The API tokens page and the API reference in Chromium, on the demo daemon: an admin makes a
token (shown once, selectable to copy), sees it listed and revokes it; the reference page lists
every operation. Screenshots go to artifacts/screenshots/screen-api-*.png."""

from __future__ import annotations

import urllib.request

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _me(url: str, token: str) -> int:
    request = urllib.request.Request(
        f"{url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_make_use_and_revoke_a_token(logged_in_page, gateway_daemon, artifacts_dir):
    page, gw = logged_in_page, gateway_daemon
    page.goto(f"{gw.url}/home")
    page.get_by_role("link", name="API", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API tokens")
    page.get_by_label("Label (what uses it)").fill("booking system")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("Token", exact=True).input_value()
    assert secret.startswith("gw_")
    expect(page.get_by_text("it is not shown again")).to_be_visible()
    page.screenshot(path=artifacts_dir / "screen-api-token-created.png")
    assert _me(gw.url, secret) == 200

    row = page.locator("tr", has_text="booking system")
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("tr", has_text="booking system").get_by_text("revoked")).to_be_visible()
    assert secret not in page.content()
    assert _me(gw.url, secret) == 401


def test_the_reference_page(logged_in_page, gateway_daemon, artifacts_dir):
    page, gw = logged_in_page, gateway_daemon
    page.goto(f"{gw.url}/settings")
    page.get_by_role("link", name="API reference").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("SMS gateway API")
    expect(page.get_by_role("heading", name="POST /api/v1/messages")).to_be_visible()
    page.get_by_role("link", name="GET /messages/{id}").click()
    expect(page.locator("#getMessage")).to_be_in_viewport()
    page.screenshot(path=artifacts_dir / "screen-api-reference.png", full_page=False)
