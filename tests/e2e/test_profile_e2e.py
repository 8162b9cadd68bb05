"""The billing profile in real Chromium: live field checks, saving, no-JS, layout, axe."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import AXE, login, run_axe, screenshot_both

pytestmark = pytest.mark.e2e

URL = "/billing-profile"
VAT_ERROR = "#vat_id-error"
DOUBLE_CLICK = "(sel) => { const box = document.querySelector(sel); box.click(); box.click() }"


def save(page) -> None:
    """Click Save once the fields' own checks have landed.

    A check's swap can move the button between Playwright's stability check and its click;
    waiting for the network to go quiet first keeps the click where the button is.
    """
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Save billing profile").click()


def _mark_page(page) -> None:
    """Leave a mark on the window that a page load would wipe out."""
    page.evaluate("() => { window.__sameDocument = true }")


def _same_document(page) -> bool:
    return page.evaluate("() => window.__sameDocument === true")


def test_fields_check_themselves_and_the_profile_saves(page, world):
    login(page, world.a.owner.email)
    page.goto(URL)
    expect(page.get_by_role("heading", level=1)).to_have_text("Billing profile")
    assert page.evaluate("() => typeof htmx") == "object"
    _mark_page(page)

    vat = page.get_by_label("VAT ID")
    vat.fill("DE 136695977")
    vat.press("Tab")
    expect(page.locator(VAT_ERROR)).to_have_text("This is not a valid VAT ID for Germany.")
    expect(page.get_by_label("VAT ID")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("VAT ID")).to_have_attribute(
        "aria-describedby", "vat_id-hint vat_id-error"
    )
    assert _same_document(page)
    screenshot_both(page, "profile-error")

    page.get_by_label("VAT ID").fill("DE136695976")
    page.get_by_label("VAT ID").press("Tab")
    expect(page.locator(VAT_ERROR)).to_have_count(0)
    expect(page.get_by_label("VAT ID")).not_to_have_attribute("aria-invalid", "true")

    # The VAT ID is checked again when the country changes.
    # (Generous timeouts: each pick waits for the one before it in the form's queue, and CI
    # machines run two browsers at once.)
    page.get_by_label("Country").select_option("FR")
    expect(page.locator(VAT_ERROR)).to_have_text(
        "This is not a valid VAT ID for France.", timeout=15_000
    )
    page.wait_for_load_state("networkidle")
    page.get_by_label("Country").select_option("DE")
    page.wait_for_load_state("networkidle")
    expect(page.get_by_label("Country")).to_have_value("DE")
    expect(page.locator(VAT_ERROR)).to_have_count(0, timeout=15_000)
    assert _same_document(page)

    # The exemption reason shows only for exempt buyers.
    reason = page.get_by_label("Reason for the VAT exemption")
    expect(reason).to_be_hidden()
    page.get_by_label("We are exempt from VAT").check()
    expect(reason).to_be_visible()
    page.get_by_label("We are exempt from VAT").uncheck()
    expect(reason).to_be_hidden()

    # A second click while the first one's check is still on its way is not undone by it.
    with page.expect_response(lambda response: "/validate?field=tax_exempt" in response.url):
        page.evaluate(DOUBLE_CLICK, "#tax_exempt")
    page.wait_for_load_state("networkidle")
    expect(page.get_by_label("We are exempt from VAT")).not_to_be_checked()
    expect(reason).to_be_hidden()

    page.get_by_label("Copies to").fill("cfo@alpha.example\ncontroller@alpha.example")
    page.get_by_label("Purchase order number").fill("PO-2026-17")
    save(page)
    expect(page.locator(".flash--success")).to_have_text("Billing profile saved.")
    screenshot_both(page, "profile")

    page.reload()
    expect(page.get_by_label("VAT ID")).to_have_value("DE136695976")
    expect(page.get_by_label("Purchase order number")).to_have_value("PO-2026-17")
    expect(page.get_by_label("Copies to")).to_have_value(
        "cfo@alpha.example\ncontroller@alpha.example"
    )
    expect(page.locator(".flash--success")).to_have_count(0)
    assert page.console_errors == []  # no CSP violation, no missing asset


def _open_with_a_german_vat_id(page, world) -> None:
    """The profile with a valid German VAT ID entered and checked."""
    login(page, world.a.owner.email)
    page.goto(URL)
    page.get_by_label("VAT ID").fill("DE136695976")
    page.get_by_label("VAT ID").press("Tab")
    page.wait_for_load_state("networkidle")
    expect(page.locator(VAT_ERROR)).to_have_count(0)


TWO_PICKS = """(codes) => {
  const select = document.querySelector("#country");
  for (const code of codes) {
    select.value = code;
    select.dispatchEvent(new Event("change", { bubbles: true }));
  }
}"""


def test_quick_picks_end_with_the_last_one_checked(page, world):
    """Two countries picked in one tick: the answer for the first is not swapped in over the
    second, and the second is checked (the select is never replaced under the user)."""
    _open_with_a_german_vat_id(page, world)
    _mark_page(page)

    page.evaluate(TWO_PICKS, ["DE", "FR"])
    expect(page.locator(VAT_ERROR)).to_have_text(
        "This is not a valid VAT ID for France.", timeout=15_000
    )
    expect(page.get_by_label("Country")).to_have_value("FR")

    page.evaluate(TWO_PICKS, ["AT", "DE"])
    page.wait_for_load_state("networkidle")
    expect(page.get_by_label("Country")).to_have_value("DE")
    expect(page.locator(VAT_ERROR)).to_have_count(0, timeout=15_000)
    assert _same_document(page)
    assert page.console_errors == []


PICK_RIGHT_AFTER_SWAP = """(codes) => new Promise((resolve) => {
  const first = document.querySelector("#country");
  const observer = new MutationObserver(() => {
    const now = document.querySelector("#country");
    if (now && now !== first) {  // the answer's cell is in: pick again at once
      observer.disconnect();
      now.value = codes[1];
      now.dispatchEvent(new Event("change", { bubbles: true }));
      resolve();
    }
  });
  observer.observe(document.body, { childList: true, subtree: true });
  first.value = codes[0];
  first.dispatchEvent(new Event("change", { bubbles: true }));
})"""


def test_a_pick_right_after_an_answer_is_checked(page, world):
    """A field changed the moment a check's answer replaced it is checked too (the fields'
    container listens, not each field, so a field just swapped in is never deaf)."""
    _open_with_a_german_vat_id(page, world)

    page.evaluate(PICK_RIGHT_AFTER_SWAP, ["DE", "FR"])
    expect(page.locator(VAT_ERROR)).to_have_text(
        "This is not a valid VAT ID for France.", timeout=15_000
    )
    page.evaluate(PICK_RIGHT_AFTER_SWAP, ["FR", "DE"])
    page.wait_for_load_state("networkidle")
    expect(page.get_by_label("Country")).to_have_value("DE")
    expect(page.locator(VAT_ERROR)).to_have_count(0, timeout=15_000)


def test_failed_save_lists_the_problems_and_focuses_them(page, world):
    login(page, world.a.owner.email)
    page.goto(URL)
    page.get_by_label("City").fill("")
    page.get_by_label("Billing e-mail").fill("accounts-payable")
    save(page)
    summary = page.locator(".profile-summary")
    expect(summary).to_contain_text("2 fields need your attention")
    expect(summary).to_be_focused()
    expect(page.locator("#city-error")).to_have_text("Enter the city.")
    summary.get_by_role("link", name="Enter the city.").click()
    expect(page.get_by_label("City")).to_be_focused()
    assert page.console_errors == []


def test_the_form_works_without_javascript(browser, live_server, world):
    context = browser.new_context(base_url=live_server.url(), java_script_enabled=False)
    page = context.new_page()
    login(page, world.a.owner.email)
    page.goto(URL)
    page.get_by_label("VAT ID").fill("DE136695977")
    save(page)
    expect(page.locator(VAT_ERROR)).to_have_text("This is not a valid VAT ID for Germany.")
    page.get_by_label("VAT ID").fill("DE136695976")
    save(page)
    expect(page.locator(".flash--success")).to_have_text("Billing profile saved.")
    expect(page.get_by_label("VAT ID")).to_have_value("DE136695976")
    context.close()


def test_viewer_sees_no_controls(page, world):
    login(page, world.a.viewer.email)
    page.goto(URL)
    expect(page.get_by_text(world.a.tenant.billing_profile.billing_email)).to_be_visible()
    profile = page.locator("#profile")
    expect(profile.locator("input, select, textarea, button")).to_have_count(0)
    screenshot_both(page, "profile-viewer")


@pytest.mark.parametrize("role", ["owner", "viewer"])
def test_narrow_screen_has_no_horizontal_page_scroll(browser, live_server, world, role):
    context = browser.new_context(
        base_url=live_server.url(), viewport={"width": 360, "height": 740}
    )
    page = context.new_page()
    login(page, getattr(world.a, role).email)
    page.goto(URL)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360, f"{URL} is {width}px wide at 360px"
    context.close()


def test_two_columns_on_wide_screens_one_on_narrow(page, world):
    login(page, world.a.owner.email)
    page.goto(URL)
    postal, city = page.locator("#field-postal_code"), page.locator("#field-city")
    assert postal.bounding_box()["y"] == city.bounding_box()["y"]
    page.set_viewport_size({"width": 700, "height": 900})
    assert city.bounding_box()["y"] > postal.bounding_box()["y"]


@pytest.mark.skipif(not AXE.exists(), reason="axe-core not installed (npm ci)")
def test_no_serious_accessibility_violations(browser, live_server, world):
    context = browser.new_context(base_url=live_server.url(), bypass_csp=True)
    page = context.new_page()
    login(page, world.a.owner.email)
    state = context.storage_state()
    violations = run_axe(browser, live_server.url(URL), state)
    assert violations == [], [(v["id"], v["help"]) for v in violations]

    # With errors showing, after a live check and after a failed save.
    page.goto(URL)
    page.get_by_label("VAT ID").fill("DE136695977")
    page.get_by_label("VAT ID").press("Tab")
    expect(page.locator(VAT_ERROR)).to_be_visible()
    page.get_by_label("City").fill("")
    save(page)
    expect(page.locator(".profile-summary")).to_be_visible()
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    serious = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], [(v["id"], v["help"]) for v in serious]

    viewer = browser.new_context(base_url=live_server.url())
    viewer_page = viewer.new_page()
    login(viewer_page, world.a.viewer.email)
    violations = run_axe(browser, live_server.url(URL), viewer.storage_state())
    assert violations == [], [(v["id"], v["help"]) for v in violations]
    viewer.close()
    context.close()
