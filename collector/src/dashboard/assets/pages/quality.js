// Data quality: each node's five dimension scores against their thresholds, what to do about
// the failing ones, the newest gaps and the worst series; above, the overall score of every
// node over the last six hours (the stored hcmon_data_quality_score).

import { api, el, problem, queryRange } from "../app.js";
import { Chart } from "../chart.js";
import { number, time } from "../format.js";

const DIMENSIONS = ["completeness", "consistency", "accuracy", "timeliness", "validity"];

export async function render(main, { signal }) {
  const history = el("div");
  const cards = el("div", { class: "cards" });
  main.append(el("div", { class: "page-head" }, el("h1", {}, "Data quality")), history, cards);
  let report;
  try {
    report = await api("/api/v1/quality", { signal });
  } catch (e) {
    cards.replaceChildren(problem(e, "data quality"));
    return;
  }
  const nodes = report.nodes.filter(n => n.node);
  cards.replaceChildren(...(nodes.length ? nodes.map(nodeCard)
    : [el("p", { class: "muted" }, "No node evaluated yet: scores appear a minute after agents report.")]));
  const end = Date.now(), start = end - 6 * 3600_000;
  const chart = new Chart({ id: "quality", title: "Overall data quality per node", unit: "" });
  history.replaceChildren(chart.node);
  try {
    const series = await queryRange('hcmon_data_quality_score{dimension="overall"}', start, end, 60, signal);
    chart.set(series.map(s => ({ label: s.metric.node, points: s.points })), { x: [start, end] });
  } catch (e) {
    history.append(problem(e, "quality history"));
  }
}

/** One dimension's row: its score against its threshold. */
function dimensionRow(name, score, threshold) {
  const ok = score >= threshold;
  return el("tr", { "data-testid": "quality-dimension", dataset: { dimension: name } },
    el("th", { scope: "row" }, name),
    el("td", { class: "num" }, el("span", { class: `badge ${ok ? "connected" : "firing"}` }, number(score))),
    el("td", { class: "num muted" }, `≥ ${number(threshold)}`));
}

function nodeCard(n) {
  const thresholds = Object.fromEntries(n.thresholds);
  const failing = n.failing.length > 0;
  const trend = n.trend
    ? `${n.trend.per_hour >= 0 ? "+" : ""}${number(n.trend.per_hour)}/h, ${number(n.trend.forecast_1h)} in 1 h`
    : "no trend yet";
  const facts = [
    `overall ${number(n.overall)}`,
    n.expected > 0 ? `${n.received} of ${n.expected} samples` : "interval not learnt yet",
    n.lag_p99_ms != null ? `p99 lag ≤ ${number(n.lag_p99_ms / 1000)} s` : null,
    n.clock_offset_ms != null ? `clock ${n.clock_offset_ms > 0 ? "+" : ""}${number(n.clock_offset_ms / 1000)} s` : null,
    trend,
  ].filter(Boolean).join(" · ");
  return el("section", { class: `card ${failing ? "state-down" : ""}`, "data-testid": "quality-node", dataset: { node: n.node } },
    el("header", {}, el("h3", {}, n.node),
      el("span", { class: `badge ${failing ? "firing" : "connected"}` }, failing ? `failing: ${n.failing.join(", ")}` : "good")),
    el("p", { class: "muted small" }, facts),
    el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, ["Dimension", "Score", "Threshold"].map(h => el("th", { scope: "col" }, h)))),
      el("tbody", {}, DIMENSIONS.map(d => dimensionRow(d, n.scores[d], thresholds[d]))))),
    n.recommendations.length
      ? el("ul", { class: "small", "data-testid": "recommendations" }, n.recommendations.map(r => el("li", {}, r)))
      : el("p", { class: "muted small" }, "Nothing to fix."),
    n.gaps.length ? el("details", {}, el("summary", {}, `Newest gaps (${n.gaps.length})`),
      el("ul", { class: "small" }, n.gaps.slice(0, 5).map(g =>
        el("li", {}, `${g.series}: ${g.missing} missing between ${time(g.after_ms)} and ${time(g.before_ms)}`)))) : null,
    el("details", {}, el("summary", {}, "Worst series"),
      el("ul", { class: "small" }, n.worst.slice(0, 5).map(s => el("li", {}, `${number(s.overall)} ${s.series}`)))));
}
