/* Deal signals: deal cards and the deal page carry empty [data-deal-signals="<id>"] slots (pipeline
   templates know nothing of identity). After the page loads and after every htmx swap, the slots not
   yet asked for are collected and filled by ONE request to the identity app, which answers an
   out-of-band swap per deal; the swapped-in slots are marked loaded so they are not asked again. */
(function () {
  "use strict";
  // Ids per request: keeps the URL short (a board shows ~20 cards per column).
  var CHUNK = 200;
  var scheduled = false;

  function collect() {
    scheduled = false;
    var sink = document.getElementById("deal-signals-sink");
    if (!sink || !window.htmx) return;
    var slots = document.querySelectorAll("[data-deal-signals]:not([data-signals-loaded]):not([data-signals-requested])");
    var ids = [];
    slots.forEach(function (slot) {
      slot.setAttribute("data-signals-requested", "");
      ids.push(slot.getAttribute("data-deal-signals"));
    });
    for (var i = 0; i < ids.length; i += CHUNK) {
      htmx.ajax("GET", sink.dataset.url + "?deals=" + ids.slice(i, i + CHUNK).join(","), { target: sink, swap: "innerHTML" });
    }
  }

  // Several swaps in one tick (a column's next page, a board refresh) make one request.
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    setTimeout(collect, 0);
  }

  document.addEventListener("DOMContentLoaded", schedule);
  document.addEventListener("htmx:afterSettle", schedule);
})();
