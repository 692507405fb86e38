// Live job page: polls the job's API every 2 s until it ends, updating the progress bar,
// state, log tail and the loss chart (an SVG polyline per loss series).
(function () {
  "use strict";
  const root = document.getElementById("job");
  if (!root) return;
  const api = root.dataset.api;
  const $ = (id) => document.getElementById(id);
  const SERIES = [["loss", "#1f6feb"], ["latent_loss", "#2da44e"], ["pixel_loss", "#d1242f"]];

  function drawChart(points) {
    const svg = $("job-chart");
    if (!svg || points.length === 0) return;
    const w = svg.width.baseVal.value, h = svg.height.baseVal.value, pad = 32;
    const steps = points.map((p) => p.step);
    const values = points.flatMap((p) => SERIES.map(([k]) => p[k]).filter((v) => v !== undefined));
    const x0 = Math.min(...steps), x1 = Math.max(...steps, x0 + 1);
    const y0 = Math.min(...values), y1 = Math.max(...values, y0 + 1e-9);
    const sx = (s) => pad + ((s - x0) / (x1 - x0)) * (w - 2 * pad);
    const sy = (v) => h - pad - ((v - y0) / (y1 - y0)) * (h - 2 * pad);
    const ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    const label = (text, x, y, color) => {
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("font-size", "11");
      if (color) t.setAttribute("fill", color);
      t.textContent = text; svg.appendChild(t);
    };
    label(y1.toPrecision(3), 2, pad); label(y0.toPrecision(3), 2, h - pad);
    label("step " + x1, w - pad - 40, h - 8);
    SERIES.forEach(([key, color], i) => {
      const pts = points.filter((p) => p[key] !== undefined).map((p) => sx(p.step) + "," + sy(p[key]));
      if (pts.length === 0) return;
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", pts.join(" "));
      line.setAttribute("fill", "none"); line.setAttribute("stroke", color); line.setAttribute("stroke-width", "1.5");
      svg.appendChild(line);
      label(key, pad + 90 * i, 12, color);
    });
  }

  const time = (iso) => (iso ? new Date(iso).toTimeString().slice(0, 8) : "—");

  function update(job) {
    $("job-state").textContent = job.state;
    // The heartbeat writes progress every few seconds; the metrics are read live.
    const metrics = job.metrics || [];
    const step = Math.max(job.progress_step, metrics.length ? metrics[metrics.length - 1].step : 0);
    const bar = $("job-progress");
    bar.max = job.progress_total || 1; bar.value = step;
    $("job-progress-text").textContent = step + " / " + job.progress_total;
    $("job-times").textContent = time(job.started_at) + " / " + time(job.finished_at);
    $("job-log").textContent = job.log_tail;
    $("job-worker").textContent = job.worker || "—";
    if (job.error) { $("job-error").hidden = false; $("job-error").textContent = job.error; }
    drawChart(metrics);
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
  poll();
})();
