/* cdp-crm app shell behaviour: global search keys, modal, list selection, inline-edit keys. */
(function () {
  "use strict";

  function isTyping(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  // --- global search: Cmd/Ctrl-K anywhere, "/" when not typing; arrows + Enter in the results.
  function searchInput() { return document.getElementById("global-search"); }
  function resultsBox() { return document.getElementById("global-search-results"); }
  function options() { return Array.from(resultsBox().querySelectorAll("[role=option]")); }
  function showResults(show) {
    const box = resultsBox();
    box.classList.toggle("show", show);
    searchInput().setAttribute("aria-expanded", show ? "true" : "false");
  }
  function setActive(index) {
    const opts = options();
    opts.forEach(function (o, i) { o.classList.toggle("active", i === index); o.setAttribute("aria-selected", i === index); });
    if (opts[index]) opts[index].scrollIntoView({ block: "nearest" });
  }
  function activeIndex() { return options().findIndex(function (o) { return o.classList.contains("active"); }); }

  document.addEventListener("keydown", function (e) {
    const input = searchInput();
    if (!input) return;
    if ((e.metaKey || e.ctrlKey) && e.key.toLowerCase() === "k") {
      e.preventDefault(); input.focus(); input.select(); return;
    }
    if (e.key === "/" && !isTyping(document.activeElement)) {
      e.preventDefault(); input.focus(); input.select();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    const input = searchInput();
    if (!input) return;
    input.addEventListener("keydown", function (e) {
      const opts = options();
      if (e.key === "ArrowDown" && opts.length) { e.preventDefault(); showResults(true); setActive(Math.min(activeIndex() + 1, opts.length - 1)); }
      else if (e.key === "ArrowUp" && opts.length) { e.preventDefault(); setActive(Math.max(activeIndex() - 1, 0)); }
      else if (e.key === "Enter" && activeIndex() >= 0) { e.preventDefault(); window.location.href = opts[activeIndex()].href; }
      else if (e.key === "Escape") { showResults(false); input.blur(); }
    });
    input.addEventListener("blur", function () { setTimeout(function () { showResults(false); }, 150); });
    input.addEventListener("focus", function () { if (input.value && options().length) showResults(true); });
  });

  // Forms that ask first: <form data-confirm="Really?">. An attribute, not an inline onsubmit
  // handler, because the Content-Security-Policy allows no inline script. The one handler for it:
  // in the capture phase, so a refusal stops the submit before any form's own (htmx) handler.
  document.addEventListener("submit", function (e) {
    const form = e.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      e.preventDefault();
    }
  }, true);

  // A successful htmx POST announces itself as a bubbling "cdp:posted" event, so a panel can
  // refresh on `hx-trigger="cdp:posted from:#composer"` (an htmx "[condition]" filter would need
  // eval, which the Content-Security-Policy refuses).
  document.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.successful && e.detail.requestConfig && e.detail.requestConfig.verb === "post") {
      e.detail.elt.dispatchEvent(new CustomEvent("cdp:posted", { bubbles: true }));
    }
  });

  document.addEventListener("htmx:afterSwap", function (e) {
    const target = e.detail.target;
    if (target.id === "global-search-results") {
      showResults(target.children.length > 0 && searchInput().value.trim() !== "");
      setActive(0);
    }
    if (target.id === "modal-body" && window.bootstrap) {
      bootstrap.Modal.getOrCreateInstance(document.getElementById("app-modal")).show();
      const first = target.querySelector("input:not([type=hidden]), select");
      if (first) first.focus();
    }
  });
  // A cell switched to edit mode (or came back with errors): put the cursor in its first input.
  document.addEventListener("htmx:load", function (e) {
    const elt = e.detail.elt;
    if (elt.matches && elt.matches("td.cell-editing")) {
      const input = elt.querySelector("input:not([type=hidden]), select");
      if (input) input.focus();
    }
  });

  // Quick add saved: the server answers 204 with HX-Trigger: records-changed; close the modal.
  document.addEventListener("records-changed", hideModal);
  function hideModal() {
    const el = document.getElementById("app-modal");
    if (el && window.bootstrap) bootstrap.Modal.getOrCreateInstance(el).hide();
  }

  // --- list selection
  document.addEventListener("change", function (e) {
    if (e.target.matches("[data-select-all]")) {
      const table = e.target.closest("table");
      table.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = e.target.checked; });
    }
  });

  // List filters: leave empty fields out of the request, so the pushed URL stays readable.
  document.addEventListener("htmx:configRequest", function (e) {
    if (!e.detail.elt.matches || !e.detail.elt.matches("[data-drop-empty]")) return;
    const params = e.detail.parameters;
    const names = params instanceof FormData ? Array.from(new Set(params.keys())) : Object.keys(params);
    names.forEach(function (name) {
      const value = params instanceof FormData ? params.getAll(name) : [].concat(params[name]);
      if (value.every(function (v) { return v === ""; })) {
        if (params instanceof FormData) params.delete(name); else delete params[name];
      }
    });
  });

  // --- a refused or failed htmx request says so. htmx swaps nothing for a 4xx/5xx (htmx-config in
  // base.html), so without this a click on something the server refused (a 403 for a role, a record
  // deleted meanwhile, a 500) looked like nothing happened. On window, so it runs after every
  // document listener: one that handled the error itself (the board's) calls preventDefault().
  const REFUSALS = {
    403: "You may not do that.",
    404: "That record no longer exists: it may have been deleted or merged. Reload to see the latest.",
    409: "Someone changed this at the same time. Reload to see the latest.",
    413: "That is too large to send.",
    429: "Too many requests. Wait a moment and try again.",
  };
  function reasonIn(xhr) {
    // The branded error pages put the reason in [data-testid=error-reason]. DOMParser builds an
    // inert document (no script runs, nothing loads), and the text goes in as text, never markup.
    const type = xhr.getResponseHeader("Content-Type") || "";
    if (!xhr.responseText || type.indexOf("text/html") !== 0) return "";
    const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
    const reason = doc.querySelector("[data-testid=error-reason]");
    return reason ? reason.textContent.trim() : "";
  }
  function announce(message) {
    let box = document.getElementById("app-alerts");
    if (!box) {
      box = document.createElement("div");
      box.id = "app-alerts";
      box.className = "app-alerts";
      box.setAttribute("aria-live", "assertive");
      document.body.appendChild(box);
    }
    const alert = document.createElement("div");
    alert.className = "alert alert-danger alert-dismissible shadow-sm mb-2";
    alert.setAttribute("role", "alert");
    alert.dataset.testid = "request-error";
    alert.textContent = message;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close";
    close.setAttribute("aria-label", "Close");
    close.addEventListener("click", function () { alert.remove(); });
    alert.appendChild(close);
    box.appendChild(alert);
  }
  window.addEventListener("htmx:responseError", function (e) {
    if (e.defaultPrevented) return;
    const xhr = e.detail.xhr;
    const status = xhr.status;
    let message = REFUSALS[status] || (status >= 500
      ? "Something went wrong on our side, and nothing was saved. Try again; if it keeps happening, tell your admin."
      : "The request was refused (HTTP " + status + ").");
    const reason = status < 500 ? reasonIn(xhr) : "";
    if (reason) message = reason;
    announce(message);
  });
  window.addEventListener("htmx:sendError", function () {
    announce("Could not reach the server. Check your connection and try again.");
  });

  // Escape in an inline edit cancels it.
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    const form = e.target.closest && e.target.closest(".cell-form");
    // htmx.ajax rather than clicking Cancel: works even before htmx has processed a fresh cell.
    if (form && window.htmx) htmx.ajax("GET", form.dataset.cancelUrl, { target: form.closest("td"), swap: "outerHTML" });
  });
})();
