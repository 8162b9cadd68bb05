"""The tenant page and the signed link download an invoice's documents alike."""

from __future__ import annotations

import pytest

from portal.notifications.links import issue_link, token_for


@pytest.mark.parametrize("fmt", ["pdf", "CII"])
def test_page_and_link_send_the_same_document(client, auth, world, session, fmt):
    invoice = world.a.invoice
    link = issue_link(session, invoice)
    session.commit()
    auth.login(world.a.owner.email)
    tenant = client.get(f"/invoices/{invoice.public_id}/download?format={fmt}")
    public = client.get(f"/i/{token_for(link)}/download?format={fmt}")
    assert (tenant.status_code, public.status_code) == (200, 200), tenant.headers.get("Location")
    assert tenant.data == public.data  # the stored rendering, whichever asked first
    for header in ("Content-Type", "Content-Disposition", "Cache-Control"):
        assert tenant.headers[header] == public.headers[header], header
    assert tenant.headers["Cache-Control"] == "private, no-store"
    assert "attachment" in tenant.headers["Content-Disposition"]
    # The link also keeps its token out of Referer and search engines; the page need not.
    assert public.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("fmt", "message"),
    [("docx", "Unknown format. Available:"), ("xrechnung", "This document is not available")],
)
def test_a_format_the_invoice_cannot_have_goes_back_with_the_reason(
    client, auth, world, session, fmt, message
):
    invoice = world.a.invoice  # no Leitweg-ID: no XRechnung
    link = issue_link(session, invoice)
    session.commit()
    auth.login(world.a.owner.email)
    for download, back in (
        (f"/invoices/{invoice.public_id}/download?format={fmt}", f"/invoices/{invoice.public_id}"),
        (f"/i/{token_for(link)}/download?format={fmt}", f"/i/{token_for(link)}"),
    ):
        response = client.get(download)
        assert response.status_code == 303 and response.headers["Location"].endswith(back)
        assert message in client.get(back).get_data(as_text=True)
