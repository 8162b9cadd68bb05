// Live field checks (htmx) must never undo what the user did while a check was on its way.
//
// A field's check answers with the field's cell as the server saw it. If the user changed
// the field again before that answer arrived (picked another country, ticked a box twice),
// swapping it in would put the old value back. So the value sent is remembered, and an
// answer for a value that is no longer there is dropped: the check of the newer value is
// already queued behind it and brings the right cell.
(function () {
  "use strict";

  function currentValue(elt) {
    if (elt.type === "checkbox" || elt.type === "radio") {
      return elt.checked ? "on" : "";
    }
    return elt.value;
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-live-check")) {
      elt.setAttribute("data-sent-value", currentValue(elt));
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!elt || !elt.hasAttribute || !elt.hasAttribute("data-live-check")) {
      return;
    }
    if (currentValue(elt) !== elt.getAttribute("data-sent-value")) {
      event.detail.shouldSwap = false;
    }
  });
})();
