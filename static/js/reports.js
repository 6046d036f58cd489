// Draws the reports page's charts from the JSON the server embedded (the tables hold the same numbers).
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("report-data");
    if (!source || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var options = { responsive: true, plugins: { legend: { position: "bottom" } } };
    function chart(id, config) {
      var canvas = document.getElementById(id);
      if (canvas) new Chart(canvas, Object.assign({ options: options }, config));
    }
    chart("chart-stages", { type: "bar", data: { labels: data.stages.labels, datasets: [
      { label: "Value", data: data.stages.value }, { label: "Weighted", data: data.stages.weighted }] } });
    chart("chart-forecast", { type: "bar", data: { labels: data.forecast.labels, datasets: [
      { label: "Value", data: data.forecast.value }, { label: "Weighted", data: data.forecast.weighted }] } });
    chart("chart-win-rate", { type: "bar", data: { labels: data.winRate.labels, datasets: [
      { label: "Win rate %", data: data.winRate.rate }] } });
    chart("chart-activities", { type: "bar", data: { labels: data.activities.labels,
      datasets: data.activities.series } });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
