// Segment builder: its buttons (add/remove a condition or group, switch to JSON) swap only the
// builder card through htmx; without JavaScript they post the whole form and get the page back.
// A changed field or operator ([data-rebuild]) renders the builder again, so the value input
// becomes the picker of that field's real values.
(function () {
  "use strict";
  function rebuild(source, action) {
    var form = source.form;
    // The source is the button or select, not the form: htmx validates a form it submits, and the
    // rules must be editable before the segment has a name (the save button still requires one).
    return htmx.ajax("POST", form.getAttribute("action"), {
      source: source, target: "#builder", swap: "outerHTML", values: { action: action }
    }).then(function () {
      htmx.trigger(form, "change");  // the live count follows the new rules
    });
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest("#segment-form button[name=action]");
    if (!button || button.value === "save" || !window.htmx) return;
    e.preventDefault();
    rebuild(button, button.value);
  });
  document.addEventListener("change", function (e) {
    var select = e.target.closest("#segment-form [data-rebuild]");
    if (!select || !window.htmx) return;
    rebuild(select, "refresh");
  });
})();
