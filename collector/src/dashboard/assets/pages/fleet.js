// Fleet: one card per node, what needs attention first (down or silent, then open alerts, then
// anomalies): state, CPU / memory / disk with a sparkline and trend arrow, probes, alerts,
// data-quality hints. Live: the card figures follow the stream.

import { api, el, nodeState, problem, query, queryRange } from "../app.js";
import { ago, percent } from "../format.js";

const FIGURES = [
  { key: "cpu", title: "CPU", q: "avg by (node) (node_cpu_usage_ratio)", metric: "node_cpu_usage_ratio" },
  { key: "mem", title: "Memory", q: "avg by (node) (node_memory_used_ratio)", metric: "node_memory_used_ratio" },
  { key: "disk", title: "Disk", q: "max by (node) (node_filesystem_used_ratio)", metric: null },
];

const PROBES = "redis_up|memcached_up|http_check_up|tcp_check_up";

export async function render(main, { signal, live }) {
  const grid = el("div", { class: "cards fleet" });
  const status = el("p", { class: "muted", "aria-live": "polite" });
  main.append(el("div", { class: "page-head" }, el("h1", {}, "Fleet"), status), grid);
  const end = Date.now(), start = end - 3600_000;
  const [agents, alerts, anomalies, probes, ...figures] = await Promise.all([
    api("/api/v1/agents", { signal }),
    api("/api/v1/alerts", { signal }).then(d => d.alerts).catch(e => e),
    api("/api/v1/anomalies", { params: { anomalous: "true" }, signal }).catch(e => e),
    query(`{__name__=~"${PROBES}"}`, signal).catch(() => []),
    // 30 s steps: a node up for a minute already has a line and a trend.
    ...FIGURES.map(f => queryRange(f.q, start, end, 30, signal).catch(() => [])),
  ]);
  const byNode = (list, key) => {
    const out = {};
    for (const x of Array.isArray(list) ? list : []) {
      const n = key(x);
      if (n) (out[n] ||= []).push(x);
    }
    return out;
  };
  const alertsBy = byNode(alerts, a => (["pending", "firing", "acknowledged"].includes(a.hcmonState) ? a.labels.node || a.labels.instance : null));
  const anomaliesBy = byNode(anomalies, a => a.metric.node);
  const probesBy = byNode(probes, p => p.metric.node);
  const series = FIGURES.map(f => Object.fromEntries(figures[FIGURES.indexOf(f)].map(r => [r.metric.node, r.points])));

  const rank = { down: 0, silent: 1, connected: 2 };
  const nodes = agents.map(a => ({
    agent: a, state: nodeState(a),
    alerts: (alertsBy[a.node] || []).length, anomalies: (anomaliesBy[a.node] || []).length,
  })).sort((a, b) => rank[a.state] - rank[b.state] || b.alerts - a.alerts || b.anomalies - a.anomalies
    || a.agent.node.localeCompare(b.agent.node));

  if (!nodes.length) grid.append(el("p", { class: "muted" }, "No node has connected yet: start an agent with --collector pointing here."));
  const cards = new Map();
  for (const n of nodes) {
    const card = nodeCard(n, series, probesBy[n.agent.node] || []);
    cards.set(n.agent.node, card);
    grid.append(card.node);
  }
  const notes = [];
  if (alerts instanceof Error) notes.push(problem(alerts, "alerts"));
  if (anomalies instanceof Error) notes.push(problem(anomalies, "anomalies"));
  main.append(...notes);
  status.textContent = `${nodes.length} node${nodes.length === 1 ? "" : "s"} · updated ${new Date().toLocaleTimeString()}`;

  // Live: the card figures follow the samples as they are stored.
  live.subscribe(FIGURES.filter(f => f.metric).map(f => f.metric), list => {
    for (const s of list) {
      const fig = FIGURES.find(f => f.metric === s.metric.__name__);
      const card = cards.get(s.metric.node);
      const last = s.points[s.points.length - 1];
      if (fig && card && last) card.update(fig.key, last[0], last[1]);
    }
    status.textContent = `${nodes.length} node${nodes.length === 1 ? "" : "s"} · live ${new Date().toLocaleTimeString()}`;
  }, () => rerender(signal));
  live.on("alert", () => rerender(signal));
}

let pending = null;
/** Re-renders the page once after a burst of alert changes, or to back-fill after the stream
 * reconnected. */
function rerender(signal) {
  clearTimeout(pending);
  pending = setTimeout(() => { if (!signal.aborted) window.dispatchEvent(new HashChangeEvent("hashchange")); }, 1000);
}

