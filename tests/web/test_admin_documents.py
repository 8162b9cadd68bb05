"""The admin's document checks: stored documents and their validation findings."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from portal.documents.models import StoredDocument
from portal.tenancy.models import BillingProfile
from tests.factories.invoices import make_invoice


def _einvoice_ready(session, world):
    profile = session.scalars(
        sa.select(BillingProfile).filter_by(tenant_id=world.a.tenant.id)
    ).one()
    profile.vat_id = "DE136695976"
    world.a.tenant.seller.phone = "+49 40 1234567"
    invoice = make_invoice(
        world.a.tenant, period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 10, 31)
    )
    session.commit()
    return invoice


def test_admin_stores_checks_and_reads_the_report(client, auth, world, session):
    invoice = _einvoice_ready(session, world)
    auth.login(world.admin.email)
    url = f"/admin/invoices/{invoice.public_id}/documents"
    assert "Nothing stored yet" in client.get(url).get_data(as_text=True)

    made = client.post(url, data={"format": "cii"})
    assert made.status_code == 303
    stored = session.scalars(sa.select(StoredDocument).filter_by(invoice_id=invoice.id)).all()
    assert [d.format for d in stored] == ["cii"]
    page = client.get(url).get_data(as_text=True)
    assert f"{invoice.number}-cii.xml" in page
    assert stored[0].sha256 in page
    assert "Valid" in page  # no fatal findings for a correct invoice

    listing = client.get("/admin/documents").get_data(as_text=True)
    assert invoice.number in listing and world.a.tenant.name in listing


def test_findings_are_listed_with_their_rule(client, auth, world, session):
    invoice = _einvoice_ready(session, world)
    auth.login(world.admin.email)
    client.post(f"/admin/invoices/{invoice.public_id}/documents", data={"format": "ubl"})
    doc = session.scalars(sa.select(StoredDocument).filter_by(invoice_id=invoice.id)).one()
    doc.validation = [
        {"rule_id": "BR-CO-14", "severity": "fatal", "message": "VAT total", "source": "x"}
    ]
    session.commit()
    page = client.get(f"/admin/invoices/{invoice.public_id}/documents").get_data(as_text=True)
    assert "BR-CO-14" in page and "1 error" in page


def test_unavailable_or_unknown_formats_are_messages(client, auth, world):
    auth.login(world.admin.email)
    url = f"/admin/invoices/{world.a.invoice.public_id}/documents"
    assert client.post(url, data={"format": "xrechnung"}).status_code == 303
    assert client.post(url, data={"format": "docx"}).status_code == 303
    page = client.get(url).get_data(as_text=True)
    assert "not available" in page and "Unknown format" in page


def test_tenants_cannot_see_the_admin_reports(client, auth, world):
    auth.login(world.a.owner.email)
    assert client.get("/admin/documents").status_code == 404
    url = f"/admin/invoices/{world.a.invoice.public_id}/documents"
    assert client.get(url).status_code == 404
    assert client.post(url, data={"format": "pdf"}).status_code == 404
    assert client.get("/admin/invoices/not-a-uuid/documents").status_code == 404
