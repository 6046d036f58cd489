// Segment builder: its buttons (add/remove a condition or group, switch to JSON) swap only the
// builder card through htmx; without JavaScript they post the whole form and get the page back.
(function () {
  "use strict";
  document.addEventListener("click", function (e) {
    var button = e.target.closest("#segment-form button[name=action]");
    if (!button || button.value === "save" || !window.htmx) return;
    e.preventDefault();
    var form = button.form;
    htmx.ajax("POST", form.getAttribute("action"), {
      source: form, target: "#builder", swap: "outerHTML", values: { action: button.value }
    }).then(function () {
      htmx.trigger(form, "change");  // the live count follows the new rules
    });
  });
})();
