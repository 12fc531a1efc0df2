// Trends: a series (or a node's filesystems) with its fitted line carried past "now" and the
// forecast interval as a band, and the time to a limit: "disk full in 9 h ± 12 min".

import { api, el, problem, queryRange, setParams } from "../app.js";
import { Chart } from "../chart.js";
import { duration, formatter, parseDuration, seriesText, shortLabel, unitOf } from "../format.js";

export async function render(main, { params, signal }) {
  const nodes = await api("/api/v1/agents", { signal }).catch(() => []);
  const node = el("select", { "aria-label": "Node" },
    el("option", { value: "" }, "any series…"), nodes.map(a => el("option", { value: a.node }, `${a.node}: filesystems`)));
  const selector = el("input", { type: "text", class: "wide", "aria-label": "Series selector", placeholder: 'node_memory_used_ratio{node="…"}' });
  const limit = el("input", { type: "number", step: "any", "aria-label": "Limit", placeholder: "limit, e.g. 1 for 100 %" });
  const window_ = el("select", { "aria-label": "Fit over" }, ["1h", "6h", "24h", "7d"].map(w => el("option", { value: w }, `fit over ${w}`)));
  const horizon = el("select", { "aria-label": "Forecast" }, ["1h", "6h", "24h", "7d"].map(w => el("option", { value: w }, `forecast ${w}`)));
  node.value = params.get("node") || (params.get("q") ? "" : nodes[0]?.node || "");
  selector.value = params.get("q") || "";
  limit.value = params.get("limit") || "";
  window_.value = params.get("window") || "6h";
  horizon.value = params.get("horizon") || "24h";
  const out = el("div", { class: "charts" });
  const form = el("form", {
    class: "toolbar", onsubmit: e => { e.preventDefault(); run(); },
  }, node, selector, limit, window_, horizon, el("button", { type: "submit" }, "Forecast"));
  node.addEventListener("change", () => { if (node.value) selector.value = ""; });
  main.append(el("div", { class: "page-head" }, el("h1", {}, "Trends")), form, out);

  async function run() {
    const fs = !!node.value && !selector.value.trim();
    const match = fs ? `node_filesystem_used_ratio{node=${JSON.stringify(node.value)}}` : selector.value.trim();
    if (!match) return;
    const lim = fs && !limit.value ? "1" : limit.value;
    setParams({ node: fs ? node.value : "", q: fs ? "" : match, limit: limit.value, window: window_.value, horizon: horizon.value });
    out.replaceChildren(el("p", { class: "muted" }, "Fitting…"));
    try {
      const trends = await api("/api/v1/trend", {
        params: { "match[]": match, window: window_.value, horizon: horizon.value, limit: lim || null }, signal,
      });
      out.replaceChildren(...(trends.length ? [] : [el("p", { class: "muted" }, "No samples in the window.")]));
      for (const t of trends.slice(0, 12)) out.append(await trendCard(t, window_.value, lim, fs, signal));
    } catch (e) {
      out.replaceChildren(problem(e, "trend"));
    }
  }
  if (node.value || selector.value) await run();
}

async function trendCard(t, windowText, limit, fs, signal) {
  const text = seriesText(t.metric);
  const unit = unitOf(t.metric.__name__);
  const now = Date.now();
  const start = now - parseDuration(windowText) * 1000;
  const f = t.forecast;
  const chart = new Chart({
    id: "trend", title: fs ? `${t.metric.mountpoint || shortLabel(t.metric)} used` : text, unit,
    exportLinks: () => ({ match: [text], start, end: now }),
  });
  const history = await queryRange(text, start, now, Math.max(15, Math.round((now - start) / 1000 / 400)), signal).catch(() => []);
  const points = history[0]?.points || [];
  // The line at now, from its value at the horizon and its slope; the interval widens from
  // nothing at now to the forecast's at the horizon.
  const atNow = f.value - t.slope_per_second * (f.at_ms - now) / 1000;
  const ahead = [now, (now + f.at_ms) / 2, f.at_ms];
  const lerp = (a, b, k) => a + (b - a) * k;
  chart.set([
    { label: "value", points },
    { label: "forecast", points: ahead.map((x, i) => [x, lerp(atNow, f.value, i / 2)]), dash: [6, 4] },
    { label: "high", points: ahead.map((x, i) => [x, lerp(atNow, f.high, i / 2)]) },
    { label: "low", points: ahead.map((x, i) => [x, lerp(atNow, f.low, i / 2)]) },
  ], { bands: [["high", "low"]], annotations: [{ time_ms: now, end_ms: null, text: "now", kind: "now" }], x: [start, f.at_ms] });
  const lines = [];
  const ttl = t.time_to_limit;
  if (ttl) {
    const spread = (ttl.high_seconds - ttl.low_seconds) / 2;
    const what = fs ? "disk full" : `reaches ${formatter(unit)(Number(limit))}`;
    lines.push(el("p", { class: "headline", "data-testid": "time-to-limit" },
      `${what} in ${duration(ttl.seconds)}${isFinite(spread) && spread > 0 ? ` ± ${duration(spread)}` : ""}`,
      el("span", { class: "muted small" }, ` (at ${new Date(ttl.at_ms).toLocaleString()})`)));
  } else if (limit && !t.reliable) {
    lines.push(el("p", { class: "muted" }, `Too few samples or too loose a fit to say when it reaches ${formatter(unit)(Number(limit))}.`));
  } else if (limit) {
    lines.push(el("p", { class: "muted" }, `Does not reach ${formatter(unit)(Number(limit))} within the forecast.`));
  }
  lines.push(el("p", { class: "muted small" },
    `${t.samples} samples · R² ${t.r2.toFixed(2)} · ${t.reliable ? "reliable fit" : "unreliable fit: read with care"}` +
    (t.seasonal?.period_seconds ? ` · period ${duration(t.seasonal.period_seconds)}` : "")));
  chart.node.append(...lines);
  return chart.node;
}
