"""Models of the database and services turned into the API's response models.

Every figure is read from the same objects the pages render (frozen invoice columns, the
estimate, the open amounts), never computed again here.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask import url_for

from portal.api.billing.schemas import (
    AllowanceChargeResponse,
    BillingOverviewResponse,
    BillingProfileResponse,
    EstimateLine,
    EstimateSummary,
    EstimateTotals,
    InvoiceLineResponse,
    InvoiceResponse,
    MonthSpendResponse,
    PaymentMethodResponse,
    PaymentProviderResponse,
    QuotaUsageResponse,
    UpcomingInvoiceResponse,
    VatBreakdownResponse,
)
from portal.domain.totals import Totals
from portal.invoices.estimates import Estimate
from portal.invoices.models import Invoice
from portal.invoices.queries import OpenAmounts
from portal.invoices.spend import MonthSpend
from portal.payments.methods import method_warning
from portal.payments.models import PaymentMethod
from portal.tenancy.models import BillingProfile, Tenant
from portal.usage.queries import QuotaUsage


def _value(enum_or_str) -> str:
    return getattr(enum_or_str, "value", enum_or_str)


def profile(p: BillingProfile) -> BillingProfileResponse:
    return BillingProfileResponse(
        **{
            name: getattr(p, name)
            for name in BillingProfileResponse.model_fields
            if name not in ("cc_emails", "einvoice_format")
        },
        cc_emails=list(p.cc_emails or []),
        einvoice_format=_value(p.einvoice_format),
    )


def invoice(inv: Invoice, today: dt.date, *, detail: bool = False, pdf_url=None) -> InvoiceResponse:
    """The invoice as the API shows it; ``pdf_url`` (a :func:`portal.urls.url_builder`)
    saves building the PDF route once per invoice of a list."""
    data = InvoiceResponse(
        id=str(inv.public_id),
        number=inv.number,
        status=_value(inv.status),
        is_overdue=inv.is_overdue(today),
        kind=_value(inv.kind),
        currency=inv.currency,
        issue_date=inv.issue_date,
        due_date=inv.due_date,
        period_start=inv.period_start,
        period_end=inv.period_end,
        buyer_reference=inv.buyer_reference,
        purchase_order=inv.purchase_order,
        language=inv.language,
        lines_total_minor=inv.lines_total_minor,
        allowance_total_minor=inv.allowance_total_minor,
        charge_total_minor=inv.charge_total_minor,
        tax_exclusive_minor=inv.tax_exclusive_minor,
        tax_minor=inv.tax_minor,
        tax_inclusive_minor=inv.tax_inclusive_minor,
        prepaid_minor=inv.prepaid_minor,
        rounding_minor=inv.rounding_minor,
        amount_due_minor=inv.amount_due_minor,
        amount_paid_minor=inv.amount_paid_minor,
        amount_credited_minor=inv.amount_credited_minor,
        amount_open_minor=inv.amount_open_minor,
        finalized_at=inv.finalized_at,
        sent_at=inv.sent_at,
        paid_at=inv.paid_at,
        pdf_url=pdf_url(inv.public_id)
        if pdf_url
        else url_for("api_billing.download_invoice_pdf_op", invoice_id=str(inv.public_id)),
    )
    if detail:
        data.lines = [
            InvoiceLineResponse(
                position=line.position,
                kind=_value(line.kind),
                description=line.description,
                quantity=line.quantity,
                unit_code=line.unit_code,
                unit_price=line.unit_price,
                net_amount_minor=line.net_amount_minor,
                vat_category=_value(line.vat_category),
                vat_rate=line.vat_rate,
                vat_exemption_reason=line.vat_exemption_reason,
                period_start=line.period_start,
                period_end=line.period_end,
            )
            for line in inv.lines
        ]
        data.vat_breakdown = [
            VatBreakdownResponse(
                category=_value(row.category),
                rate=row.rate,
                taxable_minor=row.taxable_minor,
                tax_minor=row.tax_minor,
                exemption_reason=row.exemption_reason,
            )
            for row in inv.vat_breakdown
        ]
        data.allowances_charges = [
            AllowanceChargeResponse(
                is_charge=row.is_charge,
                reason=row.reason,
                amount_minor=row.amount_minor,
                vat_category=_value(row.vat_category),
                vat_rate=row.vat_rate,
            )
            for row in inv.allowance_charges
        ]
    return data


def method(
    m: PaymentMethod, today: dt.date, *, next_action: dict | None = None
) -> PaymentMethodResponse:
    warning = method_warning(m, today)
    return PaymentMethodResponse(
        id=str(m.public_id),
        provider=m.provider,
        method_type=m.method_type,
        status=_value(m.status),
        is_default=bool(m.is_default),
        brand=m.brand,
        last4=m.last4,
        exp_month=m.exp_month,
        exp_year=m.exp_year,
        holder_name=m.holder_name,
        mandate_reference=m.mandate_reference,
        warning=warning.code if warning else None,
        created_at=m.created_at,
        next_action=next_action,
    )


def provider(p) -> PaymentProviderResponse:
    return PaymentProviderResponse(
        slug=p.slug, name=p.name, method_types=list(p.method_types), flow=p.flow
    )


def overview(
    tenant: Tenant,
    *,
    amounts: OpenAmounts,
    upcoming: Estimate | None,
    payment_method: PaymentMethod | None,
    invoices: list[Invoice],
    spend: list[MonthSpend],
    today: dt.date,
) -> BillingOverviewResponse:
    return BillingOverviewResponse(
        currency=amounts.open.currency,
        amount_open_minor=amounts.open.minor,
        amount_overdue_minor=amounts.overdue.minor,
        open_count=amounts.open_count,
        overdue_count=amounts.overdue_count,
        next_billing_date=upcoming.next_billing_date if upcoming else None,
        upcoming=EstimateSummary(
            period_start=upcoming.period_start,
            period_end=upcoming.period_last_day,
            to_date_amount_due_minor=upcoming.to_date_totals.amount_due.minor,
            projected_amount_due_minor=upcoming.projected_totals.amount_due.minor,
        )
        if upcoming
        else None,
        default_payment_method=method(payment_method, today) if payment_method else None,
        recent_invoices=[invoice(inv, today) for inv in invoices],
        monthly_spend=[
            MonthSpendResponse(month=row.month.strftime("%Y-%m"), amount_minor=row.amount.minor)
            for row in spend
        ],
    )


def _totals(totals: Totals) -> EstimateTotals:
    return EstimateTotals(
        lines_total_minor=totals.lines_total.minor,
        allowance_total_minor=totals.allowance_total.minor,
        tax_exclusive_minor=totals.tax_exclusive.minor,
        tax_minor=totals.tax.minor,
        tax_inclusive_minor=totals.tax_inclusive.minor,
        amount_due_minor=totals.amount_due.minor,
    )


def _lines(plan, totals: Totals) -> list[EstimateLine]:
    return [
        EstimateLine(
            description=line.description,
            kind=_value(line.kind),
            quantity=line.quantity,
            unit_price=line.unit_price,
            net_amount_minor=net.minor,
            vat_category=_value(line.vat_category),
            vat_rate=line.vat_rate,
        )
        for line, net in zip(plan.lines, totals.line_nets, strict=True)
    ]


def upcoming(tenant: Tenant, est: Estimate, quotas: list[QuotaUsage]) -> UpcomingInvoiceResponse:
    return UpcomingInvoiceResponse(
        currency=tenant.currency,
        period_start=est.period_start,
        period_end=est.period_last_day,
        next_billing_date=est.next_billing_date,
        elapsed=(Decimal(est.elapsed.numerator) / Decimal(est.elapsed.denominator)).quantize(
            Decimal("0.0001")
        ),
        to_date=_totals(est.to_date_totals),
        projected=_totals(est.projected_totals),
        lines=_lines(est.projected, est.projected_totals),
        to_date_lines=_lines(est.to_date, est.to_date_totals),
        quotas=[
            QuotaUsageResponse(
                metric=q.metric,
                used=q.used,
                limit=q.limit,
                percent=q.percent,
                is_hard=q.is_hard,
            )
            for q in quotas
        ],
    )
