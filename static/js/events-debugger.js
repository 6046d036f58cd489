// The Events page: per-minute chart, pause/resume of the live poll, and a cap on kept rows.
(function () {
  "use strict";
  var MAX_ROWS = 200;

  function drawChart() {
    var canvas = document.getElementById("per-minute-chart");
    var data = document.getElementById("per-minute-data");
    if (!canvas || !data || typeof Chart === "undefined") return;
    var series = JSON.parse(data.textContent);
    new Chart(canvas, {
      type: "bar",
      data: { labels: series.labels, datasets: [{ label: "Events", data: series.counts, backgroundColor: "#4f8cff" }] },
      options: {
        maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false } },
        scales: { x: { ticks: { maxTicksLimit: 12 } }, y: { beginAtZero: true, ticks: { precision: 0 } } }
      }
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("#live-toggle");
    if (!button) return;
    var list = document.getElementById("event-list");
    var paused = list.toggleAttribute("data-paused");
    button.setAttribute("aria-pressed", paused ? "true" : "false");
    button.innerHTML = paused ? '<i class="bi bi-play-fill"></i> Resume' : '<i class="bi bi-pause-fill"></i> Pause';
    document.getElementById("live-status").textContent = paused
      ? "Paused: new events are not fetched."
      : "Live: checking for new events every 2 seconds.";
  });

  // While paused the poll still ticks but sends nothing. (Not an hx-trigger "[condition]": htmx
  // evaluates those with eval, which the Content-Security-Policy refuses.)
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt.id !== "event-poller") return;
    var list = document.getElementById("event-list");
    if (list && list.hasAttribute("data-paused")) event.preventDefault();
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "event-rows") return;
    var empty = document.getElementById("no-events");
    if (empty) empty.remove();
    var rows = event.detail.target.querySelectorAll(".event-row");
    for (var i = MAX_ROWS; i < rows.length; i++) rows[i].remove();
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawChart);
  else drawChart();
})();
