// Draws each chart of a function page with uPlot from the data the page carries
// (script#chart-data); window.mlambdaCharts keeps them by title.
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("chart-data");
    if (!source || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.textContent);
    window.mlambdaCharts = {};
    document.querySelectorAll("figure.chart").forEach(function (figure) {
      var title = figure.dataset.title;
      var values = data.series[title];
      var options = {
        width: Math.max(300, figure.clientWidth - 16),
        height: 160,
        legend: { show: false },
        scales: { x: { time: true } },
        series: [{}, { label: title, stroke: "#2f6fde", fill: "rgba(47,111,222,0.12)",
                        spanGaps: false, points: { show: true, size: 4 } }],
        axes: [{}, { size: 50 }],
      };
      window.mlambdaCharts[title] = new uPlot(options, [data.timestamps, values], figure);
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
