// The console's only script of its own: draws the charts the server describes in data
// attributes (uPlot), again after htmx swaps a fragment in. No inline script anywhere (CSP).
(function () {
  "use strict";
  var COLORS = { sent: "#1f9d55", failed: "#d97706", dead: "#dc2626", gaps: "#2563eb" };

  function draw(el) {
    if (el.dataset.drawn === "1" || typeof uPlot === "undefined") return;
    var spec = JSON.parse(el.dataset.chart);
    var width = Math.max(240, el.clientWidth || 480);
    var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined;
    var series = [{ label: spec.x_label || "" }].concat(spec.series.map(function (s) {
      var color = COLORS[s.key] || "#555";
      return { label: s.label, stroke: color, fill: color + "88", width: 1, paths: spec.bars ? bars : undefined,
               points: { show: !spec.bars } };
    }));
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    var opts = {
      width: width, height: spec.height || 180, series: series,
      scales: { x: { time: spec.time !== false } },
      axes: [{ space: 50 }, { size: 50 }],
      legend: { show: true }, cursor: { drag: { x: false, y: false } }
    };
    if (spec.time === false) {
      opts.axes[0].space = 90;
      opts.axes[0].values = function (u, vals) {
        return vals.map(function (v) { return (+v.toFixed(4)) + (spec.x_format || ""); });
      };
    }
    el.textContent = "";
    new uPlot(opts, data, el);
    el.dataset.drawn = "1";
  }

  function drawAll(root) {
    var els = (root || document).querySelectorAll("[data-chart]");
    for (var i = 0; i < els.length; i++) draw(els[i]);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (e) { drawAll(e.target); });
})();
