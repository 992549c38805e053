// The Evaluation tab: the mission's monitoring history (GET /missions/{id}/monitoring) drawn as SVG charts:
// each monitored metric against its threshold and each feature's drift over the batches, alerts marked.
// The same rows and the same drawing as the workspace's reports/dashboard.html.

import { request } from "./api.js";
import { clear, h, s } from "./dom.js";

const W = 320, H = 150, PAD_L = 44, PAD_R = 12, PAD_T = 14, PAD_B = 30;
const COLOR = { line: "#00798c", point: "#00798c", fired: "#d1495b", threshold: "#d1495b", axis: "#9aa3ae",
  text: "#5b6472" };

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
const fmt = (v) => (v === null ? "—" : Number(v.toPrecision(4)).toString());

/** Each metric's points across the rows (value, threshold, direction, fired), in the rows' order. */
export function metricSeries(rows) {
  const names = [];
  for (const row of rows) for (const name of Object.keys(row.metrics || {})) if (!names.includes(name)) names.push(name);
  const out = new Map();
  for (const name of names) {
    const points = rows.map((row) => {
      const e = (row.metrics || {})[name] || {};
      return { value: num(e.value), threshold: num(e.threshold), direction: e.direction, fired: Boolean(e.fired) };
    });
    if (points.some((p) => p.value !== null)) out.set(name, points);
  }
  return out;
}

/** Each feature's drift score across the rows. */
export function driftSeries(rows) {
  const names = [];
  for (const row of rows) {
    for (const name of Object.keys((row.drift || {}).features || {})) if (!names.includes(name)) names.push(name);
  }
  const out = new Map();
  for (const name of names) {
    out.set(name, rows.map((row) => {
      const drift = row.drift || {};
      const e = (drift.features || {})[name] || {};
      return { value: num(e.score), threshold: num(drift.threshold), fired: Boolean(e.drifted), test: e.test };
    }));
  }
  return out;
}

function chart(kind, name, subtitle, points, labels) {
  const values = points.map((p) => p.value).filter((v) => v !== null);
  const limits = points.map((p) => p.threshold).filter((v) => v !== null);
  let low = Math.min(...values, ...limits);
  let high = Math.max(...values, ...limits);
  if (!Number.isFinite(low)) [low, high] = [0, 1];
  if (high - low < 1e-12) [low, high] = [low - (Math.abs(low) * 0.1 || 0.05), high + (Math.abs(high) * 0.1 || 0.05)];
  const span = high - low;
  [low, high] = [low - 0.08 * span, high + 0.08 * span];
  const n = points.length;
  const iw = W - PAD_L - PAD_R, ih = H - PAD_T - PAD_B;
  const x = (i) => PAD_L + (n === 1 ? iw / 2 : (iw * i) / (n - 1));
  const y = (v) => PAD_T + ih * (1 - (v - low) / (high - low));
  const svg = s("svg", { class: `${kind}-chart`, "data-name": name, viewBox: `0 0 ${W} ${H}`, width: W, height: H,
    role: "img", "aria-label": `${name} over ${n} batches` },
  s("line", { x1: PAD_L, y1: PAD_T + ih, x2: W - PAD_R, y2: PAD_T + ih, stroke: COLOR.axis }),
  s("line", { x1: PAD_L, y1: PAD_T, x2: PAD_L, y2: PAD_T + ih, stroke: COLOR.axis }),
  s("text", { x: PAD_L - 4, y: PAD_T + 4, "text-anchor": "end", "font-size": 10, fill: COLOR.text }, fmt(high)),
  s("text", { x: PAD_L - 4, y: PAD_T + ih, "text-anchor": "end", "font-size": 10, fill: COLOR.text }, fmt(low)));
  const segments = points.map((p, i) => [i, p.threshold]).filter(([, t]) => t !== null);
  if (segments.length) {
    const d = segments.length === 1
      ? `M${PAD_L},${y(segments[0][1])} L${W - PAD_R},${y(segments[0][1])}`
      : segments.map(([i, t], j) => `${j ? "L" : "M"}${x(i)},${y(t)}`).join(" ");
    svg.append(s("path", { class: "threshold", d, fill: "none", stroke: COLOR.threshold, "stroke-dasharray": "5 4" },
      s("title", {}, `threshold ${fmt(limits[limits.length - 1])}`)));
  }
  const line = points.map((p, i) => (p.value === null ? null : `${x(i)},${y(p.value)}`)).filter(Boolean).join(" ");
  if (line) svg.append(s("polyline", { class: "line", points: line, fill: "none", stroke: COLOR.line, "stroke-width": 1.6 }));
  points.forEach((p, i) => {
    if (p.value === null) return;
    const tip = `${labels[i]}: ${fmt(p.value)}${p.threshold !== null ? ` (threshold ${fmt(p.threshold)})` : ""}` +
      (p.fired ? " — ALERT FIRED" : "");
    svg.append(s("circle", { class: p.fired ? "point fired" : "point", "data-state": p.fired ? "fired" : "ok",
      "data-batch": i, cx: x(i), cy: y(p.value), r: p.fired ? 5 : 3.5, fill: p.fired ? COLOR.fired : COLOR.point,
      stroke: p.fired ? "#7a1020" : null }, s("title", {}, tip)));
  });
  for (const i of [...new Set([0, n - 1])]) {
    const anchor = n === 1 ? "middle" : i === 0 ? "start" : "end";
    svg.append(s("text", { x: x(i), y: H - 10, "text-anchor": anchor, "font-size": 10, fill: COLOR.text },
      String(labels[i]).slice(0, 18)));
  }
  return h("figure.chart", { dataset: { kind, name } }, h("figcaption", h("strong", name), " ", h("small", subtitle)), svg);
}

