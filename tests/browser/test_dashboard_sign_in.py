"""Signing in to the dashboard: the token is asked once, kept for the tab, and a bad one is told as such."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed").expect


def test_a_malformed_token_is_refused_in_words(dashboard: Any) -> None:
    dashboard.open(token="not-a-jwt")
    expect(dashboard.page.locator("#token-error")).to_contain_text("This token was refused")
    expect(dashboard.page.locator("#token-error")).to_contain_text("HTTP 401")
    expect(dashboard.page.locator("#workspace")).to_be_hidden()
    assert dashboard.page.evaluate("sessionStorage.length") == 0


def test_a_token_without_the_admin_role_is_refused(dashboard: Any, stack: Any) -> None:
    from chalicelib.auth import issue_token

    viewer = issue_token(stack.services.settings.auth_jwt_secret, subject="viewer", roles=("viewer",))
    dashboard.open(token=viewer)
    expect(dashboard.page.locator("#token-error")).to_contain_text("admin role")
    expect(dashboard.page.locator("#token-error")).to_contain_text("HTTP 403")


def test_a_good_token_is_asked_once_per_tab(dashboard: Any) -> None:
    dashboard.open()
    expect(dashboard.page.locator("#workspace")).to_be_visible()
    dashboard.wait_live()
    dashboard.page.reload()
    expect(dashboard.page.locator("#workspace")).to_be_visible()
    expect(dashboard.page.locator("#sign-in")).to_be_hidden()
    dashboard.page.get_by_role("button", name="Sign out").click()
    expect(dashboard.page.get_by_label("Admin token (JWT)")).to_be_focused()
    assert dashboard.page.evaluate("sessionStorage.length") == 0
