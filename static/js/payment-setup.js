// Mount Stripe.js on the payment-method setup page and confirm in the browser, then post the
// form so the server activates the method. Uses only confirmCardSetup / confirmSepaDebitSetup /
// confirmCardPayment, which both real Stripe.js and localstripe's fake provide.
(function () {
  "use strict";

  function showError(form, message) {
    var box = form.querySelector("#setup-error");
    box.textContent = message || "The payment method could not be saved.";
    box.hidden = false;
  }

  function setBusy(form, busy) {
    var button = form.querySelector("button[type=submit]");
    if (button) {
      button.disabled = busy;
    }
  }

  function setupForm(form) {
    var stripe = Stripe(form.dataset.publishableKey);
    var elements = stripe.elements();
    var type = form.dataset.methodType;
    var fake = form.dataset.fake === "true";
    var element = null;
    if (type === "card") {
      element = elements.create("card");
      element.mount("#card-element");
    } else if (!fake) {
      element = elements.create("iban", { supportedCountries: ["SEPA"] });
      element.mount("#iban-element");
    }
    var confirmed = false;
    form.addEventListener("submit", function (event) {
      if (confirmed) {
        return; // the second submit goes to the server
      }
      event.preventDefault();
      setBusy(form, true);
      var secret = form.dataset.clientSecret;
      var done;
      if (type === "card") {
        done = stripe.confirmCardSetup(secret, { payment_method: { card: element } });
      } else {
        var details = {
          name: form.querySelector("#holder-name").value,
          email: form.querySelector("#holder-email").value,
        };
        var sepa = fake ? { iban: form.querySelector("#iban").value } : element;
        done = stripe.confirmSepaDebitSetup(secret, {
          payment_method: { sepa_debit: sepa, billing_details: details },
        });
      }
      done.then(function (result) {
        if (result.error) {
          setBusy(form, false);
          showError(form, result.error.message);
          return;
        }
        confirmed = true;
        form.submit();
      });
    });
  }

  function paymentForm(form) {
    var stripe = Stripe(form.dataset.publishableKey);
    var confirmed = false;
    form.addEventListener("submit", function (event) {
      if (confirmed) {
        return;
      }
      event.preventDefault();
      setBusy(form, true);
      stripe.confirmCardPayment(form.dataset.clientSecret).then(function (result) {
        confirmed = true;
        if (result.error) {
          showError(form, result.error.message);
        }
        form.submit(); // the server reads the outcome back either way
      });
    });
  }

  var setup = document.getElementById("stripe-setup");
  if (setup) {
    setupForm(setup);
  }
  var payment = document.getElementById("stripe-payment");
  if (payment) {
    paymentForm(payment);
  }
})();
