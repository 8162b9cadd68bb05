// Live field checks (htmx), delegated: a change of any field bubbles to the container marked
// data-live-check, which posts the whole form to its hx-post with ?field=<the field's name>.
// The answer replaces the field's cell (and cells depending on it) out of band; the
// container itself is never swapped, so a field changed again right after an answer is
// always checked again.
//
// An answer must never undo what the user did while it was on its way: if any field of the
// form holds another value than when the check was sent (another country picked, a box
// ticked twice, a dependent field typed into), the answer is dropped. The change that made
// the difference has queued its own check behind it, which brings the right cells (a field
// still being typed in is checked when the user leaves it).
(function () {
  "use strict";

  function formState(form) {
    var parts = [];
    new FormData(form).forEach(function (value, name) {
      parts.push(encodeURIComponent(name) + "=" + encodeURIComponent(String(value)));
    });
    return parts.join("&");
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var container = event.detail.elt;
    if (!container || !container.hasAttribute || !container.hasAttribute("data-live-check")) {
      return;
    }
    var trigger = event.detail.triggeringEvent;
    var field = trigger && trigger.target;
    if (!field || !field.name || !field.form) {
      event.preventDefault(); // not a field of the form: nothing to check
      return;
    }
    var separator = event.detail.path.indexOf("?") < 0 ? "?" : "&";
    event.detail.path += separator + "field=" + encodeURIComponent(field.name);
    event.detail.liveForm = field.form;
    event.detail.liveState = formState(field.form);
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var config = event.detail.requestConfig;
    if (config && config.liveForm && formState(config.liveForm) !== config.liveState) {
      event.detail.shouldSwap = false;
    }
  });
})();
