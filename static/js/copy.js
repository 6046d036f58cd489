/* Copy buttons: <button data-copy-target="#id"> copies the text of #id to the clipboard and says
   "Copied" for a moment. A data attribute, not an inline handler: the Content-Security-Policy
   allows no inline script. */
(function () {
  "use strict";

  function fallbackCopy(text) {
    // Without the async Clipboard API (an http:// page that is not localhost): a hidden textarea.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function feedback(button, label, ok) {
    const text = button.querySelector("[data-copy-label]") || button;
    if (!button.dataset.copyIdle) button.dataset.copyIdle = text.textContent;
    text.textContent = label;
    button.classList.toggle("btn-success", ok);
    clearTimeout(button._copyTimer);
    button._copyTimer = setTimeout(function () {
      text.textContent = button.dataset.copyIdle;
      button.classList.remove("btn-success");
    }, 2000);
  }

  document.addEventListener("click", function (e) {
    const button = e.target.closest && e.target.closest("[data-copy-target]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copyTarget);
    if (!source) return;
    const text = source.textContent;
    const copy = navigator.clipboard && window.isSecureContext
      ? navigator.clipboard.writeText(text)
      : fallbackCopy(text);
    copy.then(
      function () { feedback(button, "Copied", true); },
      function () { feedback(button, "Press Ctrl+C to copy", false); }
    );
  });
})();
