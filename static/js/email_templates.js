/* The email template form's merge-field picker: <button data-merge-field="contact.first_name">
   inserts {{ contact.first_name }} at the cursor of the [data-merge-input] field focused last (the
   body until another is focused). A data attribute, not an inline handler: the
   Content-Security-Policy allows no inline script. */
(function () {
  "use strict";

  let last = null;

  document.addEventListener("focusin", function (e) {
    if (e.target.matches && e.target.matches("[data-merge-input]")) last = e.target;
  });

  document.addEventListener("click", function (e) {
    const button = e.target.closest && e.target.closest("[data-merge-field]");
    if (!button) return;
    const input = last || document.querySelector("textarea[data-merge-input]");
    if (!input) return;
    const text = "{{ " + button.dataset.mergeField + " }}";
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? start;
    input.setRangeText(text, start, end, "end");
    input.focus();
    input.dispatchEvent(new Event("input", { bubbles: true }));
  });
})();
