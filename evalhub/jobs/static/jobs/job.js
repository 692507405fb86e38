// Live job page: polls the job's API every 2 s until it ends, updating the progress bar,
// state, log, the charts and the validation samples. A chart is plain SVG drawn here: x
// (step) and y axes with about five "nice" ticks each (1, 2, 2.5 or 5 times a power of
// ten), light grid lines, axis titles, a legend with the metrics' readable names (wrapped
// onto more rows where the width needs), one line per series. It fills the page's width:
// the viewBox follows the element's size, so text keeps its size. The samples table is
// rebuilt only when the API lists other steps or images than it shows.
(function () {
  "use strict";
  const root = document.getElementById("job");
  if (!root) return;
  const api = root.dataset.api;
  const $ = (id) => document.getElementById(id);
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#1f6feb", "#2da44e", "#d1242f", "#8250df", "#bf8700"];
  const HEIGHT = 260; // as job.css sets it
  const TICKS = 5;
  const MARGIN = { top: 30, right: 18, bottom: 42 }; // the left one fits the y labels
  const LEGEND_ROW = 18; // a legend row's height; each row past the first lowers the plot

  // -- ticks ------------------------------------------------------------------------------

  /** About TICKS round values covering [lo, hi] (whole numbers for an integer axis);
   *  the axis then runs from the first to the last. */
  function ticks(lo, hi, integer) {
    if (!(hi > lo)) {
      const pad = integer ? 1 : Math.abs(lo) * 0.1 || 1;
      lo -= integer ? 0 : pad;
      hi += pad;
    }
    if (integer) hi = Math.max(hi, lo + TICKS - 1);
    const raw = (hi - lo) / (TICKS - 1);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const multiples = integer && power < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
    let step = multiples.find((m) => m * power >= raw * (1 - 1e-9)) * power;
    if (integer) step = Math.max(1, Math.round(step));
    const first = Math.floor(lo / step + 1e-9) * step;
    const last = Math.ceil(hi / step - 1e-9) * step;
    const values = [];
    for (let i = 0; first + i * step <= last + step * 1e-6; i++) values.push(first + i * step);
    return { lo: first, hi: last, step, values };
  }

  /** A tick's label, with as many decimals as its step needs ("25k" for large steps). */
  function tickText(value, step) {
    if (Math.abs(value) < step * 1e-6) value = 0;
    if (step >= 1000 && Number.isInteger(step)) return tickText(value / 1000, step / 1000) + (value ? "k" : "");
    if (step < 1e-3) return value ? value.toExponential(2) : "0";
    const power = Math.floor(Math.log10(step) + 1e-9); // step = m × 10^power, m in 1, 2, 2.5, 5
    const half = Math.abs(step / 10 ** power - 2.5) < 1e-6 ? 1 : 0;
    return value.toFixed(Math.max(0, half - power));
  }

  // -- drawing ----------------------------------------------------------------------------

  function el(name, attrs, parent, text) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    parent.appendChild(node);
    return node;
  }

  /** A line chart on the <svg> `chart`: its series and their names come from its
   *  data-series attribute, its y axis's title from data-y-title; returns draw(points). */
  function lineChart(chart) {
    const names = JSON.parse(chart.dataset.series || "{}");
    const SERIES = Object.keys(names).map((key, i) => [key, COLORS[i % COLORS.length]]);
    const yTitle = chart.dataset.yTitle || "loss";
    const has = (p, key) => typeof p[key] === "number" && Number.isFinite(p[key]);
    let shown = [];

    /** The legend from `left`, wrapped onto as many rows as the width needs; their count. */
    function legend(series, left, right) {
      const group = el("g", { class: "chart-legend" }, chart);
      let at = left, row = 0;
      series.forEach(([key, color]) => {
        const item = el("g", { class: "legend-item", "data-key": key }, group);
        const rect = el("rect", { width: 14, height: 4, rx: 1, fill: color }, item);
        const label = el("text", {}, item, names[key]);
        const size = 19 + (label.getComputedTextLength() || 7 * names[key].length);
        if (at > left && at + size > right) { at = left; row += 1; }
        const y = 9 + row * LEGEND_ROW;
        rect.setAttribute("x", at); rect.setAttribute("y", y);
        label.setAttribute("x", at + 19); label.setAttribute("y", y + 6);
        at += size + 18;
      });
      return row + 1;
    }

    function draw(points) {
      shown = points;
      const width = Math.max(320, Math.round(chart.getBoundingClientRect().width || 640));
      chart.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
      chart.replaceChildren();
      const series = SERIES.filter(([key]) => points.some((p) => has(p, key)));
      if (series.length === 0) {
        el("text", { class: "chart-empty", x: width / 2, y: HEIGHT / 2, "text-anchor": "middle" }, chart, "no steps yet");
        return;
      }
      const steps = points.map((p) => p.step);
      const values = points.flatMap((p) => series.filter(([key]) => has(p, key)).map(([key]) => p[key]));
      const x = ticks(Math.min(0, ...steps), Math.max(...steps), true);
      const y = ticks(Math.min(...values), Math.max(...values), false);
      const yLabels = y.values.map((v) => tickText(v, y.step));
      const left = 34 + 7 * Math.max(...yLabels.map((t) => t.length));
      const rows = legend(series, left, width - MARGIN.right);
      const top = MARGIN.top + LEGEND_ROW * (rows - 1);
      const box = { x0: left, x1: width - MARGIN.right, y0: top, y1: HEIGHT - MARGIN.bottom };
      const sx = (s) => box.x0 + ((s - x.lo) / (x.hi - x.lo)) * (box.x1 - box.x0);
      const sy = (v) => box.y1 - ((v - y.lo) / (y.hi - y.lo)) * (box.y1 - box.y0);
      const r = (n) => Math.round(n * 10) / 10;

      const grid = el("g", { class: "chart-grid" }, chart);
      x.values.forEach((v) => el("line", { x1: r(sx(v)), x2: r(sx(v)), y1: box.y0, y2: box.y1 }, grid));
      y.values.forEach((v) => el("line", { x1: box.x0, x2: box.x1, y1: r(sy(v)), y2: r(sy(v)) }, grid));

      const xAxis = el("g", { class: "chart-axis chart-x-axis" }, chart);
      el("line", { class: "domain", x1: box.x0, x2: box.x1, y1: box.y1, y2: box.y1 }, xAxis);
      x.values.forEach((v) => {
        const tick = el("g", { class: "tick" }, xAxis);
        el("line", { x1: r(sx(v)), x2: r(sx(v)), y1: box.y1, y2: box.y1 + 5 }, tick);
        el("text", { x: r(sx(v)), y: box.y1 + 18, "text-anchor": "middle" }, tick, tickText(v, x.step));
      });
      el("text", { class: "chart-title", x: (box.x0 + box.x1) / 2, y: HEIGHT - 6, "text-anchor": "middle" }, xAxis, "step");

      const yAxis = el("g", { class: "chart-axis chart-y-axis" }, chart);
      el("line", { class: "domain", x1: box.x0, x2: box.x0, y1: box.y0, y2: box.y1 }, yAxis);
      y.values.forEach((v, i) => {
        const tick = el("g", { class: "tick" }, yAxis);
        el("line", { x1: box.x0 - 5, x2: box.x0, y1: r(sy(v)), y2: r(sy(v)) }, tick);
        el("text", { x: box.x0 - 8, y: r(sy(v)) + 4, "text-anchor": "end" }, tick, yLabels[i]);
      });
      const middle = (box.y0 + box.y1) / 2;
      el("text", { class: "chart-title", transform: `translate(14 ${middle}) rotate(-90)`, "text-anchor": "middle" }, yAxis, yTitle);

      const lines = el("g", { class: "chart-lines" }, chart);
      series.forEach(([key, color]) => {
        const mine = points.filter((p) => has(p, key));
        const coords = mine.map((p) => r(sx(p.step)) + "," + r(sy(p[key])));
        el("polyline", { class: "chart-line", "data-key": key, points: coords.join(" "), stroke: color }, lines);
        const end = mine[mine.length - 1];
        el("circle", { class: "chart-last", cx: r(sx(end.step)), cy: r(sy(end[key])), r: 2.5, fill: color }, lines);
      });
    }

    if ("ResizeObserver" in window) new ResizeObserver(() => draw(shown)).observe(chart);
    return draw;
  }

  const charts = ["job-chart", "job-error-chart"].map($).filter(Boolean).map(lineChart);

  // -- validation samples -----------------------------------------------------------------

  const samplesBox = $("job-samples");

  /** What a samples listing shows, as the server writes it (selectors.sample_grid). */
  function signature(samples) {
    const steps = samples.steps.map((row) => row.step + ":" + row.images.map((image) => image.index).join(","));
    return steps.join(";") + "|" + samples.prompts.length;
  }

  function drawSamples(samples) {
    if (!samplesBox || !samples || samples.steps.length === 0) return;
    const mark = signature(samples);
    if (samplesBox.dataset.signature === mark) return;
    samplesBox.dataset.signature = mark;
    $("job-samples-empty").hidden = true;
    const width = Math.max(samples.prompts.length, ...samples.steps.flatMap((row) => row.images.map((image) => image.index + 1)));
    const columns = Array.from({ length: width }, (_, i) => samples.prompts[i] ?? "Prompt " + (i + 1));
    const node = (name, parent, text) => {
      const child = document.createElement(name);
      if (text !== undefined) child.textContent = text;
      parent.appendChild(child);
      return child;
    };
    const table = document.createElement("table");
    table.className = "job-samples-grid";
    const head = node("tr", node("thead", table));
    ["Step", ...columns].forEach((text) => { node("th", head, text).scope = "col"; });
    const body = node("tbody", table);
    samples.steps.forEach((row) => {
      const tr = node("tr", body);
      tr.dataset.step = row.step;
      node("th", tr, row.step === 0 ? "Step 0 (before training)" : "Step " + row.step).scope = "row";
      const cells = columns.map(() => node("td", tr));
      row.images.forEach((image) => {
        const img = node("img", cells[image.index]);
        img.loading = "lazy";
        if (samples.width) { img.width = samples.width; img.height = samples.height; }
        img.alt = "Validation sample at step " + row.step + ": " + columns[image.index];
        img.src = image.url;
      });
    });
    samplesBox.replaceChildren(table);
  }

  // -- polling ----------------------------------------------------------------------------

  const time = (iso) => (iso ? new Date(iso).toTimeString().slice(0, 8) : "—");

  function showLog(text) {
    const log = $("job-log");
    if (log.textContent === text) return;
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = text;
    if (atEnd) log.scrollTop = log.scrollHeight; // follow the run unless the reader scrolled up
  }

  function update(job) {
    $("job-state").textContent = job.state;
    // The heartbeat writes progress every few seconds; the metrics are read live.
    const metrics = job.metrics || [];
    const step = Math.max(job.progress_step, metrics.length ? metrics[metrics.length - 1].step : 0);
    const bar = $("job-progress");
    bar.max = job.progress_total || 1; bar.value = step;
    $("job-progress-text").textContent = step + " / " + (job.progress_total || "?"); // 0: epochs, not counted yet
    $("job-times").textContent = time(job.started_at) + " / " + time(job.finished_at);
    showLog(job.log_tail);
    $("job-worker").textContent = job.worker || "—";
    if (job.error) { $("job-error").hidden = false; $("job-error").textContent = job.error; }
    charts.forEach((draw) => draw(metrics));
    drawSamples(job.samples);
  }

  async function poll() {
    try {
      const response = await fetch(api, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const job = await response.json();
        update(job);
        if (["succeeded", "failed", "cancelled"].includes(job.state)) {
          if (root.dataset.finished !== "1") window.location.reload(); // show retry, produced version
          return;
        }
      }
    } catch (err) { /* network blip: try again */ }
    setTimeout(poll, 2000);
  }
  const log = $("job-log");
  log.scrollTop = log.scrollHeight;
  poll();
})();
