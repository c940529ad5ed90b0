// CLM dashboard charts: plain SVG, no library, no network (the data is embedded in the page).
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var W = 640, H = 220, PAD = { l: 52, r: 12, t: 14, b: 28 };  // W, H: each chart's own viewBox
  var data = JSON.parse(document.getElementById("chart-data").textContent || "{}");

  function el(name, attrs, parent, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function scale(d0, d1, r0, r1) {
    var span = d1 - d0 || 1;
    return function (v) { return r0 + (v - d0) / span * (r1 - r0); };
  }

  // fmt: a function of the value (five even ticks), or a list of {seconds, label} ticks made by the server.
  function axes(svg, yMin, yMax, fmt, xLabel) {
    var y = scale(yMin, yMax, H - PAD.b, PAD.t);
    var ticks = typeof fmt === "function"
      ? [0, 1, 2, 3, 4].map(function (i) { var v = yMin + (yMax - yMin) * i / 4; return { seconds: v, label: fmt(v) }; })
      : fmt;
    ticks.forEach(function (t) {
      el("line", { x1: PAD.l, x2: W - PAD.r, y1: y(t.seconds), y2: y(t.seconds), stroke: "#e6eaee" }, svg);
      el("text", { x: PAD.l - 6, y: y(t.seconds) + 4, "text-anchor": "end", class: "y-tick" }, svg, t.label);
    });
    el("text", { x: (W + PAD.l) / 2, y: H - 6, "text-anchor": "middle" }, svg, xLabel);
    return y;
  }

  function empty(svg, message) {
    el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, svg, message);
  }

  function legend(svg, items) {
    items.forEach(function (item, i) {
      var x = PAD.l + 10 + i * 120;
      el("rect", { x: x, y: PAD.t, width: 12, height: 4, fill: item[1] }, svg);
      el("text", { x: x + 16, y: PAD.t + 6 }, svg, item[0]);
    });
  }

  function pnlChart(svg, series) {
    var current = series.length ? series[series.length - 1] : null;
    if (!current || current.points.length < 2) { empty(svg, "no closed shadow samples yet"); return; }
    var pts = current.points, lo = 0, hi = 0;
    pts.forEach(function (p) { lo = Math.min(lo, p.active, p.shadow); hi = Math.max(hi, p.active, p.shadow); });
    var y = axes(svg, lo, hi === lo ? lo + 1 : hi, function (v) { return (100 * v).toFixed(1) + "%"; },
      "closed samples of " + current.shadow_model_id);
    var x = scale(0, pts.length - 1, PAD.l, W - PAD.r);
    [["active", "#5b6b7a"], ["shadow", "#2b7de9"]].forEach(function (side) {
      var d = pts.map(function (p, i) { return (i ? "L" : "M") + x(i).toFixed(1) + "," + y(p[side[0]]).toFixed(1); });
      el("path", { d: d.join(""), fill: "none", stroke: side[1], "stroke-width": 2, "data-series": side[0] }, svg);
    });
    legend(svg, [["active", "#5b6b7a"], ["shadow", "#2b7de9"]]);
  }

  function driftChart(svg, points) {
    if (!points.length) { empty(svg, "no drift events recorded"); return; }
    var times = points.map(function (p) { return Date.parse(p.t); });
    var t0 = Math.min.apply(null, times), t1 = Math.max.apply(null, times);
    var y = axes(svg, 0, 1, function (v) { return v.toFixed(2); }, "detected at (" +
      new Date(t0).toISOString().slice(0, 10) + " .. " + new Date(t1).toISOString().slice(0, 10) + ")");
    var x = scale(t0, t1 === t0 ? t0 + 1 : t1, PAD.l + 6, W - PAD.r - 6);
    var colour = { low: "#2f9e5b", medium: "#d9a400", high: "#e8590c", critical: "#c92a2a" };
    el("line", { x1: PAD.l, x2: W - PAD.r, y1: y(0.05), y2: y(0.05), stroke: "#c92a2a", "stroke-dasharray": "4 3" }, svg);
    points.forEach(function (p, i) {
      var dot = el("circle", { cx: x(times[i]), cy: y(p.p), r: 4, fill: colour[p.severity] || "#5b6b7a", class: "drift-point" }, svg);
      el("title", {}, dot, (p.feature || "") + " p=" + p.p + " " + p.severity);
    });
  }

  function jobsChart(svg, jobs) {
    if (!jobs.length) { empty(svg, "no finished jobs yet"); return; }
    var axis = data.job_duration_axis;  // nice steps in one unit that fits (app.operations.formatting.duration_axis)
    var y = axes(svg, 0, axis.top, axis.ticks, "last " + jobs.length + " jobs");
    var band = (W - PAD.l - PAD.r) / jobs.length;
    var colour = { completed: "#2f9e5b", partial: "#d9a400", failed: "#c92a2a", cancelled: "#868e96" };
    jobs.forEach(function (j, i) {
      var bar = el("rect", {
        x: PAD.l + i * band + band * 0.15, width: band * 0.7, y: y(j.seconds), height: Math.max(1, y(0) - y(j.seconds)),
        fill: colour[j.status] || "#5b6b7a", class: "job-bar"
      }, svg);
      el("title", {}, bar, j.job_id + ": " + j.seconds + "s " + j.status);
    });
  }

  function draw(id, chart, values) {
    var svg = document.getElementById(id), box = svg.getAttribute("viewBox").split(" ");
    W = +box[2]; H = +box[3];
    chart(svg, values);
  }

  draw("chart-pnl", pnlChart, data.shadow_pnl || []);
  draw("chart-drift", driftChart, data.drift_pvalues || []);
  draw("chart-jobs", jobsChart, data.job_durations || []);
  document.body.setAttribute("data-charts", "drawn");
})();
