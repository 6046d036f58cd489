// Draws the segment page's size-over-time chart from the JSON the server embedded.
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("segment-size-data");
    var canvas = document.getElementById("chart-size");
    if (!source || !canvas || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    new Chart(canvas, {
      type: "line",
      data: { labels: data.labels, datasets: [{ label: "Members", data: data.sizes, stepped: true, fill: false }] },
      options: { responsive: true, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