function nodeCard(n, series, probes) {
  const a = n.agent;
  const figures = {};
  const rows = FIGURES.map((f, i) => {
    const points = (series[i][a.node] || []).filter(p => isFinite(p[1]));
    const value = el("span", { class: "value" }, percent(points.length ? points[points.length - 1][1] : null));
    const arrow = el("span", { class: "arrow" });
    showTrend(arrow, points);
    const spark = sparkline(points);
    figures[f.key] = { points, value, arrow, spark };
    return el("div", { class: "figure" }, el("span", { class: "label" }, f.title), value, arrow, spark);
  });
  const up = probes.filter(p => p.value === 1).length;
  const probeText = probes.length ? `${up}/${probes.length} probes up` : "no probes";
  const hints = [];
  if (a.lost_batches > 0) hints.push(`${a.lost_batches} batches lost`);
  const node = el("a", {
    class: `card node-card state-${n.state}`, href: `#/node/${encodeURIComponent(a.node)}`,
    "data-testid": "fleet-node", dataset: { node: a.node, state: n.state },
  },
  el("header", {}, el("h2", {}, a.node), el("span", { class: `badge ${n.state}` }, n.state)),
  el("p", { class: "muted small" }, `${a.host.os_name} ${a.host.os_version} · ${a.host.cpu_count} CPU · last data ${ago(a.last_batch_at_ms)}`),
  rows,
  el("p", { class: "facts" },
    el("span", { class: n.alerts ? "badge firing" : "badge" }, `${n.alerts} open alert${n.alerts === 1 ? "" : "s"}`),
    el("span", { class: n.anomalies ? "badge warning" : "badge" }, `${n.anomalies} anomal${n.anomalies === 1 ? "y" : "ies"}`),
    el("span", { class: probes.length && up < probes.length ? "badge firing" : "badge" }, probeText),
    hints.map(h => el("span", { class: "badge warning", title: "data quality" }, h))));
  return {
    node,
    update(key, t, v) {
      const f = figures[key];
      if (!f || !isFinite(v)) return;
      f.points.push([t, v]);
      while (f.points.length > 2 && f.points[0][0] < t - 3600_000) f.points.shift();
      f.value.textContent = percent(v);
      showTrend(f.arrow, f.points);
      const next = sparkline(f.points);
      f.spark.replaceWith(next);
      f.spark = next;
    },
  };
}

/** The change over the points' span (in ratio), from their least-squares slope; null with
 * fewer than two points. */
function trend(points) {
  if (points.length < 2) return null;
  const n = points.length;
  const mt = points.reduce((s, p) => s + p[0], 0) / n, mv = points.reduce((s, p) => s + p[1], 0) / n;
  let num = 0, den = 0;
  for (const [t, v] of points) { num += (t - mt) * (v - mv); den += (t - mt) ** 2; }
  return den ? (num / den) * (points[n - 1][0] - points[0][0]) : 0;
}

/** Sets `box` to ↑, ↓ or → (a change within two points of percentage, or within the
 * figure's own spread, is steady) with what it means in its title; a dot while there is too
 * little data. */
function showTrend(box, points) {
  const change = trend(points);
  const minutes = points.length > 1 ? Math.round((points[points.length - 1][0] - points[0][0]) / 60_000) : 0;
  const mean = points.reduce((s, p) => s + p[1], 0) / (points.length || 1);
  const spread = Math.sqrt(points.reduce((s, p) => s + (p[1] - mean) ** 2, 0) / (points.length || 1));
  const [arrow, word] = change == null ? ["·", "no trend yet"]
    : Math.abs(change) <= Math.max(0.02, spread) ? ["→", "steady"] : change > 0 ? ["↑", "rising"] : ["↓", "falling"];
  box.textContent = arrow;
  box.className = `arrow ${change == null ? "none" : word}`;
  const detail = change == null ? "" : `: ${change >= 0 ? "+" : ""}${(change * 100).toFixed(1)} points over ${minutes} min`;
  box.title = `${word}${detail}`;
  box.setAttribute("aria-label", box.title);
}

/** A small SVG line of `points` (ratios). */
function sparkline(points) {
  const w = 120, h = 28;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("class", "spark");
  svg.setAttribute("aria-hidden", "true");
  if (points.length === 1) {
    const dot = document.createElementNS("http://www.w3.org/2000/svg", "circle");
    dot.setAttribute("cx", String(w - 3));
    dot.setAttribute("cy", String(h / 2));
    dot.setAttribute("r", "2.5");
    svg.append(dot);
  } else if (points.length > 1) {
    const t0 = points[0][0], t1 = points[points.length - 1][0] || t0 + 1;
    // Its own scale, at least 5 points of percentage tall, so the shape shows.
    const values = points.map(p => p[1]);
    const mid = (Math.max(...values) + Math.min(...values)) / 2;
    const span = Math.max(0.05, Math.max(...values) - Math.min(...values));
    const y = v => h / 2 - (v - mid) / span * (h - 4);
    const d = points.map(([t, v], i) => `${i ? "L" : "M"}${((t - t0) / (t1 - t0 || 1) * w).toFixed(1)},${y(v).toFixed(1)}`).join("");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}