/** Fill the Evaluation panel for mission `missionId`; `openArtifact(path)` opens the dashboard page. */
export async function renderEvaluation(panel, missionId, { openArtifact } = {}) {
  clear(panel, h("p.hint.loading", "Loading the monitoring history…"));
  const history = await request("GET", `/missions/${missionId}/monitoring`);
  const rows = history.rows || [];
  if (!rows.length) {
    clear(panel, h("p.empty", "No batch has been evaluated or scored yet: the history fills in at the Evaluate " +
      "step and with every production run of the scoring pipeline."));
    return;
  }
  const labels = rows.map((r) => String(r.batch));
  const withAlerts = rows.filter((r) => (r.alerts_fired || []).length);
  const metrics = metricSeries(rows);
  const drift = driftSeries(rows);
  const grid = (id, charts) => h(`div.chart-grid#${id}`,
    { style: "display:flex;flex-wrap:wrap;gap:.75rem" }, charts);
  clear(panel,
    h("p.eval-summary", `${rows.length} batches, ${withAlerts.length} with an alert fired. Each point is one batch ` +
      "(oldest left); the dashed line is the alert threshold; red points fired their alert.",
    history.dashboard && openArtifact
      ? h("button.btn.small", { type: "button", onclick: () => openArtifact(history.dashboard) }, "Open the dashboard page")
      : null),
    h("h2", "Metrics against their thresholds"),
    grid("eval-metrics", [...metrics].map(([name, points]) => {
      const last = [...points].reverse().find((p) => p.threshold !== null);
      const sub = last && last.direction ? `alert when ${last.direction} ${fmt(last.threshold)}` : "no threshold";
      return chart("metric", name, sub, points, labels);
    })),
    h("h2", "Feature drift over batches (PSI)"),
    grid("eval-drift", [...drift].map(([name, points]) => chart("drift", name, "PSI", points, labels))),
    h("h2", "Batches"),
    h("table.eval-batches", h("thead", h("tr", ["Batch", "Time", "Source", "Rows", "Alerts fired"].map((t) => h("th", t)))),
      h("tbody", rows.map((r) => h("tr", h("td", String(r.batch)), h("td", String(r.time || "")),
        h("td", String(r.source || "")), h("td", String(r.rows ?? "")),
        h("td", { class: (r.alerts_fired || []).length ? "fired-text" : "ok-text" },
          (r.alerts_fired || []).join(", ") || "none"))))));
}
