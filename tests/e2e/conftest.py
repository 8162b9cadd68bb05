"""Headless Chromium (Debian's package) driven by Playwright against a live server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


# The browser and page fixtures are in tests/conftest.py: one session-wide Chromium per
# process for every e2e test wherever it lives (two Playwright instances in one process fail).


SCREENSHOTS = ROOT / "artifacts" / "screenshots"


def screenshot_both(page, name: str) -> list[Path]:
    """Save the current page at 1280 and 375 px wide (full page) for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    paths = []
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        path = SCREENSHOTS / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True, caret="initial")
        paths.append(path)
    page.set_viewport_size(original)
    return paths


def login(page, email: str, password: str = "correct horse battery") -> None:
    """Sign in through the real form and wait for the redirect."""
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def run_axe(browser, url: str, storage_state) -> list[dict]:
    """Serious and critical axe-core violations of the page at ``url``."""
    context = browser.new_context(bypass_csp=True, storage_state=storage_state)
    page = context.new_page()
    page.goto(url)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    context.close()
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
