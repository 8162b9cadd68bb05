"""A stand-in for the Mollie API v2 surface the portal uses (PAYMENTS.md §3), for tests.

Customers, payments (first and recurring), mandates and refunds, with Mollie's JSON shapes
(``_links`` built from this server's own base URL, errors with an integer ``status``).
Test-only routes:

- ``GET /checkout/<tr>``: a checkout page with one button per outcome;
  ``POST /checkout/<tr>`` with ``status`` = paid, failed, canceled or expired sets it; "paid"
  on a first payment creates a valid mandate. The webhook gets ``id=<tr>`` and the browser
  goes to the redirect URL.
- ``POST /_test/payments/<tr>/status`` {"status"}: the same without a browser.
- ``POST /_test/recurring`` {"status"}: outcome of later recurring payments (default paid).
- ``POST /_test/mandates/<mdt>/revoke``: the bank revoked the mandate.
- ``DELETE /_test/data``: forget everything.

Unlike real Mollie, recurring payments get their outcome at once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import threading

import requests
from flask import Flask, abort, jsonify, redirect, request
from markupsafe import escape
from werkzeug.serving import make_server

FINAL = {"paid", "failed", "canceled", "expired"}


class MollieState:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.customers: dict[str, dict] = {}
        self.payments: dict[str, dict] = {}
        self.mandates: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.recurring_outcome = "paid"
        self.webhook_calls: list[str] = []
        self.deliver_webhooks = True


def _id(prefix: str) -> str:
    return prefix + secrets.token_hex(5)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def create_app(state: MollieState) -> Flask:
    app = Flask(__name__)
    counter = itertools.count(1)

    def base() -> str:
        return request.host_url.rstrip("/")

    def error(status: int, detail: str, field: str | None = None):
        body = {"status": status, "title": "Error", "detail": detail}
        if field:
            body["field"] = field
        response = jsonify(body)
        response.status_code = status
        return response

    def auth() -> None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer test_") and not header.startswith("Bearer live_"):
            abort(error(401, "Missing authentication, or failed to authenticate"))

    def payment_json(payment: dict) -> dict:
        data = {k: v for k, v in payment.items() if not k.startswith("_")}
        data["_links"] = {
            "self": {
                "href": f"{base()}/v2/payments/{payment['id']}",
                "type": "application/hal+json",
            }
        }
        if payment["status"] == "open" and payment["sequenceType"] == "first":
            data["_links"]["checkout"] = {
                "href": f"{base()}/checkout/{payment['id']}",
                "type": "text/html",
            }
        if payment.get("customerId"):
            data["_links"]["customer"] = {
                "href": f"{base()}/v2/customers/{payment['customerId']}",
                "type": "application/hal+json",
            }
        if payment.get("mandateId"):
            data["_links"]["mandate"] = {
                "href": f"{base()}/v2/customers/{payment['customerId']}/mandates/"
                f"{payment['mandateId']}",
                "type": "application/hal+json",
            }
        return data

    def mandate_json(mandate: dict) -> dict:
        return {
            **{k: v for k, v in mandate.items() if not k.startswith("_")},
            "_links": {
                "self": {
                    "href": f"{base()}/v2/customers/{mandate['_customer']}/mandates/"
                    f"{mandate['id']}",
                    "type": "application/hal+json",
                },
                "customer": {
                    "href": f"{base()}/v2/customers/{mandate['_customer']}",
                    "type": "application/hal+json",
                },
            },
        }

    def customer_json(customer: dict) -> dict:
        return {
            **customer,
            "_links": {"self": {"href": f"{base()}/v2/customers/{customer['id']}"}},
        }

    def deliver_webhook(payment: dict) -> None:
        state.webhook_calls.append(payment["id"])
        url = payment.get("webhookUrl")
        if not url or not state.deliver_webhooks:
            return
        try:
            requests.post(url, data={"id": payment["id"]}, timeout=10)
        except requests.RequestException:
            pass  # like Mollie, retried later (here: never); the app also confirms on return

    def set_status(payment: dict, status: str) -> None:
        if status not in FINAL:
            abort(error(422, f"unknown status {status}", "status"))
        payment["status"] = status
        if status == "paid":
            payment["paidAt"] = _now()
            if payment["sequenceType"] == "first" and not payment.get("mandateId"):
                method = payment.get("method") or "directdebit"
                if method in ("ideal", "bancontact", "sofort", None):
                    method = "directdebit"
                payment["mandateId"] = make_mandate(payment["customerId"], method)["id"]
        else:
            payment[f"{status}At"] = _now()
            if status == "failed":
                payment["details"] = {"failureMessage": "The payment failed at the bank"}

    def make_mandate(customer_id: str, method: str) -> dict:
        details = {
            "directdebit": {
                "consumerName": "Test Tenant",
                "consumerAccount": "NL55INGB0000000000",
                "consumerBic": "INGBNL2A",
            },
            "creditcard": {
                "cardHolder": "Test Tenant",
                "cardNumber": "6787",
                "cardLabel": "Mastercard",
                "cardFingerprint": "fp_test",
                "cardExpiryDate": "2030-12-31",
            },
            "paypal": {"consumerName": "Test Tenant", "consumerAccount": "tenant@example.com"},
        }[method]
        mandate = {
            "resource": "mandate",
            "id": _id("mdt_"),
            "mode": "test",
            "status": "valid",
            "method": method,
            "details": details,
            "mandateReference": f"PORTAL-{next(counter):06d}",
            "signatureDate": dt.date.today().isoformat(),
            "createdAt": _now(),
            "_customer": customer_id,
        }
        state.mandates[mandate["id"]] = mandate
        return mandate

    def create_payment(data: dict, customer_id: str | None) -> dict:
        amount = data.get("amount") or {}
        if not isinstance(amount, dict) or not amount.get("value") or not amount.get("currency"):
            abort(error(422, "The amount is required", "amount"))
        customer_id = customer_id or data.get("customerId")
        if customer_id and customer_id not in state.customers:
            abort(error(404, "No customer exists with token " + customer_id))
        sequence = data.get("sequenceType") or "oneoff"
        if sequence == "first" and not data.get("redirectUrl"):
            abort(error(422, "The redirect URL is required", "redirectUrl"))
        if sequence == "recurring":
            mandate = state.mandates.get(data.get("mandateId") or "")
            if mandate is None or mandate["_customer"] != customer_id:
                abort(error(422, "The mandate is not valid for this customer", "mandateId"))
            if mandate["status"] != "valid":
                abort(error(422, "The mandate is invalid", "mandateId"))
        payment = {
            "resource": "payment",
            "id": _id("tr_"),
            "mode": "test",
            "createdAt": _now(),
            "status": "open",
            "amount": amount,
            "description": data.get("description") or "",
            "method": data.get("method"),
            "metadata": data.get("metadata"),
            "sequenceType": sequence,
            "customerId": customer_id,
            "redirectUrl": data.get("redirectUrl"),
            "webhookUrl": data.get("webhookUrl"),
            "profileId": "pfl_test",
        }
        if sequence == "recurring":
            payment["mandateId"] = data["mandateId"]
            set_status(payment, state.recurring_outcome)
        state.payments[payment["id"]] = payment
        return payment

    def get_payment(tr: str) -> dict:
        payment = state.payments.get(tr)
        if payment is None:
            abort(error(404, f"No payment exists with token {tr}."))
        return payment

    def get_mandate(cst: str, mdt: str) -> dict:
        mandate = state.mandates.get(mdt)
        if mandate is None or mandate["_customer"] != cst:
            abort(error(404, f"No mandate exists with token {mdt}."))
        return mandate

    # -- API -----------------------------------------------------------------------------

    @app.post("/v2/customers")
    def customers_create():
        auth()
        data = request.get_json(silent=True) or {}
        customer = {
            "resource": "customer",
            "id": _id("cst_"),
            "mode": "test",
            "name": data.get("name"),
            "email": data.get("email"),
            "locale": data.get("locale"),
            "metadata": data.get("metadata"),
            "createdAt": _now(),
        }
        state.customers[customer["id"]] = customer
        return jsonify(customer_json(customer)), 201

    @app.get("/v2/customers/<cst>")
    def customers_get(cst: str):
        auth()
        if cst not in state.customers:
            return error(404, f"No customer exists with token {cst}.")
        return jsonify(customer_json(state.customers[cst]))

    @app.post("/v2/payments")
    def payments_create():
        auth()
        payment = create_payment(request.get_json(silent=True) or {}, None)
        return jsonify(payment_json(payment)), 201

    @app.post("/v2/customers/<cst>/payments")
    def customer_payments_create(cst: str):
        auth()
        payment = create_payment(request.get_json(silent=True) or {}, cst)
        return jsonify(payment_json(payment)), 201

    @app.get("/v2/customers/<cst>/payments")
    def customer_payments_list(cst: str):
        auth()
        items = [payment_json(p) for p in state.payments.values() if p["customerId"] == cst]
        return jsonify({"count": len(items), "_embedded": {"payments": items}, "_links": {}})

    @app.get("/v2/payments/<tr>")
    def payments_get(tr: str):
        auth()
        return jsonify(payment_json(get_payment(tr)))

    @app.get("/v2/customers/<cst>/mandates/<mdt>")
    def mandates_get(cst: str, mdt: str):
        auth()
        return jsonify(mandate_json(get_mandate(cst, mdt)))

    @app.get("/v2/customers/<cst>/mandates")
    def mandates_list(cst: str):
        auth()
        items = [mandate_json(m) for m in state.mandates.values() if m["_customer"] == cst]
        return jsonify({"count": len(items), "_embedded": {"mandates": items}, "_links": {}})

    @app.delete("/v2/customers/<cst>/mandates/<mdt>")
    def mandates_revoke(cst: str, mdt: str):
        auth()
        mandate = get_mandate(cst, mdt)
        if mandate["status"] == "invalid":
            return error(404, f"No mandate exists with token {mdt}.")
        mandate["status"] = "invalid"
        return "", 204

    @app.post("/v2/payments/<tr>/refunds")
    def refunds_create(tr: str):
        auth()
        payment = get_payment(tr)
        if payment["status"] != "paid":
            return error(422, "The payment cannot be refunded")
        data = request.get_json(silent=True) or {}
        refund = {
            "resource": "refund",
            "id": _id("re_"),
            "amount": data.get("amount") or payment["amount"],
            "status": "pending",
            "paymentId": tr,
            "description": data.get("description") or "",
            "createdAt": _now(),
        }
        state.refunds[refund["id"]] = refund
        return jsonify(refund), 201

    # -- test-only -----------------------------------------------------------------------

    @app.get("/checkout/<tr>")
    def checkout_page(tr: str):
        payment = get_payment(tr)
        buttons = "".join(
            f'<button name="status" value="{s}">{s.capitalize()}</button> '
            for s in ("paid", "failed", "canceled", "expired")
        )
        return (
            "<!doctype html><html lang='en'><head><title>Mollie test checkout</title></head>"
            f"<body><h1>Mollie test checkout</h1><p>{escape(payment['description'])}: "
            f"{escape(payment['amount']['currency'])} {escape(payment['amount']['value'])}</p>"
            f"<form method='post'>{buttons}</form></body></html>"
        )

    @app.post("/checkout/<tr>")
    def checkout_submit(tr: str):
        payment = get_payment(tr)
        if payment["status"] in FINAL:
            return error(422, "The payment is already final")
        set_status(payment, request.form.get("status", "paid"))
        deliver_webhook(payment)
        return redirect(payment["redirectUrl"], code=302)

    @app.post("/_test/payments/<tr>/status")
    def test_set_status(tr: str):
        payment = get_payment(tr)
        set_status(payment, (request.get_json(silent=True) or {}).get("status", "paid"))
        deliver_webhook(payment)
        return jsonify(payment_json(payment))

    @app.post("/_test/recurring")
    def test_recurring():
        state.recurring_outcome = (request.get_json(silent=True) or {}).get("status", "paid")
        return jsonify(outcome=state.recurring_outcome)

    @app.post("/_test/mandates/<mdt>/revoke")
    def test_revoke(mdt: str):
        if mdt not in state.mandates:
            return error(404, "no such mandate")
        state.mandates[mdt]["status"] = "invalid"
        return jsonify(status="invalid")

    @app.delete("/_test/data")
    def test_reset():
        state.reset()
        return "", 204

    return app


class FakeMollieServer:
    """The stand-in served on a loopback port in a thread."""

    def __init__(self, port: int = 0):
        self.state = MollieState()
        self.server = make_server("127.0.0.1", port, create_app(self.state), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeMollieServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
