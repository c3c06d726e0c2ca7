// A little progressive enhancement; every page works without it.
(function () {
  "use strict";
  // A select or quantity marked data-autosubmit sends its form when changed.
  document.querySelectorAll("[data-autosubmit]").forEach(function (input) {
    input.addEventListener("change", function () {
      if (input.form && input.form.reportValidity()) { input.form.requestSubmit(); }
    });
  });
  // Ask before something that cannot be undone.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); event.stopImmediatePropagation(); }
    });
  });
  // Registered after the confirmation, which stops it when the answer is no.
  // A form marked data-once cannot be sent twice by a double click (the server would
  // answer the repeat correctly anyway: placements carry an idempotency key).
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sent) { event.preventDefault(); return; }
      form.dataset.sent = "1";
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.setAttribute("aria-busy", "true"); });
    });
  });
  // Coming back with the browser's back button finds the page as it was left: sendable.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      delete form.dataset.sent;
      form.querySelectorAll("button[aria-busy]").forEach(function (b) { b.removeAttribute("aria-busy"); });
    });
  });
  // The search box offers product names as the shopper types (the server's /suggest).
  var box = document.querySelector("input[data-suggest]");
  var list = box && box.list;
  if (box && list && window.fetch) {
    var timer = null, asked = "";
    box.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        var typed = box.value.trim();
        if (typed.length < 2 || typed === asked) { return; }
        asked = typed;
        window.fetch(box.dataset.suggest + "?q=" + encodeURIComponent(typed), {headers: {Accept: "application/json"}})
          .then(function (response) { return response.ok ? response.json() : []; })
          .then(function (found) {
            if (asked !== typed) { return; }  // a later answer is on its way
            list.replaceChildren.apply(list, found.map(function (item) {
              var option = document.createElement("option");
              option.value = item.name;
              return option;
            }));
          })
          .catch(function () {});
      }, 150);
    });
  }
  // On a phone the filters start folded unless some are in use.
  var panel = document.querySelector("details[data-collapse-on-phone]");
  if (panel && !panel.hasAttribute("data-active") && window.matchMedia("(max-width: 899px)").matches) {
    panel.removeAttribute("open");
  }
})();
